package imapd

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Limits the command guard enforces before go-imap parses a command.
const (
	// MaxLiteralBeforeLogin is the largest literal accepted before login
	// (go-imap's own limit for literals it buffers, RFC 7888 §4's 4096
	// for LITERAL-).
	MaxLiteralBeforeLogin = 4096
	// MaxNestingDepth is the deepest parenthesized list a command may
	// hold. go-imap stops at 1000 and then answers NO [SERVERBUG].
	MaxNestingDepth = 100
	// maxHeldLine bounds the bytes of one command line the guard holds
	// back; longer lines pass unchecked (go-imap refuses commands over
	// 50 KiB itself).
	maxHeldLine = 64 << 10
)

// guardConn sits between the plaintext connection and go-imap and frames
// the client's commands itself, because go-imap v2.0.0-beta.8 mishandles
// two of them (issue 12, defect 7):
//
//   - a literal over 4096 octets before login: go-imap refuses it but
//     loses the refusal and reads the literal's octets as the argument,
//     while the client waits for the continuation: no reply at all;
//   - a list nested deeper than 1000: the decoder's error is not a syntax
//     error to go-imap, which answers "NO [SERVERBUG]".
//
// The guard holds each command line until its CRLF (literal octets pass
// through as they come) and answers such a command itself in the
// protocol's words (RFC 9051 §7.1): the line never reaches go-imap.
// When the offending line is the first of its command, the reply is
// tagged and the session goes on; in the middle of a command (after a
// literal go-imap already read) it is "* BYE" and the connection closes.
//
// It must be what go-imap reads: on implicit TLS it sits above the
// *tls.Conn (the server then treats the connection as secure through
// InsecureAuth). On a plaintext port go-imap would put TLS below it at
// STARTTLS and the guard would see only ciphertext, so the guard answers
// STARTTLS itself (startTLS set): it replies OK, ends go-imap's plaintext
// session with EOF and retires; the connection then starts over inside TLS
// with a new guard above the *tls.Conn and a new go-imap session that
// takes the connection for implicit TLS (conn.serve).
type guardConn struct {
	net.Conn
	loggedIn func() bool
	onClose  func() // told before the guard closes the connection
	// startTLS, if set, makes the guard answer STARTTLS before login
	// itself (a plaintext port with STARTTLS offered).
	startTLS *tls.Config
	// secure: the guard sits above TLS (implicit, or after STARTTLS).
	secure bool
	// debug, if set, receives the lines the guard answers itself (the
	// session's transcript); go-imap never sees them.
	debug io.Writer

	mu          sync.Mutex
	ready       []byte // checked bytes waiting for go-imap
	line        []byte // the current line, held back
	lineLen     int    // octets of the current line, held or not
	overflow    bool   // the current line was too long to hold
	literal     int64  // literal octets still to pass through
	firstLine   bool   // the current line starts a command
	depth       int
	maxDepth    int
	inQuote     bool
	escaped     bool
	passthrough bool  // once closed
	err         error // returned once ready is drained

	// upgrade is a STARTTLS the guard took: answered once go-imap has
	// read everything before it; then the guard is retired.
	upgrade *tlsUpgrade
	// retired: STARTTLS answered, go-imap's session over the guard ends.
	// Atomic: Write and Close must not wait for a Read blocked on the
	// socket.
	retired atomic.Bool
	// dropGreeting: go-imap's greeting of the session that goes on after
	// STARTTLS is not sent (go-imap cannot be told not to greet). Only
	// Write reads it; go-imap serializes its writes.
	dropGreeting bool
}

// tlsUpgrade is a STARTTLS command the guard answers itself.
type tlsUpgrade struct {
	tag  string
	line []byte
	// rest is what the client sent after the command line: the start of
	// its TLS handshake (RFC 9051 §6.2.1: nothing else may follow
	// STARTTLS in plaintext), never read as commands.
	rest     []byte
	answered bool
}

func newGuardConn(c net.Conn, loggedIn func() bool, onClose func()) *guardConn {
	return &guardConn{Conn: c, loggedIn: loggedIn, onClose: onClose, firstLine: true}
}

// NetConn returns the connection below the guard.
func (g *guardConn) NetConn() net.Conn { return g.Conn }

