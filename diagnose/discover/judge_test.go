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
	"github.com/maillab/maillab/scenarios"
	"github.com/maillab/maillab/servers/transcript"
	"github.com/maillab/maillab/settings"
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

// TestSetupJudgement: for each set-up scenario the judgement names the
// scenario's cause with the customer's settings, and the same lab is
// healthy (the rule stays quiet) with the lab's own settings.
func TestSetupJudgement(t *testing.T) {
	for _, tc := range []struct {
		scenario string
		want     rootcause.Code
		// labHealthy: the lab's own settings work beside the fault.
		labHealthy bool
	}{
		{"autoconfig-http-only", rootcause.SetupHTTPOnly, true},
		{"autodiscover-loop", rootcause.SetupRedirectLoop, true},
		{"srv-target-mismatch", rootcause.TLSCertHostnameMismatch, true},
		// Contrasts: the rules above must not claim these.
		{"dns-poisoned", rootcause.DNSWrongAddress, false},
		{"hostname-mismatch", rootcause.TLSCertHostnameMismatch, false},
		{"smtp-host-typo", rootcause.DNSNXDomain, true},
	} {
		t.Run(tc.scenario, func(t *testing.T) {
			t.Parallel()
			sc, err := scenarios.Lookup(tc.scenario)
			if err != nil {
				t.Fatal(err)
			}
			r, err := sc.Start(lab.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			for _, s := range []struct {
				who  string
				set  *settings.Settings
				want rootcause.Code
			}{{"customer", r.Customer, tc.want}, {"lab", clientSettings(r.Lab.Settings()), rootcause.Healthy}} {
				if s.who == "lab" && !tc.labHealthy {
					continue // the fault breaks the lab's own settings too
				}
				cfg, err := diagnose.FromSettings(s.set)
				if err != nil {
					t.Fatal(err)
				}
				cfg.ConnectTimeout, cfg.ReplyTimeout = 2*time.Second, 2*time.Second
				opts, err := discover.OptionsFor(s.set)
				if err != nil {
					t.Fatal(err)
				}
				opts.NoGuess = true
				rep, _, err := discover.Diagnose(context.Background(), cfg, opts)
				if err != nil {
					t.Fatal(err)
				}
				if rep.RootCause != s.want {
					t.Errorf("Diagnose(%s, %s settings) = %s (%s), want %s", tc.scenario, s.who, rep.RootCause, rep.Summary, s.want)
				}
			}
		})
	}
}

// clientSettings keeps the services a mail client is set up with: one
// outgoing (submission) and one incoming (imaps) server.
func clientSettings(s *settings.Settings) *settings.Settings {
	for name := range s.Services {
		if name != "submission" && name != "imaps" {
			delete(s.Services, name)
		}
	}
	return s
}
