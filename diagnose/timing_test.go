package diagnose

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/maillab/maillab/diagnose/internal/testpki"
	"github.com/maillab/maillab/rootcause"
)

// Delays here stand for real ones scaled down: the server's delay sits
// between the connect timeout and the reply timeout, as Dovecot's 2 s
// auth_failure_delay or a 3 s anti-guessing delay sits between the 3 s
// connect timeout and the 60 s a client waits. No assertion is on time.
//
// The connect timeout also bounds the DNS queries to the test's resolver,
// so it stays large enough for a loaded machine under -race.
const (
	scaledConnect = time.Second
	scaledDelay   = 2 * time.Second
	scaledReply   = 30 * time.Second
	scaledNotice  = 500 * time.Millisecond
)

// delayedFinding returns the note about a delay whose summary contains s.
func delayedFinding(r *Report, s string) *Finding {
	for i, f := range r.Findings {
		if f.Code == "" && strings.Contains(f.Summary, s) && strings.Contains(f.Evidence, "measured delay") {
			return &r.Findings[i]
		}
	}
	return nil
}

// TestReplyWithinReplyTimeout checks that a reply that arrives later than
// the connect timeout but within the reply timeout is never the root
// cause, and is reported as a finding with its delay; and that the same
// delay beyond the reply timeout is SERVER_SLOW.
func TestReplyWithinReplyTimeout(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// reply is the reply timeout; the connect timeout is scaledConnect.
		reply   time.Duration
		setup   func(t *testing.T, l *lab) Service
		want    rootcause.Code
		finding string // a delay finding's summary contains it; "" for none
	}{
		{name: "refused login delayed against password guessing", reply: scaledReply, want: rootcause.AuthFailed,
			finding: "refused logins are delayed by the server against password guessing",
			setup: func(t *testing.T, l *lab) Service {
				f := &imapFake{loginNo: "NO [AUTHENTICATIONFAILED] Authentication failed.", onLogin: func() { time.Sleep(scaledDelay) }}
				return svc("imaps", startServer(t, l.serverTLS(testpki.Opts{}), f.handle).port, "tls")
			}},
		{name: "refused login delayed beyond the reply timeout", reply: scaledConnect, want: rootcause.ServerSlow,
			setup: func(t *testing.T, l *lab) Service {
				f := &imapFake{loginNo: "NO [AUTHENTICATIONFAILED] Authentication failed.", onLogin: func() { time.Sleep(scaledDelay) }}
				return svc("imaps", startServer(t, l.serverTLS(testpki.Opts{}), f.handle).port, "tls")
			}},
		{name: "late greeting on a plaintext port", reply: scaledReply, want: rootcause.Healthy,
			finding: "the greeting came",
			setup: func(t *testing.T, l *lab) Service {
				return smtpOn(t, l, &smtpFake{greetingDelay: scaledDelay})
			}},
		{name: "greeting later than the reply timeout", reply: scaledConnect + scaledConnect/2, want: rootcause.ServerSlow,
			setup: func(t *testing.T, l *lab) Service {
				return smtpOn(t, l, &smtpFake{greetingDelay: 2 * scaledDelay})
			}},
		{name: "accepted login answered late", reply: scaledReply, want: rootcause.Healthy,
			finding: "to answer AUTHENTICATE PLAIN",
			setup: func(t *testing.T, l *lab) Service {
				f := &imapFake{onLogin: func() { time.Sleep(scaledDelay) }}
				return svc("imaps", startServer(t, l.serverTLS(testpki.Opts{}), f.handle).port, "tls")
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l := newLab(t)
			cfg := l.config(tt.setup(t, l))
			if tt.want == rootcause.AuthFailed {
				cfg.Password = "wrong"
			}
			cfg.ConnectTimeout, cfg.ReplyTimeout, cfg.SlowReply = scaledConnect, tt.reply, scaledNotice
			r := diagnoseT(t, cfg)
			wantRoot(t, tt.name, r, tt.want)
			if tt.finding == "" {
				return
			}
			if f := delayedFinding(r, tt.finding); f == nil {
				var b strings.Builder
				r.WriteText(&b)
				t.Errorf("Diagnose(%s): no delay finding with %q\n%s", tt.name, tt.finding, b.String())
			} else if f.Severity == SeverityError {
				t.Errorf("Diagnose(%s): delay finding has severity %s", tt.name, f.Severity)
			}
		})
	}
}

