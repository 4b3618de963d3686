package pop3

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// state is a POP3 session state (RFC 1939 §3). UPDATE is not a waiting
// state: it is entered and left within the QUIT command.
type state uint8

const (
	stateAuthorization state = 1 << iota
	stateTransaction
)

// errClientGone ends a connection whose client closed it; like errQuit it
// never leaves the package.
var errClientGone = errors.New("pop3: client closed the connection")

// errLineTooLong is readLine's report of an over-long line.
var errLineTooLong = errors.New("line too long")

// tlsStater is implemented by *tls.Conn and by any wrapper that exposes the
// TLS state of the connection it carries.
type tlsStater interface {
	ConnectionState() tls.ConnectionState
}

// entry is one message of the snapshot taken at login.
type entry struct {
	Message
	deleted bool
}

// Conn is one client connection. Its methods are safe to call from any
// goroutine, including from Backend and Session methods.
type Conn struct {
	server  *Server
	raw     net.Conn // as accepted; closing it ends the connection at once
	aborted atomic.Bool

	mu      sync.Mutex
	nc      net.Conn // raw, or the *tls.Conn after STLS
	session Session

	// Owned by the connection's goroutine.
	br       *bufio.Reader
	bw       *bufio.Writer
	werr     error // first write error; every later write fails with it
	state    state
	user     string // the argument of USER, waiting for PASS
	haveUser bool
	maildrop []entry
	bad      bool // the current command was invalid
	badCount int  // consecutive invalid commands
	// saslLeft: SASL responses the client's last AUTH command still owes,
	// counted on the client's stream (see traceCommand).
	saslLeft int
}

func newConn(s *Server, nc net.Conn) *Conn {
	c := &Conn{server: s, raw: nc, nc: nc, state: stateAuthorization}
	// For implicit TLS, abort closes the transport under the TLS layer, so
	// that it never waits to send a close_notify alert. Other wrappers are
	// closed themselves: their Close may have work to do.
	if tc, ok := nc.(*tls.Conn); ok && tc.NetConn() != nil {
		c.raw = tc.NetConn()
	}
	c.br = bufio.NewReaderSize(nc, 4096)
	c.bw = bufio.NewWriterSize(connWriter{c}, 4096)
	return c
}

// Server returns the server that accepted the connection.
func (c *Conn) Server() *Server { return c.server }

// Conn returns the current network connection: the one accepted, or the
// *tls.Conn that wraps it after STLS.
func (c *Conn) Conn() net.Conn {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nc
}

// Session returns the connection's Session, or nil before NewSession has
// returned.
func (c *Conn) Session() Session {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.session
}

// RemoteAddr returns the client's address.
func (c *Conn) RemoteAddr() net.Addr { return c.raw.RemoteAddr() }

// LocalAddr returns the server's address of the connection.
func (c *Conn) LocalAddr() net.Addr { return c.raw.LocalAddr() }

// TLSConnectionState returns the TLS state of the connection and true if it
// is protected by TLS (implicit TLS or after STLS), that is, if the current
// connection has a ConnectionState method like *tls.Conn.
func (c *Conn) TLSConnectionState() (tls.ConnectionState, bool) {
	if ts, ok := c.Conn().(tlsStater); ok {
		return ts.ConnectionState(), true
	}
	return tls.ConnectionState{}, false
}

func (c *Conn) isTLS() bool {
	_, ok := c.Conn().(tlsStater)
	return ok
}

// abort closes the transport at once; the connection's goroutine then ends
// the session. It is called by Server.Close.
func (c *Conn) abort() {
	c.aborted.Store(true)
	c.raw.Close()
}

// serve runs the connection to its end and releases the session.
func (c *Conn) serve() (err error) {
	defer func() {
		if r := recover(); r != nil {
			c.server.logf("panic serving %v: %v\n%s", c.RemoteAddr(), r, debug.Stack())
			err = fmt.Errorf("pop3: panic serving %v: %v", c.RemoteAddr(), r)
		}
		c.finish()
	}()
	err = c.run()
	switch {
	case errors.Is(err, errQuit), errors.Is(err, errClientGone):
		return nil
	case err != nil && c.aborted.Load():
		return ErrServerClosed
	}
	return err
}

