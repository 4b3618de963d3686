package imapd

import (
	"crypto/tls"
	"errors"
	"net"
	"strings"
	"testing"
	"time"
)

// guardDial connects in the given listener mode and reads the greeting.
func guardDial(t *testing.T, l *lab, mode listenMode) *raw {
	t.Helper()
	if mode == plainListener {
		r, _ := dialRaw(t, l.addr)
		return r
	}
	r, _ := dialRawTLS(t, l.addr, l.clientTLS)
	return r
}

// readUntilTagOrClose reads lines until one starts with tag (returned) or
// the server closes the connection (returned lines so far, closed true).
func readUntilTagOrClose(t *testing.T, r *raw, tag string) (lines []string, closed bool) {
	t.Helper()
	r.c.SetReadDeadline(time.Now().Add(ioTimeout))
	for {
		s, err := r.r.ReadString('\n')
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("no reply within %s (got %q): the server is silent", ioTimeout, lines)
			}
			return lines, true
		}
		s = strings.TrimRight(s, "\r\n")
		lines = append(lines, s)
		if strings.HasPrefix(s, tag+" ") {
			return lines, false
		}
	}
}

// TestGuardLiteralBeforeLogin: a literal over 4096 octets before login
// gets a reply (before the guard: none, the client waited forever).
func TestGuardLiteralBeforeLogin(t *testing.T) {
	for _, mode := range []listenMode{plainListener, lazyTLSListener} {
		t.Run(map[listenMode]string{plainListener: "plain", lazyTLSListener: "tls"}[mode], func(t *testing.T) {
			testGuardLiteralBeforeLogin(t, mode)
		})
	}
}

func testGuardLiteralBeforeLogin(t *testing.T, mode listenMode) {
	{
		l := startLab(t, withListener(mode))
		tests := []struct {
			name, send string
			want       string // prefix of the last line
			closed     bool
		}{
			{"synchronizing", "a1 LOGIN {5000}", "a1 NO [TOOBIG]", false},
			{"non-synchronizing", "a1 LOGIN {5000+}", "* BYE [TOOBIG]", true},
			{"password after a small literal", "a1 LOGIN {18}\r\nalice@example.test {100000}", "* BYE [TOOBIG]", true},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				r := guardDial(t, l, mode)
				if strings.Contains(tt.send, "{18}") {
					// Wait for the continuation of the first literal.
					first, rest, _ := strings.Cut(tt.send, "\r\n")
					r.send(first)
					if line := r.line(); !strings.HasPrefix(line, "+") {
						t.Fatalf("continuation: %q", line)
					}
					r.c.Write([]byte(rest + "\r\n"))
				} else {
					r.send(tt.send)
				}
				lines, closed := readUntilTagOrClose(t, r, "a1")
				if tt.closed && !closed {
					more, _ := readUntilTagOrClose(t, r, "no such tag")
					lines, closed = append(lines, more...), true
				}
				if len(lines) == 0 || !strings.HasPrefix(lines[len(lines)-1], tt.want) {
					t.Fatalf("reply %q, want last line %q", lines, tt.want)
				}
				if !closed {
					// The session goes on: a small login works.
					if _, done := r.cmd("LOGIN " + alice + " " + alicePass); !strings.HasPrefix(done, "OK") {
						t.Errorf("LOGIN after the refusal: %q", done)
					}
				}
			})
		}
	}
}

// TestGuardLiteralAfterLogin: after login, go-imap's own literal handling
// applies (APPEND literals are large).
func TestGuardLiteralAfterLogin(t *testing.T) {
	l := startLab(t, withListener(lazyTLSListener))
	r := guardDial(t, l, lazyTLSListener)
	r.expectOK("LOGIN " + alice + " " + alicePass)
	msg := "Subject: big\r\n\r\n" + strings.Repeat("x", 6000) + "\r\n"
	r.send("a9 APPEND INBOX {" + itoa64(int64(len(msg))) + "}")
	if line := r.line(); !strings.HasPrefix(line, "+") {
		t.Fatalf("APPEND continuation: %q", line)
	}
	r.c.Write([]byte(msg + "\r\n"))
	lines, _ := readUntilTagOrClose(t, r, "a9")
	if last := lines[len(lines)-1]; !strings.HasPrefix(last, "a9 OK") {
		t.Errorf("APPEND of %d octets: %q", len(msg), lines)
	}
}

// TestGuardNestingDepth: lists nested too deep get BAD (go-imap said NO
// [SERVERBUG] past 1000).
func TestGuardNestingDepth(t *testing.T) {
	for _, depth := range []int{MaxNestingDepth + 1, 1001, 5000} {
		t.Run(itoa64(int64(depth)), func(t *testing.T) { testGuardNestingDepth(t, depth) })
	}
}

func testGuardNestingDepth(t *testing.T, depth int) {
	{
		l := startLab(t, withListener(lazyTLSListener))
		r := guardDial(t, l, lazyTLSListener)
		r.expectOK("LOGIN " + alice + " " + alicePass)
		r.expectOK("SELECT INBOX")
		_, done := r.cmd("SEARCH " + strings.Repeat("(", depth) + "ALL" + strings.Repeat(")", depth))
		if !strings.HasPrefix(done, "BAD") || strings.Contains(done, "SERVERBUG") {
			t.Errorf("depth %d: %q, want BAD", depth, done)
		}
		// Parentheses in a quoted string do not count; the session goes on.
		if _, done := r.cmd(`SEARCH SUBJECT "` + strings.Repeat("(", depth) + `"`); !strings.HasPrefix(done, "OK") {
			t.Errorf("quoted parentheses: %q, want OK", done)
		}
	}
}

// TestGuardSTARTTLS: the plaintext guard steps aside at STARTTLS.
func TestGuardSTARTTLS(t *testing.T) {
	l := startLab(t)
	r, _ := dialRaw(t, l.addr)
	r.startTLS(l.clientTLS)
	r.expectOK("LOGIN " + alice + " " + alicePass)
	if tc, ok := r.c.(*tls.Conn); !ok || !tc.ConnectionState().HandshakeComplete {
		t.Fatalf("not TLS after STARTTLS")
	}
}

func TestLiteralHeader(t *testing.T) {
	tests := []struct {
		line    string
		size    int64
		nonSync bool
		ok      bool
	}{
		{"a1 LOGIN {5000}\r\n", 5000, false, true},
		{"a1 LOGIN {5000+}\r\n", 5000, true, true},
		{"a1 LOGIN {5000}\n", 5000, false, true},
		{"a1 LOGIN \"{5000}\"\r\n", 0, false, false},
		{"a1 LOGIN {x}\r\n", 0, false, false},
		{"a1 NOOP\r\n", 0, false, false},
	}
	for _, tt := range tests {
		size, nonSync, ok := literalHeader([]byte(tt.line))
		if size != tt.size || nonSync != tt.nonSync || ok != tt.ok {
			t.Errorf("literalHeader(%q) = %d, %v, %v; want %d, %v, %v", tt.line, size, nonSync, ok, tt.size, tt.nonSync, tt.ok)
		}
	}
}
