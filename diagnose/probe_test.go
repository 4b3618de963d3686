package diagnose

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/maillab/maillab/rootcause"
)

// diagnoseT runs the diagnoser and fails the test on a Run error.
func diagnoseT(t *testing.T, cfg Config) *Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r, err := Run(ctx, cfg)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	checkInvariants(t, r)
	return r
}

// checkInvariants checks what holds for every report: known step names
// in probe order without repeats (a second "capabilities" after STARTTLS
// excepted), failing steps carry a catalog code, passing ones none, a
// service is OK exactly when all its steps are, and HEALTHY exactly when
// every service is OK.
func checkInvariants(t *testing.T, r *Report) {
	t.Helper()
	order := []string{StepDNS, StepTCP, StepTLS, StepGreeting, StepCapabilities, StepStartTLS, StepCapabilities, StepAuth, StepSend, StepFetch}
	allOK := true
	for _, s := range r.Services {
		pos, ok := 0, true
		for _, st := range s.Steps {
			for pos < len(order) && order[pos] != st.Step {
				pos++
			}
			if pos == len(order) {
				t.Errorf("service %s: step %q out of order or repeated: %+v", s.Service, st.Step, s.Steps)
				break
			}
			pos++
			if st.OK != (st.Code == "") {
				t.Errorf("service %s step %s: ok=%v code=%q", s.Service, st.Step, st.OK, st.Code)
			}
			if st.Code != "" && !rootcause.Valid(string(st.Code)) {
				t.Errorf("service %s step %s: unknown code %q", s.Service, st.Step, st.Code)
			}
			ok = ok && st.OK
		}
		if ok != s.OK {
			t.Errorf("service %s: ok=%v but steps say %v", s.Service, s.OK, ok)
		}
		allOK = allOK && s.OK
	}
	if (r.RootCause == rootcause.Healthy) != allOK {
		t.Errorf("root cause %s but all services ok = %v", r.RootCause, allOK)
	}
	if r.Summary == "" || r.Fix == "" {
		t.Errorf("report without summary or fix: %+v", r)
	}
	for _, f := range r.Findings {
		if f.Code != "" && !rootcause.Valid(string(f.Code)) {
			t.Errorf("finding with unknown code %q", f.Code)
		}
	}
}

// wantRoot checks the root cause and dumps the report when it differs.
func wantRoot(t *testing.T, name string, r *Report, want rootcause.Code) {
	t.Helper()
	if r.RootCause != want {
		var b strings.Builder
		r.WriteText(&b)
		t.Fatalf("Diagnose(%s) = %s, want %s\n%s", name, r.RootCause, want, b.String())
	}
}

func TestHealthy(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	tlsCfg := l.serverTLS(testPKIOpts())
	smtp := &smtpFake{tls: tlsCfg}
	imap := &imapFake{tls: tlsCfg, exists: 3}
	pop := &pop3Fake{tls: tlsCfg}
	s1 := startServer(t, nil, smtp.handle)
	s2 := startServer(t, tlsCfg, imap.handle)
	s3 := startServer(t, nil, pop.handle)
	r := diagnoseT(t, l.config(
		Service{Name: "submission", Host: "mail.example.test", Port: s1.port, Security: "starttls"},
		Service{Name: "imaps", Host: "mail.example.test", Port: s2.port, Security: "tls"},
		Service{Name: "pop3", Host: "mail.example.test", Port: s3.port, Security: "starttls"},
	))
	wantRoot(t, "healthy", r, rootcause.Healthy)
	if smtp.messages.Load() != 1 {
		t.Errorf("messages sent = %d, want 1", smtp.messages.Load())
	}
	for _, s := range r.Services {
		if !s.OK || len(s.Steps) < 6 {
			t.Errorf("service %s ok=%v steps=%d", s.Service, s.OK, len(s.Steps))
		}
	}
	if smtp.logins.Load() != 1 || imap.logins.Load() != 1 || pop.logins.Load() != 1 {
		t.Errorf("logins = %d/%d/%d, want one each", smtp.logins.Load(), imap.logins.Load(), pop.logins.Load())
	}
}
