package diagnose

import (
	"slices"
	"strings"
	"testing"

	"github.com/maillab/maillab/rootcause"
	"github.com/maillab/maillab/settings"
)

// TestRunnerRecords checks the runner's bookkeeping without a server:
// what the steps return is recorded in order (a step's follow-up right
// after it), the rest of the plan is skipped with the stopping step's
// reason, and the report's steps, its OK and the findings are derived from
// the recorded results alone.
func TestRunnerRecords(t *testing.T) {
	svc := Service{Name: "imap", Host: "mail.example.test", Port: 143, Security: settings.SecurityStartTLS}
	tests := []struct {
		name string
		// stopAt is the plan step whose result fails; "" runs all.
		stopAt string
		// halt is prober.halt when the run stops.
		halt string
		// followUp adds a failed capabilities step after STARTTLS.
		followUp bool
		// wantSteps are "name:ok|fail|skip(reason)".
		wantSteps []string
		wantOK    bool
	}{
		{
			name:      "all pass",
			wantOK:    true,
			wantSteps: []string{"dns:ok", "tcp:ok", "greeting:ok", "capabilities:ok", "starttls:ok", "auth:ok", "fetch:ok"},
		},
		{
			name:      "tcp fails",
			stopAt:    StepTCP,
			wantSteps: []string{"dns:ok", "tcp:fail", "greeting:skip(no connection)", "capabilities:skip(no connection)", "starttls:skip(no connection)", "auth:skip(no connection)", "fetch:skip(no connection)"},
		},
		{
			name:      "halt overrides the reason",
			stopAt:    StepGreeting,
			halt:      "wrong protocol",
			wantSteps: []string{"dns:ok", "tcp:ok", "greeting:fail", "capabilities:skip(wrong protocol)", "starttls:skip(wrong protocol)", "auth:skip(wrong protocol)", "fetch:skip(wrong protocol)"},
		},
		{
			name:      "follow-up after STARTTLS",
			stopAt:    StepStartTLS,
			followUp:  true,
			wantSteps: []string{"dns:ok", "tcp:ok", "greeting:ok", "capabilities:ok", "starttls:ok", "capabilities:fail", "auth:skip(no capabilities)", "fetch:skip(no capabilities)"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := &runEnv{cfg: Config{Services: []Service{svc}}}
			p := newProber(env, 0)
			stopped := len(p.plan)
			for i, name := range p.plan {
				st := p.begin(name)
				var then *stepResult
				switch {
				case name == tt.stopAt && tt.followUp:
					st.pass("STARTTLS ok")
					st2 := p.begin(StepCapabilities)
					st2.fail(rootcause.TCPReset, "cut", "", "")
					r := st2.result()
					then = &r
				case name == tt.stopAt:
					st.fail(rootcause.TCPRefused, "refused", "", "")
				default:
					st.pass("fine")
				}
				st.res.then = then
				p.record(st.result())
				if name == tt.stopAt {
					p.halt = tt.halt
					stopped = i + 1
					break
				}
			}
			p.skipFrom(stopped)
			rep := p.report()
			var got []string
			for _, s := range rep.Steps {
				switch {
				case s.Skipped:
					got = append(got, s.Step+":skip("+strings.TrimPrefix(s.Evidence, "skipped: ")+")")
				case s.OK:
					got = append(got, s.Step+":ok")
				default:
					got = append(got, s.Step+":fail")
				}
			}
			if !slices.Equal(got, tt.wantSteps) {
				t.Errorf("steps:\n got %v\nwant %v", got, tt.wantSteps)
			}
			if rep.OK != tt.wantOK {
				t.Errorf("OK = %v, want %v", rep.OK, tt.wantOK)
			}
			issues := p.issues()
			if tt.wantOK != (len(issues) == 0) {
				t.Errorf("issues = %d, want none exactly when OK", len(issues))
			}
			for _, is := range issues {
				if r := p.results[is.stepIdx]; r.OK || r.Code != is.code {
					t.Errorf("issue %s at step %d, whose recorded result is OK=%v code %s", is.code, is.stepIdx, r.OK, r.Code)
				}
			}
		})
	}
}

// TestRecodeRecordedOnly checks that a later judgement changes a recorded
// failure, and never a passed step or one not recorded.
func TestRecodeRecordedOnly(t *testing.T) {
	env := &runEnv{cfg: Config{Services: []Service{{Name: "imaps", Host: "mail.example.test", Port: 993, Security: settings.SecurityTLS}}}}
	p := newProber(env, 0)
	ok := p.begin(StepDNS)
	ok.pass("fine")
	p.record(ok.result())
	bad := p.begin(StepTCP)
	bad.fail(rootcause.TLSCertHostnameMismatch, "names other.test", "", "")
	p.record(bad.result())
	p.recode(0, rootcause.DNSWrongAddress, "s", "f")
	p.recode(1, rootcause.DNSWrongAddress, "s", "f")
	p.recode(2, rootcause.DNSWrongAddress, "s", "f")
	if p.results[0].Code != "" {
		t.Errorf("a passed step was recoded to %s", p.results[0].Code)
	}
	if p.results[1].Code != rootcause.DNSWrongAddress || p.results[1].summary != "s" {
		t.Errorf("recorded failure = %s %q, want DNS_WRONG_ADDRESS \"s\"", p.results[1].Code, p.results[1].summary)
	}
	if len(p.results) != 2 {
		t.Errorf("recode of an unrecorded step added results: %d", len(p.results))
	}
}
