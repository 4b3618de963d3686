package imapd

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"net"
	"strings"
	"testing"
	"time"
)

// guardMode is how a guard test reaches the server: the three ways a
// client gets to an IMAP command line.
type guardMode struct {
	name     string
	listener listenMode
	startTLS bool // upgrade with STARTTLS on the plaintext port first
}

var guardModes = []guardMode{
	{"plain", plainListener, false},
	{"starttls", plainListener, true}, // port 143 after STARTTLS
	{"tls", lazyTLSListener, false},   // port 993
}

// guardDial connects in the given mode and reads the greeting (and, for
// STARTTLS, upgrades the connection).
func guardDial(t *testing.T, l *lab, mode guardMode) *raw {
	t.Helper()
	if mode.listener == plainListener {
		r, _ := dialRaw(t, l.addr)
		if mode.startTLS {
			r.startTLS(l.clientTLS)
		}
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
// gets a reply (before the guard: none, the client waited forever), the
// same on every port: plaintext, STARTTLS (before the guard handled
// STARTTLS itself: none, as without the guard) and implicit TLS.
func TestGuardLiteralBeforeLogin(t *testing.T) {
	for _, mode := range guardModes {
		t.Run(mode.name, func(t *testing.T) { testGuardLiteralBeforeLogin(t, mode) })
	}
}

func testGuardLiteralBeforeLogin(t *testing.T, mode guardMode) {
	{
		l := startLab(t, withListener(mode.listener))
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
	for _, mode := range guardModes {
		t.Run(mode.name, func(t *testing.T) { testGuardLiteralAfterLogin(t, mode) })
	}
}

func testGuardLiteralAfterLogin(t *testing.T, mode guardMode) {
	l := startLab(t, withListener(mode.listener))
	r := guardDial(t, l, mode)
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
// [SERVERBUG] past 1000), before login and after it, the same on every
// port (after STARTTLS the guard used to be gone: NO [SERVERBUG] again).
func TestGuardNestingDepth(t *testing.T) {
	for _, mode := range guardModes {
		for _, depth := range []int{MaxNestingDepth + 1, 1001, 5000} {
			t.Run(mode.name+"/"+itoa64(int64(depth)), func(t *testing.T) { testGuardNestingDepth(t, mode, depth) })
		}
	}
}

func testGuardNestingDepth(t *testing.T, mode guardMode, depth int) {
	{
		l := startLab(t, withListener(mode.listener))
		r := guardDial(t, l, mode)
		// Before login: a command go-imap would parse (LOGIN takes
		// strings, not lists, but the framing is checked first).
		if _, done := r.cmd("ID " + strings.Repeat("(", depth) + strings.Repeat(")", depth)); !strings.HasPrefix(done, "BAD [CLIENTBUG] Lists nested") {
			t.Errorf("depth %d before login: %q, want BAD [CLIENTBUG] Lists nested…", depth, done)
		}
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

// TestGuardSTARTTLS: the guard answers STARTTLS itself and goes on inside
// TLS; to the client it is an ordinary STARTTLS (RFC 9051 §6.2.1): the
// capabilities change (no STARTTLS, no LOGINDISABLED, AUTH= offered), no
// second greeting, and plaintext sent after the command is never read as
// a command.
func TestGuardSTARTTLS(t *testing.T) {
	l := startLab(t, withConfig(func(c *Config) { c.AllowInsecureAuth = false }))
	t.Run("capabilities", func(t *testing.T) {
		r, _ := dialRaw(t, l.addr)
		before, _ := r.cmd("CAPABILITY")
		if !strings.Contains(strings.Join(before, " "), "STARTTLS") || !strings.Contains(strings.Join(before, " "), "LOGINDISABLED") {
			t.Fatalf("CAPABILITY before STARTTLS: %q, want STARTTLS and LOGINDISABLED", before)
		}
		r.startTLS(l.clientTLS)
		// The first thing the server says inside TLS answers our
		// command: no greeting is repeated.
		after, _ := r.cmd("CAPABILITY")
		caps := strings.Join(after, " ")
		if len(after) != 1 || strings.Contains(caps, "STARTTLS") || strings.Contains(caps, "LOGINDISABLED") || !strings.Contains(caps, "AUTH=PLAIN") {
			t.Fatalf("CAPABILITY after STARTTLS: %q, want one line without STARTTLS and LOGINDISABLED, with AUTH=PLAIN", after)
		}
		r.expectOK("LOGIN " + alice + " " + alicePass)
		if tc, ok := r.c.(*tls.Conn); !ok || !tc.ConnectionState().HandshakeComplete {
			t.Fatalf("not TLS after STARTTLS")
		}
		if req := l.lastRequest(); !req.TLS {
			t.Errorf("auth.Request.TLS = false after STARTTLS")
		}
		if _, done := r.cmd("STARTTLS"); !strings.HasPrefix(done, "BAD") {
			t.Errorf("second STARTTLS: %q, want BAD", done)
		}
	})
	t.Run("handshake in the same segment", func(t *testing.T) {
		// A client that sends its ClientHello right behind STARTTLS,
		// in one write: those bytes start the handshake.
		r, _ := dialRaw(t, l.addr)
		pc := &pipelinedStartTLS{Conn: r.c, r: r.r}
		tc := tls.Client(pc, l.clientTLS)
		tc.SetDeadline(time.Now().Add(ioTimeout))
		if err := tc.Handshake(); err != nil {
			t.Fatalf("handshake behind STARTTLS: %v (server said %q)", err, pc.reply)
		}
		if !strings.HasPrefix(pc.reply, "a1 OK") {
			t.Fatalf("STARTTLS: %q", pc.reply)
		}
		r.c, r.r = tc, bufio.NewReader(tc)
		r.tag = 1
		r.expectOK("LOGIN " + alice + " " + alicePass)
	})
	t.Run("pipelined after STARTTLS", func(t *testing.T) {
		// CVE-2011-0411 style: a command sent in plaintext together with
		// STARTTLS must not run inside TLS.
		r, _ := dialRaw(t, l.addr)
		r.c.Write([]byte("a1 STARTTLS\r\na2 CAPABILITY\r\n"))
		if line := r.line(); !strings.HasPrefix(line, "a1 OK") {
			t.Fatalf("STARTTLS: %q", line)
		}
		tc := tls.Client(r.c, l.clientTLS)
		tc.SetDeadline(time.Now().Add(ioTimeout))
		if err := tc.Handshake(); err == nil {
			t.Fatalf("handshake succeeded over the injected plaintext")
		}
	})
}

// TestGuardSTARTTLSRefused: where go-imap refuses STARTTLS, the guard
// leaves the command to it and the session goes on in plaintext.
func TestGuardSTARTTLSRefused(t *testing.T) {
	tests := []struct {
		name   string
		cfg    func(*Config)
		login  bool
		status string
	}{
		{"after login", func(*Config) {}, true, "BAD"},
		{"no TLS configured", func(c *Config) { c.TLSConfig = nil }, false, "NO"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := startLab(t, withConfig(tt.cfg))
			r, _ := dialRaw(t, l.addr)
			if tt.login {
				r.expectOK("LOGIN " + alice + " " + alicePass)
			}
			if _, done := r.cmd("STARTTLS"); !strings.HasPrefix(done, tt.status) {
				t.Errorf("STARTTLS: %q, want %s", done, tt.status)
			}
			r.expectOK("NOOP")
		})
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

// pipelinedStartTLS is a client connection that sends "a1 STARTTLS" in
// the same write as the first TLS bytes, and reads the server's reply
// line before passing what follows to TLS.
type pipelinedStartTLS struct {
	net.Conn
	r     *bufio.Reader
	sent  bool
	reply string
}

func (c *pipelinedStartTLS) Write(p []byte) (int, error) {
	if !c.sent {
		c.sent = true
		if _, err := c.Conn.Write(append([]byte("a1 STARTTLS\r\n"), p...)); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	return c.Conn.Write(p)
}

func (c *pipelinedStartTLS) Read(p []byte) (int, error) {
	if c.reply == "" {
		line, err := c.r.ReadString('\n')
		c.reply = strings.TrimRight(line, "\r\n")
		if err != nil {
			return 0, err
		}
	}
	return c.r.Read(p)
}

// TestGuardRefusalsInTranscript: what the guard answers itself (go-imap
// never sees the command) reaches the session's transcript, both the
// client's line and the reply, on every port. Before, the transcript
// showed neither: a trainer watching it saw the client go quiet.
func TestGuardRefusalsInTranscript(t *testing.T) {
	for _, mode := range guardModes {
		t.Run(mode.name, func(t *testing.T) {
			ts := &transcripts{conns: map[string]*bytes.Buffer{}}
			l := startLab(t, withListener(mode.listener), withConfig(func(c *Config) { c.Transcript = ts.writer }))
			r := guardDial(t, l, mode)
			local := r.c
			if _, done := r.cmd("LOGIN {5000}"); !strings.HasPrefix(done, "NO [TOOBIG]") {
				t.Fatalf("literal over the limit: %q, want NO [TOOBIG]", done)
			}
			deep := strings.Repeat("(", MaxNestingDepth+1) + strings.Repeat(")", MaxNestingDepth+1)
			if _, done := r.cmd("ID " + deep); !strings.HasPrefix(done, "BAD [CLIENTBUG]") {
				t.Fatalf("deep list: %q, want BAD [CLIENTBUG]", done)
			}
			r.cmd("LOGOUT")
			l.srv.Close()
			got := ts.of(local)
			for _, want := range []string{
				" LOGIN {5000}\r\n", " NO [TOOBIG] Literals over 4096 octets are not accepted before login\r\n",
				" ID " + deep + "\r\n", " BAD [CLIENTBUG] Lists nested deeper than 100 are not accepted\r\n",
				" LOGOUT\r\n",
			} {
				if !strings.Contains(got, want) {
					t.Errorf("transcript lacks %q:\n%s", want, got)
				}
			}
		})
	}
}