func (g *guardConn) Read(p []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for len(g.ready) == 0 {
		if g.upgrade != nil && !g.upgrade.answered && g.err == nil {
			// go-imap has handled every command before STARTTLS and
			// waits for the next: answer it (RFC 9051 §6.2.1) and end
			// the plaintext session.
			g.answerStartTLS()
		}
		if g.err != nil {
			return 0, g.err
		}
		if g.passthrough {
			return g.Conn.Read(p)
		}
		// Read into go-imap's own buffer: scan copies what it keeps, so
		// an idle session holds no read buffer of the guard's (a 4 KiB
		// one per connection was 11% of the heap with 250 IMAPS
		// sessions held, scripts/soak.sh).
		n, err := g.Conn.Read(p)
		g.scan(p[:n])
		if err != nil && g.err == nil && errors.Is(err, os.ErrDeadlineExceeded) {
			// RFC 9051 §7.1.5: BYE when the server closes for
			// autologout (go-imap would just close). Dovecot's words.
			g.Conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
			g.reply("* BYE Disconnected for inactivity.")
		}
		if err != nil {
			if len(g.line) > 0 && g.err == nil {
				// Pass on what came before the error (go-imap reports
				// the partial command as such).
				g.ready = append(g.ready, g.line...)
				g.line = g.line[:0]
			}
			if g.err == nil {
				g.err = err
			}
		}
	}
	n := copy(p, g.ready)
	if n == len(g.ready) {
		g.ready = g.ready[:0] // keeps its capacity for the next read
	} else {
		g.ready = g.ready[n:]
	}
	return n, nil
}

// scan checks incoming octets and moves what may reach go-imap to ready.
func (g *guardConn) scan(b []byte) {
	for len(b) > 0 && !g.passthrough && g.err == nil && g.upgrade == nil {
		if g.literal > 0 {
			n := int64(len(b))
			if n > g.literal {
				n = g.literal
			}
			g.ready = append(g.ready, b[:n]...)
			g.literal -= n
			b = b[n:]
			continue
		}
		i := bytes.IndexByte(b, '\n')
		chunk := b
		if i >= 0 {
			chunk = b[:i+1]
		}
		b = b[len(chunk):]
		g.track(chunk)
		g.lineLen += len(chunk)
		if g.overflow || g.lineLen > maxHeldLine {
			g.overflow = true
			g.ready = append(g.ready, g.line...)
			g.ready = append(g.ready, chunk...)
			g.line = g.line[:0]
		} else {
			g.line = append(g.line, chunk...)
		}
		if i >= 0 {
			g.endLine()
		}
	}
	if len(b) > 0 && g.passthrough && g.err == nil {
		g.ready = append(g.ready, b...)
	}
	if len(b) > 0 && g.upgrade != nil {
		g.upgrade.rest = append(g.upgrade.rest, b...)
	}
}

// track follows quoting and list nesting (RFC 9051 §4.3: quoted strings
// cannot hold CR or LF; parentheses inside them do not count).
func (g *guardConn) track(chunk []byte) {
	for _, c := range chunk {
		switch {
		case g.inQuote && g.escaped:
			g.escaped = false
		case g.inQuote && c == '\\':
			g.escaped = true
		case c == '"':
			g.inQuote = !g.inQuote
		case g.inQuote:
		case c == '(':
			g.depth++
			g.maxDepth = max(g.maxDepth, g.depth)
		case c == ')':
			g.depth--
		}
	}
}

// endLine decides on a complete line.
func (g *guardConn) endLine() {
	line := g.line
	size, nonSync, hasLiteral := literalHeader(line)
	var refusal string
	switch {
	case g.overflow:
	case g.secure && g.firstLine && !hasLiteral && isStartTLS(line):
		// RFC 9051 §6.2.1: BAD for STARTTLS after TLS (go-imap, which
		// does not see the TLS, would say NO "not supported").
		refusal = "BAD TLS is already active"
	case g.maxDepth > MaxNestingDepth:
		// RFC 9051 §7.1.5: BAD for a command the server cannot parse.
		refusal = fmt.Sprintf("BAD [CLIENTBUG] Lists nested deeper than %d are not accepted", MaxNestingDepth)
	case hasLiteral && size > MaxLiteralBeforeLogin && !g.loggedIn():
		if nonSync {
			// RFC 7888 §4: a non-synchronizing literal over the limit
			// gets BAD; its octets are on their way, so the session ends.
			refusal = fmt.Sprintf("BAD [TOOBIG] Literals over %d octets are not accepted before login", MaxLiteralBeforeLogin)
		} else {
			// RFC 9051 §7.5: a tagged NO instead of the continuation
			// request; the client then does not send the literal.
			refusal = fmt.Sprintf("NO [TOOBIG] Literals over %d octets are not accepted before login", MaxLiteralBeforeLogin)
		}
	}
	first := g.firstLine
	g.line = g.line[:0] // line is copied before it is kept (ready, upgrade)
	g.lineLen = 0
	g.overflow = false
	g.inQuote, g.escaped = false, false
	if refusal != "" {
		g.recordClient(line)
		tag := commandTag(line)
		if first && tag != "" && !(hasLiteral && nonSync) {
			g.reply(tag + " " + refusal)
			g.resetCommand()
			return
		}
		if first && tag != "" {
			g.reply(tag + " " + refusal)
		}
		_, text, _ := strings.Cut(refusal, " ")
		g.reply("* BYE " + text)
		g.closeNow()
		return
	}
	if first && !hasLiteral && g.startTLS != nil && isStartTLS(line) && !g.loggedIn() {
		// The guard answers it (see guardConn); go-imap refuses the
		// others (after login BAD, without TLS NO).
		g.upgrade = &tlsUpgrade{tag: commandTag(line), line: bytes.Clone(line)}
		g.resetCommand()
		return
	}
	g.ready = append(g.ready, line...)
	if hasLiteral {
		g.literal = size
		g.firstLine = false
		return
	}
	g.resetCommand()
}

