//go:build e2e

package thunderbird

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/maillab/maillab/lab"
	"github.com/maillab/maillab/scenarios"
)

// evidence is what one look at a running case found.
type evidence struct {
	windows    []window // through Marionette
	titles     []string // visible X windows, through xdotool
	mozLog     string
	transcript string // the lab's lab.log
}

// prompts returns every prompt of every window.
func (ev *evidence) prompts() []prompt {
	var ps []prompt
	for _, w := range ev.windows {
		ps = append(ps, w.Prompts...)
	}
	return ps
}

// prompt returns the first prompt whose title or text contains s.
func (ev *evidence) prompt(s string) (prompt, bool) {
	for _, p := range ev.prompts() {
		if strings.Contains(p.Text, s) || strings.Contains(p.Title, s) {
			return p, true
		}
	}
	return prompt{}, false
}

// messages returns the subjects in the 3-pane window's message list.
func (ev *evidence) messages() []string {
	var ms []string
	for _, w := range ev.windows {
		ms = append(ms, w.Messages...)
	}
	return ms
}

// hasMessage reports whether the message list shows subject.
func (ev *evidence) hasMessage(subject string) bool {
	for _, m := range ev.messages() {
		if m == subject {
			return true
		}
	}
	return false
}

// statuses returns the status lines of the windows that have one.
func (ev *evidence) statuses() []string {
	var ss []string
	for _, w := range ev.windows {
		if w.Status != "" {
			ss = append(ss, w.Status)
		}
	}
	return ss
}

func (ev *evidence) String() string {
	ws, _ := json.MarshalIndent(ev.windows, "", "  ")
	return fmt.Sprintf("X windows: %q\nwindows: %s", ev.titles, ws)
}

// tbCase is one scenario run in Thunderbird.
type tbCase struct {
	scenario string
	// variant names a second case of the same scenario.
	variant string
	// send composes a message to the customer's own address and sends it
	// with Ctrl+Enter.
	send bool
	// handshakeTimeout is the lab's (lab.Options); 0 is the lab default.
	handshakeTimeout time.Duration
	// limit bounds the case once Thunderbird runs; done ends it earlier.
	limit time.Duration
	// done says the evidence is complete.
	done func(ev *evidence) bool
	// check asserts on the final evidence.
	check func(t *testing.T, ev *evidence)
}

// wantPrompt fails unless a prompt shows every text of want.
func wantPrompt(t *testing.T, ev *evidence, want ...string) {
	t.Helper()
	for _, p := range ev.prompts() {
		all := true
		for _, w := range want {
			all = all && (strings.Contains(p.Text, w) || strings.Contains(p.Title, w) || containsAny(p.Buttons, w))
		}
		if all {
			t.Logf("Thunderbird shows %q: %q %q", p.Title, p.Text, p.Buttons)
			return
		}
	}
	t.Errorf("no Thunderbird prompt shows %q", want)
}

func containsAny(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// wantText fails unless text contains every want; what names the text.
func wantText(t *testing.T, what, text string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(text, w) {
			t.Errorf("%s lacks %q", what, w)
		}
	}
}

func avoidText(t *testing.T, what, text string, avoid ...string) {
	t.Helper()
	for _, a := range avoid {
		if strings.Contains(text, a) {
			t.Errorf("%s has %q, which it must not", what, a)
		}
	}
}

// noCommand fails if the transcript shows a client line in a session of
// the service (prefix "imaps#").
func noCommand(t *testing.T, ev *evidence, service string) {
	t.Helper()
	for _, l := range strings.Split(ev.transcript, "\n") {
		if strings.Contains(l, " "+service) && strings.Contains(l, " C: ") {
			t.Errorf("lab transcript has a client command: %s", l)
		}
	}
}

// hasPrompt is a done condition: some prompt contains s.
func hasPrompt(s string) func(ev *evidence) bool {
	return func(ev *evidence) bool { _, ok := ev.prompt(s); return ok }
}

