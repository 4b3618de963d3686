package faults

// The lockout fault: after threshold failed logins within window the
// account is locked for window, whatever the password, on every protocol.
// With prior_failures the lab plays the customer's misconfigured client
// right after start: it logs in over IMAPS with a stale password that many
// times (real logins, visible in the transcript), which is how accounts get
// locked in the field: a phone or a second PC retrying an old password.

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/maillab/maillab/lab"
	"github.com/maillab/maillab/servers/auth"
	"github.com/maillab/maillab/servers/mailstore"
)

type lockoutParams struct {
	accountParams `yaml:",inline"`
	Threshold     int           `yaml:"threshold"`
	Window        time.Duration `yaml:"window"`
	PriorFailures int           `yaml:"prior_failures"`
	// StalePassword is what the simulated client sends; default: the
	// password in the customer's settings if it is wrong, else a made-up one.
	StalePassword string `yaml:"stale_password"`
}

func (p *lockoutParams) validate() error {
	if p.Threshold < 1 {
		return fmt.Errorf("threshold must be at least 1")
	}
	if p.Window <= 0 {
		return fmt.Errorf("window must be positive")
	}
	if p.PriorFailures < 0 {
		return fmt.Errorf("prior_failures must not be negative")
	}
	return nil
}

type lockout struct {
	threshold int
	window    time.Duration
	now       func() time.Time

	mu       sync.Mutex
	failures map[*mailstore.User][]time.Time
	locked   map[*mailstore.User]time.Time // until
}

func (lo *lockout) middleware(store *mailstore.Store, email string) auth.Middleware {
	return func(next auth.Authenticator) auth.Authenticator {
		return auth.Func(func(ctx context.Context, req *auth.Request) (*mailstore.User, error) {
			acct, lerr := store.User(req.Username)
			if lerr != nil || !strings.EqualFold(acct.Email, email) {
				return next.Authenticate(ctx, req)
			}
			now := lo.now()
			lo.mu.Lock()
			if until, ok := lo.locked[acct]; ok && now.Before(until) {
				lo.mu.Unlock()
				mins := int(until.Sub(now).Minutes()) + 1
				return nil, &auth.Error{Kind: auth.TemporarilyLocked, Detail: fmt.Sprintf("try again in %d minutes", mins)}
			}
			lo.mu.Unlock()
			u, err := next.Authenticate(ctx, req)
			if auth.KindOf(err) != auth.InvalidCredentials {
				return u, err
			}
			lo.mu.Lock()
			defer lo.mu.Unlock()
			recent := lo.failures[acct][:0]
			for _, t := range lo.failures[acct] {
				if now.Sub(t) < lo.window {
					recent = append(recent, t)
				}
			}
			recent = append(recent, now)
			lo.failures[acct] = recent
			if len(recent) >= lo.threshold {
				lo.locked[acct] = now.Add(lo.window)
				lo.failures[acct] = nil
			}
			return u, err
		})
	}
}

// staleClient logs in over IMAPS with a wrong password n times.
func staleClient(l *lab.Lab, username, password string, n int) error {
	svc := l.Service("imaps")
	cfg := &tls.Config{RootCAs: l.CertPool(), ServerName: svc.Host}
	for i := 0; i < n; i++ {
		c, err := tls.Dial("tcp", svc.Addr(), cfg)
		if err != nil {
			return fmt.Errorf("simulated stale client: %w", err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		r := bufio.NewReader(c)
		if _, err := r.ReadString('\n'); err != nil {
			c.Close()
			return fmt.Errorf("simulated stale client: greeting: %w", err)
		}
		fmt.Fprintf(c, "a1 LOGIN %q %q\r\na2 LOGOUT\r\n", username, password)
		for {
			line, err := r.ReadString('\n')
			if err != nil || strings.HasPrefix(line, "a2 ") {
				break
			}
		}
		c.Close()
	}
	return nil
}

func init() {
	Register(Definition{
		Name:       "lockout",
		Summary:    "threshold failed logins within window lock the account for window; prior_failures makes the lab's stale client fail that many times at start",
		Layer:      LayerAuth,
		NoServices: true,
		Params:     func() any { return &lockoutParams{Threshold: 3, Window: 15 * time.Minute} },
		Apply: func(l *lab.Lab, sel *Selection, p any) error {
			params := p.(*lockoutParams)
			i, err := params.account(l)
			if err != nil {
				return err
			}
			email := l.Primary.Accounts[i].Email
			lo := &lockout{threshold: params.Threshold, window: params.Window, now: time.Now,
				failures: map[*mailstore.User][]time.Time{}, locked: map[*mailstore.User]time.Time{}}
			l.AuthPolicies = append(l.AuthPolicies, lo.middleware(l.Store, email))
			if params.PriorFailures == 0 {
				return nil
			}
			l.OnStarted(func() error {
				acct := l.Primary.Accounts[i]
				stale := params.StalePassword
				if stale == "" {
					if cs, err := l.CustomerSettings(); err == nil {
						for _, a := range cs.Accounts {
							if a.Email == acct.Email && a.Password != acct.Password && a.Password != "" {
								stale = a.Password
							}
						}
					}
				}
				if stale == "" || stale == acct.Password {
					stale = "Welcome2023!"
				}
				return staleClient(l, acct.Username, stale, params.PriorFailures)
			})
			return nil
		},
	})
}