// finish flushes what is left, closes the connection and logs the session
// out, exactly once.
func (c *Conn) finish() {
	_ = c.bw.Flush()
	if nc := c.Conn(); nc != c.raw {
		nc.Close() // a *tls.Conn sends its close_notify
	}
	c.raw.Close()
	sess := c.Session()
	if sess == nil {
		return
	}
	defer func() {
		if r := recover(); r != nil {
			c.server.logf("panic in Logout for %v: %v\n%s", c.RemoteAddr(), r, debug.Stack())
		}
	}()
	if err := sess.Logout(); err != nil {
		c.server.logf("logout %v: %v", c.RemoteAddr(), err)
	}
}

func (c *Conn) run() error {
	if err := c.handshakeImplicitTLS(); err != nil {
		return err
	}
	sess, err := c.server.Backend.NewSession(c)
	if err == nil && sess == nil {
		err = errors.New("Backend.NewSession returned neither a Session nor an error")
	}
	if err != nil {
		c.replyError("new session", err)
		_ = c.bw.Flush()
		return fmt.Errorf("new session: %w", err)
	}
	c.mu.Lock()
	c.session = sess
	c.mu.Unlock()

	c.status(true, c.server.greeting()) // RFC 1939 §4
	for {
		if err := c.flushUnlessPipelined(); err != nil {
			return err
		}
		line, err := c.readLine(c.server.maxLineLength())
		if err != nil {
			return c.readFailed(err)
		}
		c.trace(true, c.traceCommand(string(line)))
		if err := c.execute(line); err != nil {
			return err
		}
		if c.werr != nil {
			return fmt.Errorf("write reply: %w", c.werr)
		}
		if !c.bad {
			c.badCount = 0
			continue
		}
		c.badCount++
		if limit := c.server.maxBadCommands(); limit > 0 && c.badCount >= limit {
			c.status(false, "Too many bad commands.")
			_ = c.bw.Flush()
			return ErrTooManyBadCommands
		}
	}
}

// handshakeImplicitTLS completes the handshake of a connection accepted by
// a TLS listener before anything is written, so that a failed handshake
// ends the connection cleanly and the backend sees the TLS state.
func (c *Conn) handshakeImplicitTLS() error {
	hs, ok := c.nc.(interface{ Handshake() error })
	if _, isTLS := c.nc.(tlsStater); !ok || !isTLS {
		return nil
	}
	c.setDeadline(c.server.readTimeout())
	if err := hs.Handshake(); err != nil {
		c.trace(false, "<TLS handshake failed: "+err.Error()+">")
		return fmt.Errorf("tls handshake: %w", err)
	}
	c.setDeadline(0)
	c.traceTLS()
	return nil
}

func (c *Conn) setDeadline(d time.Duration) {
	var t time.Time
	if d > 0 {
		t = time.Now().Add(d)
	}
	_ = c.Conn().SetDeadline(t)
}

func (c *Conn) traceTLS() {
	if st, ok := c.TLSConnectionState(); ok {
		c.trace(false, fmt.Sprintf("<TLS established: %s, %s>", tls.VersionName(st.Version), tls.CipherSuiteName(st.CipherSuite)))
	}
}

// execute runs one command line. It returns an error only to end the
// connection.
func (c *Conn) execute(line []byte) error {
	c.bad = false
	cmd, err := parseCommand(line)
	if err != nil {
		c.badCommand("Unknown command.")
		return nil
	}
	spec, ok := commands[cmd.name]
	if !ok {
		c.badCommand("Unknown command.")
		return nil
	}
	if spec.states&c.state == 0 {
		c.badCommand("Command not valid in this state.")
		return nil
	}
	return spec.handle(c, cmd)
}

// badCommand answers an invalid command, which counts towards
// MaxBadCommands.
func (c *Conn) badCommand(text string) {
	c.bad = true
	c.status(false, text)
}