// answerStartTLS answers the STARTTLS the guard took and ends go-imap's
// plaintext session: its next read gets EOF, and closing the guard no
// longer closes the connection.
func (g *guardConn) answerStartTLS() {
	up := g.upgrade
	up.answered = true
	g.recordClient(up.line)
	if _, err := g.serverWriter().Write([]byte(up.tag + " OK Begin TLS negotiation now\r\n")); err != nil {
		g.err = err
		g.upgrade = nil
		return
	}
	g.retired.Store(true)
	g.err = io.EOF
}

// takeUpgrade returns the STARTTLS the guard answered, if any, once
// go-imap's plaintext session has ended.
func (g *guardConn) takeUpgrade() *tlsUpgrade {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.upgrade == nil || !g.retired.Load() {
		return nil
	}
	return g.upgrade
}

// upgrading reports whether the guard has answered STARTTLS: its go-imap
// session ends, the connection does not.
func (g *guardConn) upgrading() bool { return g.retired.Load() }

// Close closes the connection, unless the guard has handed it on to TLS.
func (g *guardConn) Close() error {
	if g.upgrading() {
		return nil
	}
	return g.Conn.Close()
}

// Write passes go-imap's responses on, but none after STARTTLS: go-imap's
// plaintext session is over, its goodbye must not reach the TLS stream.
func (g *guardConn) Write(p []byte) (int, error) {
	if g.upgrading() {
		return 0, net.ErrClosed
	}
	if g.dropGreeting {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			return len(p), nil
		}
		g.dropGreeting = false
		n, err := g.Conn.Write(p[i+1:])
		return i + 1 + n, err
	}
	return g.Conn.Write(p)
}

func (g *guardConn) resetCommand() {
	g.firstLine = true
	g.depth, g.maxDepth = 0, 0
}

// reply writes one response line below go-imap, which is waiting for the
// rest of a command and writes nothing meanwhile; the transcript gets it
// as the server's.
func (g *guardConn) reply(line string) {
	g.serverWriter().Write([]byte(line + "\r\n"))
}

// recordClient puts a line the guard took from the client (go-imap never
// reads it, so never tees it) into the transcript.
func (g *guardConn) recordClient(line []byte) {
	if g.debug != nil {
		// The transcript tells the directions apart by io.TeeReader
		// (client) and io.MultiWriter (server), as go-imap tees.
		io.Copy(io.Discard, io.TeeReader(bytes.NewReader(line), g.debug))
	}
}

// serverWriter writes to the client and, as the server's, to the
// transcript.
func (g *guardConn) serverWriter() io.Writer {
	if g.debug != nil {
		return io.MultiWriter(g.Conn, g.debug)
	}
	return g.Conn
}

func (g *guardConn) closeNow() {
	if g.onClose != nil {
		g.onClose()
	}
	g.Conn.Close()
	g.err = net.ErrClosed
	g.passthrough = true
}

// literalHeader parses a literal announced at the end of a line:
// "{N}\r\n" or "{N+}\r\n" (RFC 9051 §4.3, RFC 7888 §3).
func literalHeader(line []byte) (size int64, nonSync, ok bool) {
	line = bytes.TrimSuffix(line, []byte("\n"))
	line = bytes.TrimSuffix(line, []byte("\r"))
	if !bytes.HasSuffix(line, []byte("}")) {
		return 0, false, false
	}
	open := bytes.LastIndexByte(line, '{')
	if open < 0 {
		return 0, false, false
	}
	num := line[open+1 : len(line)-1]
	if n := len(num); n > 0 && num[n-1] == '+' {
		nonSync, num = true, num[:n-1]
	}
	size, err := strconv.ParseInt(string(num), 10, 64)
	if err != nil || size < 0 {
		return 0, false, false
	}
	return size, nonSync, true
}

// commandTag is the tag of a command line: its first atom.
func commandTag(line []byte) string {
	tag, _, ok := bytes.Cut(line, []byte(" "))
	if !ok || len(tag) == 0 || bytes.ContainsAny(tag, "\r\n(){%*\"\\+") {
		return ""
	}
	return string(tag)
}

func isStartTLS(line []byte) bool {
	_, rest, ok := bytes.Cut(bytes.TrimRight(line, "\r\n"), []byte(" "))
	return ok && bytes.EqualFold(bytes.TrimSpace(rest), []byte("STARTTLS"))
}

var _ net.Conn = (*guardConn)(nil)