// TestTimeoutAlias checks that the old single Timeout sets both waits, and
// that the new ones win where given.
func TestTimeoutAlias(t *testing.T) {
	base := Config{Services: []Service{{Name: "imaps", Host: "mail.example.test"}}}
	tests := []struct {
		name                 string
		timeout, conn, reply time.Duration
		wantConn, wantReply  time.Duration
	}{
		{name: "defaults", wantConn: DefaultConnectTimeout, wantReply: DefaultReplyTimeout},
		{name: "old timeout", timeout: time.Second, wantConn: time.Second, wantReply: time.Second},
		{name: "old and new", timeout: time.Second, reply: 5 * time.Second, wantConn: time.Second, wantReply: 5 * time.Second},
		{name: "new only", conn: 2 * time.Second, wantConn: 2 * time.Second, wantReply: DefaultReplyTimeout},
	}
	for _, tt := range tests {
		c := base
		c.Timeout, c.ConnectTimeout, c.ReplyTimeout = tt.timeout, tt.conn, tt.reply
		n, err := c.normalize()
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if n.ConnectTimeout != tt.wantConn || n.ReplyTimeout != tt.wantReply {
			t.Errorf("%s: connect %s reply %s, want %s %s", tt.name, n.ConnectTimeout, n.ReplyTimeout, tt.wantConn, tt.wantReply)
		}
	}
}

// TestCancelledRunIsInterrupted checks that cancelling the context while
// the diagnoser waits for a greeting ends the run with ErrInterrupted and
// the steps so far, and no root cause or finding: a wait the user cut
// short says nothing about the server.
func TestCancelledRunIsInterrupted(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	greeted := make(chan struct{})
	f := &smtpFake{greetingDelay: time.Minute}
	s := startServer(t, nil, func(c *fconn) {
		select {
		case <-greeted:
		default:
			close(greeted)
		}
		f.handle(c)
	})
	cfg := l.config(svc("submission", s.port, "starttls"))
	cfg.ConnectTimeout, cfg.ReplyTimeout = scaledConnect, time.Minute
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-greeted
		// Past the silent-port TLS probe, waiting for the greeting.
		time.Sleep(2*scaledConnect + scaledConnect/2)
		cancel()
	}()
	r, err := Run(ctx, cfg)
	if !errors.Is(err, ErrInterrupted) || !errors.Is(err, context.Canceled) {
		t.Fatalf("Run after cancel: err = %v, want ErrInterrupted wrapping context.Canceled", err)
	}
	if r == nil || !r.Interrupted || r.RootCause != "" || len(r.Findings) != 0 {
		t.Fatalf("Run after cancel = %+v, want an interrupted report without root cause or findings", r)
	}
	steps := r.Services[0].Steps
	var names []string
	for _, st := range steps {
		names = append(names, st.Step)
		if st.Code != "" {
			t.Errorf("step %s has code %s after a cancel", st.Step, st.Code)
		}
	}
	if want := planSteps(cfg.Services[0]); !slices.Equal(names, want) {
		t.Errorf("steps = %v, want the plan %v", names, want)
	}
	if !steps[1].OK || steps[1].Skipped {
		t.Errorf("tcp step = %+v, want passed before the interruption", steps[1])
	}
	if g := steps[2]; !g.Skipped || !strings.Contains(g.Evidence, "interrupted") {
		t.Errorf("greeting step = %+v, want skipped as interrupted", g)
	}
	js, err := r.JSON()
	if err != nil || !strings.Contains(string(js), `"interrupted": true`) {
		t.Errorf("JSON lacks interrupted: %v\n%s", err, js)
	}
}

// TestPlanSkipsUnreached checks that the runner records every step of the
// plan, the ones never reached as skipped, for each kind of stop.
func TestPlanSkipsUnreached(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		setup  func(t *testing.T, l *lab) Config
		reason string
	}{
		{name: "no address", reason: "skipped: no address",
			setup: func(t *testing.T, l *lab) Config {
				s := smtpOn(t, l, &smtpFake{})
				s.Host = "nosuch.example.test"
				return l.config(s)
			}},
		{name: "no connection", reason: "skipped: no connection",
			setup: func(t *testing.T, l *lab) Config {
				return l.config(svc("imaps", refusedPort(t), "tls"))
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l := newLab(t)
			cfg := tt.setup(t, l)
			cfg.Timeout = 500 * time.Millisecond
			r := diagnoseT(t, cfg)
			var names []string
			for _, st := range r.Services[0].Steps {
				names = append(names, st.Step)
			}
			if want := planSteps(cfg.Services[0]); !slices.Equal(names, want) {
				t.Errorf("Diagnose(%s) steps = %v, want the plan %v", tt.name, names, want)
			}
			last := r.Services[0].Steps[len(r.Services[0].Steps)-1]
			if !last.Skipped || last.Evidence != tt.reason {
				t.Errorf("Diagnose(%s) last step = %+v, want skipped %q", tt.name, last, tt.reason)
			}
		})
	}
}
