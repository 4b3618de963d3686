package lab_test

import (
	"bufio"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/maillab/maillab/lab"
	"github.com/maillab/maillab/settings"
)

// openGreeted connects to svc from loopback address 127.0.2.<from> (TLS
// on implicit-TLS ports) and returns the connection and its first line.
func openGreeted(t *testing.T, l *lab.Lab, service string, from byte) (net.Conn, *bufio.Reader, string) {
	t.Helper()
	svc := l.Settings().Services[service]
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 2, from)}}
	c, err := d.Dial("tcp", addr(svc))
	if err != nil {
		t.Fatalf("dial %s: %v", service, err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if svc.Security == settings.SecurityTLS {
		tc := tls.Client(c, &tls.Config{RootCAs: l.CertPool(), ServerName: svc.Host})
		if err := tc.Handshake(); err != nil {
			t.Fatalf("%s: TLS handshake: %v", service, err)
		}
		c = tc
	}
	br := bufio.NewReader(c)
	line, err := br.ReadString('\n')
	if err != nil {
		t.Fatalf("%s: greeting: %v", service, err)
	}
	return c, br, strings.TrimRight(line, "\r\n")
}

// openWithin connects until the greeting starts with want (a slot freed
// by a closed connection comes back once the server has seen the close).
func openWithin(t *testing.T, l *lab.Lab, service string, from byte, want string) net.Conn {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, _, greeting := openGreeted(t, l, service, from)
		if strings.HasPrefix(greeting, want) {
			return c
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatalf("%s: greeting %q, want %q", service, greeting, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestConnectionLimits checks that a connection over a limit gets its
// protocol's own reply (inside TLS on implicit-TLS ports) and that a
// closed connection gives its slot back.
func TestConnectionLimits(t *testing.T) {
	services := []struct {
		name                 string
		perClient, total     string // prefix of the reply over each limit
		perClientHas, within string
	}{
		{"smtp", "421 4.7.0 mail.example.test Error: too many connections from 127.0.2.1", "421 4.7.0 mail.example.test Error: too many connections, try again later", "", "220 "},
		{"submissions", "421 4.7.0 mail.example.test Error: too many connections from 127.0.2.1", "421 4.7.0 ", "", "220 "},
		{"imap", "* BYE [LIMIT] Too many connections from 127.0.2.1", "* BYE [UNAVAILABLE] Too many connections", "", "* OK"},
		{"imaps", "* BYE [LIMIT] ", "* BYE [UNAVAILABLE] ", "", "* OK"},
		{"pop3", "-ERR [SYS/TEMP] Too many connections from 127.0.2.1", "-ERR [SYS/TEMP] Too many connections, try again later.", "", "+OK"},
		{"pop3s", "-ERR [SYS/TEMP] ", "-ERR [SYS/TEMP] ", "", "+OK"},
	}
	limits := []struct {
		name string
		opts lab.Options
		from byte // address of the second client
	}{
		{"per client", lab.Options{MaxConnectionsPerClient: 1}, 1},
		{"total", lab.Options{MaxConnections: 1}, 2},
	}
	for _, lim := range limits {
		l := startLab(t, lim.opts)
		for _, svc := range services {
			t.Run(lim.name+"/"+svc.name, func(t *testing.T) {
				// The previous case's connections may still be closing on
				// the server's side: wait until the first one is let in.
				first := openWithin(t, l, svc.name, 1, svc.within)
				_, br, reply := openGreeted(t, l, svc.name, lim.from)
				want := svc.perClient
				if lim.name == "total" {
					want = svc.total
				}
				if !strings.HasPrefix(reply, want) {
					t.Errorf("connection over the limit: reply %q, want %q", reply, want)
				}
				if _, err := br.ReadString('\n'); !errors.Is(err, io.EOF) {
					t.Errorf("after the refusal: %v, want the connection closed (EOF)", err)
				}
				// The first connection's slot comes back when it closes.
				first.Close()
				openWithin(t, l, svc.name, lim.from, svc.within).Close()
			})
		}
	}
}

// TestTimeouts checks each protocol's command timeout with small values:
// a client that sends one byte at a time and never ends its line
// (slowloris) is cut, with a reply where the protocol has one.
func TestTimeouts(t *testing.T) {
	const short = 300 * time.Millisecond
	l := startLab(t, lab.Options{
		SMTPTimeout:        short,
		IMAPCommandTimeout: short,
		POP3Timeout:        short,
	})
	tests := []struct {
		service string
		line    string // sent one byte every 50 ms, never finished
		reply   string // prefix of the last line before the close; "" none
	}{
		// go-smtp: "421 4.4.2 ... Idle timeout".
		{"smtp", "MAIL FROM:<slow@example.test>", "421 4.4.2 "},
		{"submission", "EHLO slowloris.example", "421 4.4.2 "},
		{"submissions", "EHLO slowloris.example", "421 4.4.2 "},
		// Before login, IMAP's command timeout ends the session with a
		// BYE (RFC 9051 §7.1.5).
		{"imap", "a1 LOGIN alice secret", "* BYE Disconnected for inactivity."},
		{"imaps", "a1 LOGIN alice secret", "* BYE Disconnected for inactivity."},
		// RFC 1939 §3: the autologout timer closes without a response.
		{"pop3", "USER alice", ""},
		{"pop3s", "USER alice", ""},
	}
	for _, tt := range tests {
		t.Run(tt.service, func(t *testing.T) {
			c, br, _ := openGreeted(t, l, tt.service, 3)
			c.SetDeadline(time.Now().Add(20 * time.Second))
			stop := make(chan struct{})
			defer close(stop)
			go func() {
				for i := 0; ; i = (i + 1) % len(tt.line) {
					select {
					case <-stop:
						return
					case <-time.After(50 * time.Millisecond):
					}
					if _, err := c.Write([]byte{tt.line[i]}); err != nil {
						return
					}
				}
			}()
			var last string
			for {
				line, err := br.ReadString('\n')
				if err != nil {
					var ne net.Error
					if errors.As(err, &ne) && ne.Timeout() {
						t.Fatalf("still connected after 20s of one byte every 50ms; the %s command timeout does not cut it", short)
					}
					break
				}
				last = strings.TrimRight(line, "\r\n")
			}
			if tt.reply != "" && !strings.HasPrefix(last, tt.reply) {
				t.Errorf("last reply %q, want %q", last, tt.reply)
			}
		})
	}
}

// TestIdleTimeoutIMAP checks the autologout after login.
func TestIdleTimeoutIMAP(t *testing.T) {
	l := startLab(t, lab.Options{IMAPIdleTimeout: 300 * time.Millisecond, MaxConnectionsPerClient: -1})
	s := l.Settings()
	alice := s.Accounts[0]
	c, br, _ := openGreeted(t, l, "imaps", 4)
	c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(c, "a1 LOGIN "+alice.Username+" "+alice.Password+"\r\n"); err != nil {
		t.Fatal(err)
	}
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("LOGIN: %v", err)
		}
		if strings.HasPrefix(line, "a1 ") {
			if !strings.HasPrefix(line, "a1 OK") {
				t.Fatalf("LOGIN: %q", line)
			}
			break
		}
	}
	rest, err := io.ReadAll(br)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("still logged in after 20s idle; want autologout after 300ms")
	}
	if want := "* BYE Disconnected for inactivity.\r\n"; string(rest) != want {
		t.Errorf("autologout: %q, want %q", rest, want)
	}
}