// Texts Thunderbird 153.8.0esr shows (Debian 12), verified by this suite.
const (
	tbLoginFailed    = "Login to server mail.example.test with username alice@example.test failed."
	tbLoginTitle     = `Login to account "alice@example.test" failed`
	tbExpired        = "The certificate for mail.example.test expired on "
	tbUntrusted      = "The certificate for mail.example.test does not come from a trusted source."
	tbWrongHost      = "The certificate for mail.example.test is not valid for that server. Someone could be trying to impersonate the server and you should not continue."
	tbNonOverridable = "Non-overridable TLS error occurred. Handshake error or probably the TLS version or certificate used by server mail.example.test is incompatible."
	tbNoSTARTTLS     = "Unable to establish a secure link with Outgoing server (SMTP) mail.example.test using STARTTLS since it doesn't advertise that feature."
	tbAppPassword    = "Alert from account alice@example.test: Application-specific password required"
	tbUnableConnect  = "Unable to connect to mail.example.test. Please try again later."
	tbTimedOut       = "Connection to server mail.example.test timed out."
)

var cases = []tbCase{
	{scenario: "healthy", send: true, limit: 90 * time.Second,
		done: func(ev *evidence) bool {
			return strings.Contains(ev.transcript, "250 2.0.0 OK: queued") && ev.hasMessage(subject("healthy")) && ev.hasMessage("maillab seed healthy")
		},
		check: func(t *testing.T, ev *evidence) {
			wantText(t, "lab transcript", ev.transcript, "C: STARTTLS", "235 2.0.0 Authentication succeeded", "250 2.0.0 OK: queued", "OK [READ-WRITE] SELECT completed")
			for _, s := range []string{"maillab seed healthy", subject("healthy")} {
				if !ev.hasMessage(s) {
					t.Errorf("Thunderbird's inbox lacks %q (has %q)", s, ev.messages())
				}
			}
			if ps := ev.prompts(); len(ps) > 0 {
				t.Errorf("Thunderbird shows prompts on a healthy account: %+v", ps)
			}
		}},
	{scenario: "expired-cert", limit: 40 * time.Second, done: hasPrompt(tbExpired),
		check: func(t *testing.T, ev *evidence) {
			wantPrompt(t, ev, "Alert", tbExpired)
			wantText(t, "lab transcript", ev.transcript, "remote error: tls: expired certificate")
			avoidText(t, "lab transcript", ev.transcript, "TLS established")
		}},
	{scenario: "self-signed-cert", limit: 40 * time.Second, done: hasPrompt(tbUntrusted),
		check: func(t *testing.T, ev *evidence) {
			wantPrompt(t, ev, "Alert", tbUntrusted)
			wantText(t, "lab transcript", ev.transcript, "remote error: tls: bad certificate")
			avoidText(t, "lab transcript", ev.transcript, "TLS established")
		}},
	{scenario: "hostname-mismatch", limit: 40 * time.Second, done: hasPrompt(tbWrongHost),
		check: func(t *testing.T, ev *evidence) {
			wantPrompt(t, ev, "Alert", tbWrongHost)
			wantText(t, "lab transcript", ev.transcript, "remote error: tls: bad certificate")
			avoidText(t, "lab transcript", ev.transcript, "TLS established")
		}},
	{scenario: "wrong-password", limit: 40 * time.Second, done: hasPrompt(tbLoginFailed),
		check: func(t *testing.T, ev *evidence) {
			wantPrompt(t, ev, tbLoginTitle, tbLoginFailed, "Enter New Password", "Retry", "Cancel")
			wantText(t, "lab transcript", ev.transcript, "authenticate PLAIN", "NO [AUTHENTICATIONFAILED] Authentication failed")
		}},
	{scenario: "starttls-stripped", send: true, limit: 60 * time.Second,
		done: func(ev *evidence) bool {
			_, ok := ev.prompt(tbNoSTARTTLS)
			return ok && strings.Contains(ev.transcript, "BAD Unknown command")
		},
		check: func(t *testing.T, ev *evidence) {
			wantPrompt(t, ev, "Send Message Error", "Sending of the message failed.", tbNoSTARTTLS)
			// IMAP: the client's STARTTLS, rewritten by the middlebox,
			// is refused, and Thunderbird says nothing about it.
			wantText(t, "lab transcript", ev.transcript, "rewrote client command", "XXXXXXXX", "BAD Unknown command")
			if n := len(ev.prompts()); n != 1 {
				t.Errorf("Thunderbird shows %d prompts, want only the sending error: %+v", n, ev.prompts())
			}
		}},
	{scenario: "tls10-only", limit: 40 * time.Second, done: hasPrompt(tbNonOverridable),
		check: func(t *testing.T, ev *evidence) {
			wantPrompt(t, ev, "Alert", tbNonOverridable)
			wantText(t, "lab transcript", ev.transcript, "client offered only unsupported versions")
		}},
	{scenario: "account-locked", limit: 40 * time.Second, done: hasPrompt(tbLoginFailed),
		check: func(t *testing.T, ev *evidence) {
			// The server's reason never reaches the screen: the same
			// dialog as a wrong password.
			wantPrompt(t, ev, tbLoginTitle, tbLoginFailed)
			wantText(t, "lab transcript", ev.transcript, "NO [CONTACTADMIN] Account disabled")
			for _, p := range ev.prompts() {
				avoidText(t, "Thunderbird's prompt", p.Text, "disabled", "CONTACTADMIN", "administrator")
			}
		}},
	{scenario: "basic-auth-disabled", limit: 40 * time.Second, done: hasPrompt(tbAppPassword),
		check: func(t *testing.T, ev *evidence) {
			wantPrompt(t, ev, "Alert", tbAppPassword)
			wantText(t, "lab transcript", ev.transcript, "NO [ALERT] Application-specific password required")
		}},
	// A plaintext client on the IMAPS port waits for a greeting; the
	// lab, like Dovecot, waits 3 minutes for a ClientHello: Thunderbird's
	// own 100 s timeout (mailnews.tcptimeout) ends it first.
	{scenario: "plain-on-993", limit: 150 * time.Second, done: hasPrompt(tbTimedOut),
		check: func(t *testing.T, ev *evidence) {
			wantPrompt(t, ev, "Alert", tbTimedOut)
			// Thunderbird closed the connection: the lab's handshake read
			// ends before its own timeout, and no command came.
			wantText(t, "lab transcript", ev.transcript, "TLS handshake failed: EOF")
			avoidText(t, "lab transcript", ev.transcript, "TLS established", "i/o timeout")
			noCommand(t, ev, "imaps#")
		}},
	// The same against a server that gives up first (the lab's handshake
	// timeout set to 5 s): Thunderbird blames the number of connections.
	{scenario: "plain-on-993", variant: "server-closes-first", handshakeTimeout: 5 * time.Second, limit: 60 * time.Second, done: hasPrompt(tbUnableConnect),
		check: func(t *testing.T, ev *evidence) {
			wantPrompt(t, ev, "Alert", tbUnableConnect)
			wantText(t, "lab transcript", ev.transcript, "TLS handshake failed", "i/o timeout")
			avoidText(t, "lab transcript", ev.transcript, "TLS established")
			noCommand(t, ev, "imaps#")
		}},
}

