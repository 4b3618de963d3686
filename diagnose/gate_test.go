package diagnose

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/maillab/maillab/diagnose/internal/testpki"
	"github.com/maillab/maillab/rootcause"
)

// TestLoginGateCoversOnlyTheLogin checks what the lockout guard
// serializes: the logins of the services, one at a time in service order,
// and nothing after them. Each fake holds a reply until it sees (or, for
// the negative case, for a while does not see) the other service's login;
// the holds end on their own, so a wrong gate shows as a failed check,
// never as a hang.
func TestLoginGateCoversOnlyTheLogin(t *testing.T) {
	// hold is how long a fake waits for the other service's login.
	const hold = 1500 * time.Millisecond
	tests := []struct {
		name string
		// hookSMTP installs the hook on the first service; it reports
		// through saw whether the IMAP login arrived during the hold.
		hookSMTP func(f *smtpFake, imapLogin <-chan struct{}, saw func(bool))
		// want is whether the IMAP login must arrive during the hold.
		want bool
	}{
		{
			name: "the send test runs while the next service logs in",
			hookSMTP: func(f *smtpFake, imapLogin <-chan struct{}, saw func(bool)) {
				f.beforeMail = func() { saw(waitFor(imapLogin, hold)) }
			},
			want: true,
		},
		{
			name: "logins do not overlap",
			hookSMTP: func(f *smtpFake, imapLogin <-chan struct{}, saw func(bool)) {
				f.beforeAuthReply = func() { saw(waitFor(imapLogin, 300*time.Millisecond)) }
			},
			want: false,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l := newLab(t)
			tlsCfg := l.serverTLS(testpki.Opts{})
			imapLogin := make(chan struct{})
			var once sync.Once
			imap := &imapFake{tls: tlsCfg, onLogin: func() { once.Do(func() { close(imapLogin) }) }}
			var mu sync.Mutex
			var saw []bool
			smtp := &smtpFake{tls: tlsCfg}
			tt.hookSMTP(smtp, imapLogin, func(b bool) { mu.Lock(); saw = append(saw, b); mu.Unlock() })
			s1 := startServer(t, nil, smtp.handle)
			s2 := startServer(t, tlsCfg, imap.handle)
			cfg := l.config(svc("submission", s1.port, "starttls"), svc("imaps", s2.port, "tls"))
			cfg.Timeout = 3 * time.Second // longer than the holds
			r := diagnoseT(t, cfg)
			wantRoot(t, tt.name, r, rootcause.Healthy)
			mu.Lock()
			defer mu.Unlock()
			if len(saw) != 1 || saw[0] != tt.want {
				t.Errorf("IMAP login during the SMTP hold: %v, want [%v]", saw, tt.want)
			}
			for _, st := range r.Services[1].Steps {
				if st.Step == StepAuth && strings.Contains(st.Evidence, "waited") && !strings.Contains(st.Evidence, "for submission to log in first") {
					t.Errorf("imaps auth evidence %q does not name the service it waited for", st.Evidence)
				}
			}
		})
	}
}

// waitFor reports whether ch closed within d.
func waitFor(ch <-chan struct{}, d time.Duration) bool {
	select {
	case <-ch:
		return true
	case <-time.After(d):
		return false
	}
}

func TestAuthGateWait(t *testing.T) {
	g := newAuthGate([]string{"submission", "imaps", "pop3s"})
	if waited, ok := g.wait(context.Background(), 0); !ok || len(waited) != 0 {
		t.Errorf("wait(0) = %v, %v; want no wait", waited, ok)
	}
	g.finish(0)
	g.finish(0) // idempotent
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if waited, ok := g.wait(ctx, 2); ok || strings.Join(waited, ",") != "imaps" {
		t.Errorf("wait(2) with imaps pending and ctx done = %v, %v; want [imaps], false", waited, ok)
	}
	g.finish(1)
	if waited, ok := g.wait(ctx, 2); !ok || len(waited) != 0 {
		t.Errorf("wait(2) with both done = %v, %v; want no wait", waited, ok)
	}
}
