package discover_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/maillab/maillab/diagnose"
	"github.com/maillab/maillab/diagnose/discover"
	"github.com/maillab/maillab/faults"
	"github.com/maillab/maillab/lab"
	"github.com/maillab/maillab/rootcause"
	"github.com/maillab/maillab/servers/transcript"
)

// TestForeignRedirectKeepsThePassword: the customer's servers are the ones
// a foreign Autodiscover redirect proposed; the diagnosis names the
// redirect and never sends the password there (no AUTH or LOGIN reaches
// the stranger's servers) unless AllowForeignHost.
func TestForeignRedirectKeepsThePassword(t *testing.T) {
	for _, allow := range []bool{false, true} {
		var mu sync.Mutex
		var logins []string
		sink := transcript.SinkFunc(func(e transcript.Entry) {
			up := strings.ToUpper(e.Text)
			if e.Dir == transcript.Client && (strings.Contains(up, "AUTH") || strings.Contains(up, "LOGIN")) {
				mu.Lock()
				logins = append(logins, e.Service+" "+e.Remote+" "+e.Text)
				mu.Unlock()
			}
		})
		f, err := faults.New(faults.Spec{Type: "autodiscover-redirect"})
		if err != nil {
			t.Fatal(err)
		}
		l, err := lab.Start(lab.Options{Transcript: sink}, f)
		if err != nil {
			t.Fatal(err)
		}
		s := l.Settings()
		for _, name := range []string{"imaps", "submission"} {
			svc := s.Services[name]
			svc.Host, svc.Address = "mail.mail-settings.test", ""
			s.Services[name] = svc
		}
		for _, name := range []string{"smtp", "submissions", "imap", "pop3", "pop3s"} {
			delete(s.Services, name)
		}
		cfg, err := diagnose.FromSettings(s)
		if err != nil {
			t.Fatal(err)
		}
		cfg.ConnectTimeout, cfg.ReplyTimeout = 2*time.Second, 2*time.Second
		opts, err := discover.OptionsFor(s)
		if err != nil {
			t.Fatal(err)
		}
		opts.NoGuess, opts.AllowForeignHost = true, allow
		rep, _, err := discover.Diagnose(context.Background(), cfg, opts)
		l.Close()
		if err != nil {
			t.Fatal(err)
		}
		if rep.RootCause != rootcause.SetupRedirectForeign {
			t.Errorf("allow=%v: root cause %s (%s), want SETUP_REDIRECT_FOREIGN", allow, rep.RootCause, rep.Summary)
		}
		mu.Lock()
		sent := len(logins) > 0
		mu.Unlock()
		if sent != allow {
			t.Errorf("allow=%v: logins at the stranger's servers: %v", allow, logins)
		}
		withheld := false
		for _, f := range rep.Findings {
			withheld = withheld || strings.Contains(f.Summary, "login not tried")
		}
		if withheld == allow {
			t.Errorf("allow=%v: finding about the withheld login present=%v", allow, withheld)
		}
	}
}