// startBudget bounds Thunderbird's start, up to Marionette's session.
const startBudget = 180 * time.Second

// subject is the subject of the message a case sends.
func subject(scenario string) string { return "maillab thunderbird " + scenario }

// TestThunderbird runs every case: a scenario, a fresh profile with the
// customer's settings, Thunderbird on its own display, and assertions on
// what the lab, Thunderbird's protocol log and its windows show.
func TestThunderbird(t *testing.T) {
	tools := requireTools(t)
	sdr, err := buildSDR(tools["gcc"], t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	t.Cleanup(func() { t.Logf("suite time: %s", time.Since(start).Round(time.Second)) })
	for _, c := range cases {
		name := c.scenario
		if c.variant != "" {
			name += "/" + c.variant
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			runCase(t, c, tools, sdr)
		})
	}
}

func runCase(t *testing.T, c tbCase, tools map[string]string, sdr string) {
	// Thunderbird's start takes 5-30 s, and up to two minutes on a
	// machine loaded by other Thunderbirds (Marionette's session waits
	// for its idle start-up tasks); the case's own limit counts from
	// there.
	ctx, cancel := context.WithTimeout(context.Background(), c.limit+startBudget)
	defer cancel()
	sc, err := scenarios.Lookup(c.scenario)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	r, err := sc.Start(lab.Options{Dir: filepath.Join(dir, "lab"), HandshakeTimeout: c.handshakeTimeout})
	if err != nil {
		t.Fatalf("start %s: %v", c.scenario, err)
	}
	t.Cleanup(func() { r.Close() })
	acct, err := accountFor(ctx, r.Customer)
	if err != nil {
		t.Fatalf("%s: %v", c.scenario, err)
	}
	var gates []*gate
	defer func() {
		for _, g := range gates {
			g.close()
		}
	}()
	for _, svc := range []struct {
		name string
		port *int
		to   int
	}{{acct.incoming, &acct.inPort, acct.in.Port}, {acct.outgoing, &acct.outPort, acct.out.Port}} {
		if svc.name == "" {
			continue
		}
		g, err := newGate(net.JoinHostPort(acct.address, strconv.Itoa(svc.to)))
		if err != nil {
			t.Fatal(err)
		}
		gates = append(gates, g)
		*svc.port = g.port()
	}
	// A message waits in the inbox for Thunderbird to fetch.
	seed := fmt.Sprintf("From: bob@%s\r\nTo: %s\r\nSubject: maillab seed %s\r\nMessage-ID: <seed.%s@maillab>\r\n\r\nWaiting in the inbox.\r\n",
		r.Lab.Domain, acct.acct.Email, c.scenario, c.scenario)
	if err := r.Lab.Store.Deliver(acct.acct.Email, []byte(seed)); err != nil {
		t.Fatalf("seed the inbox: %v", err)
	}
	profile := filepath.Join(dir, "profile")
	if err := os.Mkdir(profile, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := writeProfile(ctx, profile, tools, sdr, acct, r.Customer.CAFile); err != nil {
		t.Fatalf("profile: %v", err)
	}
	var extra []string
	if c.send {
		extra = []string{"-compose", fmt.Sprintf("to=%s,subject=%s,body=Sent by Thunderbird from the maillab e2e suite.", acct.acct.Email, subject(c.scenario))}
	}
	s, err := startSession(ctx, dir, profile, tools, extra...)
	if err != nil {
		t.Fatal(err)
	}
	defer s.stop()
	for _, g := range gates {
		g.open()
	}
	began := time.Now()
	deadline := began.Add(c.limit)
	sent := !c.send
	ev := &evidence{}
	look := func() {
		ws, err := s.windows(ctx)
		if err != nil {
			t.Logf("marionette: %v", err)
		} else {
			ev.windows = ws
		}
		ev.titles = s.titles(ctx)
		ev.mozLog = s.mozLog()
		data, _ := os.ReadFile(filepath.Join(r.Lab.Dir, "lab.log"))
		ev.transcript = string(data)
	}
	for {
		look()
		if !sent {
			for _, title := range ev.titles {
				if strings.HasPrefix(title, "Write: "+subject(c.scenario)) {
					time.Sleep(time.Second) // let the editor take focus
					if err := s.pressKeys(ctx, "Write: ", "ctrl+Return"); err != nil {
						t.Fatalf("send: %v", err)
					}
					t.Logf("pressed Ctrl+Enter in %q after %s", title, time.Since(began).Round(100*time.Millisecond))
					sent = true
				}
			}
		}
		if (sent && c.done(ev)) || time.Now().After(deadline) {
			break
		}
		select {
		case <-s.exited:
			t.Fatalf("thunderbird exited")
		case <-time.After(time.Second):
		}
	}
	t.Logf("looked for %s", time.Since(began).Round(100*time.Millisecond))
	shot := filepath.Join(dir, "screen.png")
	if err := s.disp.screenshot(shot); err != nil {
		t.Errorf("screenshot: %v", err)
	} else if out := os.Getenv("MAILLAB_TB_SHOTS"); out != "" {
		data, _ := os.ReadFile(shot)
		name := c.scenario
		if c.variant != "" {
			name += "-" + c.variant
		}
		os.WriteFile(filepath.Join(out, "thunderbird-"+name+".png"), data, 0o644)
	}
	t.Logf("screenshot: %s", shot)
	t.Logf("evidence:\n%s\nstatus: %q", ev, ev.statuses())
	t.Logf("lab transcript:\n%s", ev.transcript)
	c.check(t, ev)
	if t.Failed() {
		t.Logf("Thunderbird's protocol log:\n%s", tail(ev.mozLog, 20000))
	}
}
