package diagnose

import (
	"bytes"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/maillab/maillab/diagnose/internal/testpki"
	"github.com/maillab/maillab/rootcause"
)

// TestHostileServers checks that servers that never end a line, never end
// a reply, or drip bytes cannot hang the run or grow its memory: each run
// ends within a few timeouts with a diagnosis.
func TestHostileServers(t *testing.T) {
	megabyte := bytes.Repeat([]byte("A"), 1<<20)
	tests := []struct {
		name   string
		proto  string
		handle func(c *fconn)
		want   []rootcause.Code
	}{
		{"endless banner without line end", "submission", func(c *fconn) {
			c.Write([]byte("220 "))
			for i := 0; i < 64; i++ {
				if _, err := c.Write(megabyte[:64<<10]); err != nil {
					return
				}
			}
		}, []rootcause.Code{rootcause.WrongProtocol}},
		{"one megabyte greeting line", "imap", func(c *fconn) {
			c.Write([]byte("* OK "))
			c.Write(megabyte)
			c.Write([]byte("\r\n"))
		}, []rootcause.Code{rootcause.WrongProtocol}},
		{"drip feed", "pop3", func(c *fconn) {
			for _, b := range []byte("+OK slowly ready\r\n") {
				if _, err := c.Write([]byte{b}); err != nil {
					return
				}
				time.Sleep(150 * time.Millisecond)
			}
		}, []rootcause.Code{rootcause.ServerSlow}},
		{"endless multi-line EHLO", "submission", func(c *fconn) {
			c.send("220 mail.example.test ESMTP")
			c.read()
			for i := 0; i < 100000; i++ {
				if _, err := c.Write([]byte("250-X-FILLER\r\n")); err != nil {
					return
				}
			}
		}, []rootcause.Code{rootcause.WrongProtocol}},
		{"endless untagged IMAP responses", "imaps-plain", func(c *fconn) {
			c.send("* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] ready")
			c.read()
			for i := 0; i < 100000; i++ {
				if _, err := c.Write([]byte("* 1 EXISTS\r\n")); err != nil {
					return
				}
			}
		}, []rootcause.Code{rootcause.WrongProtocol}},
		{"huge literal", "imaps-plain", func(c *fconn) {
			c.send("* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] ready")
			c.read()
			c.send("* 1 FETCH (BODY[] {2000000000}")
			c.Write(megabyte)
		}, []rootcause.Code{rootcause.WrongProtocol}},
		{"binary garbage", "imap", func(c *fconn) {
			c.Write([]byte{0, 1, 2, 3, 0xff, 0xfe, '\n'})
		}, []rootcause.Code{rootcause.WrongProtocol}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newLab(t)
			srv := startServer(t, nil, tt.handle)
			s := svc("submission", srv.port, "starttls")
			switch tt.proto {
			case "imap":
				s = svc("imap", srv.port, "starttls")
			case "pop3":
				s = svc("pop3", srv.port, "starttls")
			case "imaps-plain":
				s = svc("imap", srv.port, "none")
			}
			cfg := l.config(s)
			cfg.Timeout = 500 * time.Millisecond
			cfg.AllowPlaintext = true
			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			start := time.Now()
			r := diagnoseT(t, cfg)
			elapsed := time.Since(start)
			runtime.ReadMemStats(&after)
			if elapsed > 8*cfg.Timeout {
				t.Errorf("Diagnose(%s) took %s, more than 8 timeouts", tt.name, elapsed)
			}
			if grown := after.TotalAlloc - before.TotalAlloc; grown > 16<<20 {
				t.Errorf("Diagnose(%s) allocated %d MiB", tt.name, grown>>20)
			}
			ok := false
			for _, w := range tt.want {
				ok = ok || r.RootCause == w
			}
			if !ok {
				var b strings.Builder
				r.WriteText(&b)
				t.Errorf("Diagnose(%s) = %s, want one of %v\n%s", tt.name, r.RootCause, tt.want, b.String())
			}
		})
	}
}

// TestBlackholedHostIsQuick checks the time bound of the brief: a host
// whose ports all drop SYNs is diagnosed within 10 s at the default
// timeout, with all services probed concurrently.
func TestBlackholedHostIsQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for real timeouts")
	}
	t.Parallel()
	l := newLab(t)
	cfg := l.config(svc("submission", droppedPort(t), "starttls"), svc("imaps", droppedPort(t), "tls"), svc("pop3s", droppedPort(t), "tls"))
	cfg.Timeout = 0 // the default, 3 s
	start := time.Now()
	r := diagnoseT(t, cfg)
	if elapsed := time.Since(start); elapsed > 10*time.Second {
		t.Errorf("blackholed host took %s, want < 10 s", elapsed)
	}
	wantRoot(t, "blackholed", r, rootcause.TCPTimeout)
}

// TestPlaintextAllowed checks that --allow-plaintext sends the login in
// clear text and says so.
func TestPlaintextAllowed(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	f := &smtpFake{ehlo: []string{"AUTH PLAIN LOGIN", "SIZE 1000000"}}
	s := smtpOn(t, l, f)
	s.Name, s.Security = "smtp", "none"
	cfg := l.config(s)
	cfg.AllowPlaintext = true
	r := diagnoseT(t, cfg)
	wantRoot(t, "allow-plaintext", r, rootcause.Healthy)
	if f.logins.Load() != 1 || !reportContains(r, "without encryption") {
		t.Errorf("logins = %d; report mentions clear text: %v", f.logins.Load(), reportContains(r, "without encryption"))
	}
}

// TestMechanisms logs in with each SASL mechanism the diagnoser speaks.
func TestMechanisms(t *testing.T) {
	for _, mech := range supportedMechs {
		t.Run(mech, func(t *testing.T) {
			t.Parallel()
			l := newLab(t)
			f := &smtpFake{ehloTLS: []string{"AUTH PLAIN LOGIN CRAM-MD5", "SIZE 1000000"}}
			cfg := l.config(smtpOn(t, l, f))
			cfg.AuthMechs = []string{mech}
			r := diagnoseT(t, cfg)
			wantRoot(t, mech, r, rootcause.Healthy)
			if !reportContains(r, "AUTH "+mech) {
				t.Errorf("the login did not use %s", mech)
			}
		})
	}
}

// TestIMAPAndPOP3WithSTARTTLS covers STARTTLS/STLS, LOGIN and USER/PASS.
func TestIMAPAndPOP3WithSTARTTLS(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	tlsCfg := l.serverTLS(testpki.Opts{})
	imap := &imapFake{tls: tlsCfg, capsTLS: "IMAP4rev1 LITERAL+", exists: 1}
	pop := &pop3Fake{tls: tlsCfg, capa: nil}
	s1 := startServer(t, nil, imap.handle)
	s2 := startServer(t, nil, pop.handle)
	r := diagnoseT(t, l.config(svc("imap", s1.port, "starttls"), svc("pop3", s2.port, "starttls")))
	wantRoot(t, "imap+pop3 starttls", r, rootcause.Healthy)
	if !reportContains(r, "LOGIN: a") || !reportContains(r, "FETCH 1 (ENVELOPE)") || !reportContains(r, "UIDL 2") {
		var b strings.Builder
		r.WriteText(&b)
		t.Errorf("report lacks the LOGIN command, the fetch or the UIDL:\n%s", b.String())
	}
}