// readLine reads one line of at most limit octets including its line
// ending, and returns it without CRLF (a bare LF is accepted too). It never
// buffers more than limit octets plus the reader's buffer.
func (c *Conn) readLine(limit int) ([]byte, error) {
	if d := c.server.readTimeout(); d > 0 {
		_ = c.Conn().SetReadDeadline(time.Now().Add(d))
	}
	var line []byte
	for {
		frag, err := c.br.ReadSlice('\n')
		if len(line)+len(frag) > limit {
			return nil, errLineTooLong
		}
		line = append(line, frag...)
		if err == nil {
			break
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return nil, err
		}
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

// readFailed turns a failed read into the error that ends the connection.
func (c *Conn) readFailed(err error) error {
	switch {
	case errors.Is(err, errLineTooLong):
		c.trace(true, "<line too long>")
		c.status(false, "Line too long.")
		_ = c.bw.Flush()
		return ErrLineTooLong
	case errors.Is(err, io.EOF):
		return errClientGone
	case errors.Is(err, os.ErrDeadlineExceeded):
		// RFC 1939 §3: the autologout timer closes the connection without
		// a response and without entering the UPDATE state.
		c.trace(false, "<autologout: no command within the read timeout>")
		return fmt.Errorf("read command: %w", err)
	default:
		return fmt.Errorf("read command: %w", err)
	}
}

// flushUnlessPipelined sends the buffered replies unless a complete command
// is already waiting: pipelined commands (RFC 2449 §6.6) then get their
// replies in one write, and the server never blocks on a read while holding
// replies back.
func (c *Conn) flushUnlessPipelined() error {
	if n := c.br.Buffered(); n > 0 {
		if buf, _ := c.br.Peek(n); bytes.IndexByte(buf, '\n') >= 0 {
			return nil
		}
	}
	if err := c.bw.Flush(); err != nil {
		return fmt.Errorf("write reply: %w", err)
	}
	return nil
}

// connWriter is the bufio.Writer's sink: it applies WriteTimeout to every
// write and keeps the first error.
type connWriter struct{ c *Conn }

func (w connWriter) Write(p []byte) (int, error) {
	if w.c.werr != nil {
		return 0, w.c.werr
	}
	nc := w.c.Conn()
	if d := w.c.server.writeTimeout(); d > 0 {
		_ = nc.SetWriteDeadline(time.Now().Add(d))
	}
	n, err := nc.Write(p)
	if err != nil {
		w.c.werr = err
	}
	return n, err
}

func (c *Conn) trace(fromClient bool, line string) {
	if c.server.Trace != nil {
		c.server.Trace(c, fromClient, line)
	}
}

// writeLine buffers one line and its CRLF. Write errors surface through
// c.werr.
func (c *Conn) writeLine(line string) {
	_, _ = c.bw.WriteString(line)
	_, _ = c.bw.WriteString("\r\n")
}

// status sends a single-line response (RFC 1939 §3): "+OK" or "-ERR", a
// space and text.
func (c *Conn) status(ok bool, text string) {
	line := "-ERR"
	if ok {
		line = "+OK"
	}
	if text != "" {
		line += " " + text
	}
	c.writeLine(line)
	c.trace(false, line)
}

// multiline sends "+OK text", the lines (dot-stuffed) and the terminating
// "." (RFC 1939 §3). Trace sees the status line and summary.
func (c *Conn) multiline(text string, lines []string, summary string) {
	c.status(true, text)
	for _, l := range lines {
		if len(l) > 0 && l[0] == '.' {
			l = "." + l
		}
		c.writeLine(l)
	}
	c.writeLine(".")
	c.trace(false, summary)
}

// internalErrorText is Dovecot's answer to a failure it will not describe.
const internalErrorText = "[SYS/TEMP] Internal error occurred. Refer to server log for more information."

// replyError answers a failed backend call: an *Error as it says, anything
// else logged and answered with internalErrorText, so that no internal
// detail reaches the client.
func (c *Conn) replyError(op string, err error) {
	var pe *Error
	if errors.As(err, &pe) {
		c.status(false, pe.replyText())
		return
	}
	c.server.logf("%s for %v: %v", op, c.RemoteAddr(), err)
	c.status(false, internalErrorText)
}

// authAllowed reports whether the plaintext authentication policy lets the
// client log in on this connection.
func (c *Conn) authAllowed() bool {
	return c.server.AllowInsecureAuth || c.isTLS()
}

// userAllowed reports whether USER/PASS may be used on this connection.
func (c *Conn) userAllowed() bool {
	return !c.server.DisableUserPass && c.authAllowed()
}

// stlsAvailable reports whether STLS may be used now (RFC 2595 §4: in the
// AUTHORIZATION state, before TLS, with a TLS configuration).
func (c *Conn) stlsAvailable() bool {
	return c.state == stateAuthorization && c.server.TLSConfig != nil && !c.isTLS()
}

var _ io.Writer = connWriter{}
