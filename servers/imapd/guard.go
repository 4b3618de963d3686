package imapd

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
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
// InsecureAuth); on a plaintext port it stops checking at STARTTLS,
// because go-imap then puts TLS below it.
type guardConn struct {
	net.Conn
	loggedIn func() bool
	onClose  func() // told before the guard closes the connection

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
	passthrough bool  // after STARTTLS, or once closed
	err         error // returned once ready is drained
	buf         []byte
}

func newGuardConn(c net.Conn, loggedIn func() bool, onClose func()) *guardConn {
	return &guardConn{Conn: c, loggedIn: loggedIn, onClose: onClose, firstLine: true, buf: make([]byte, 4096)}
}

// NetConn returns the connection below the guard.
func (g *guardConn) NetConn() net.Conn { return g.Conn }

func (g *guardConn) Read(p []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for len(g.ready) == 0 {
		if g.err != nil {
			return 0, g.err
		}
		if g.passthrough {
			return g.Conn.Read(p)
		}
		n, err := g.Conn.Read(g.buf)
		g.scan(g.buf[:n])
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
	g.ready = g.ready[n:]
	return n, nil
}

// scan checks incoming octets and moves what may reach go-imap to ready.
func (g *guardConn) scan(b []byte) {
	for len(b) > 0 && !g.passthrough && g.err == nil {
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
	g.line = nil
	g.lineLen = 0
	g.overflow = false
	g.inQuote, g.escaped = false, false
	if refusal != "" {
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
	g.ready = append(g.ready, line...)
	if hasLiteral {
		g.literal = size
		g.firstLine = false
		return
	}
	if first && isStartTLS(line) {
		// go-imap puts TLS below the guard: from here on it sees only
		// ciphertext.
		g.passthrough = true
	}
	g.resetCommand()
}

func (g *guardConn) resetCommand() {
	g.firstLine = true
	g.depth, g.maxDepth = 0, 0
}

// reply writes one response line below go-imap, which is waiting for the
// rest of a command and writes nothing meanwhile.
func (g *guardConn) reply(line string) {
	g.Conn.Write([]byte(line + "\r\n"))
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
