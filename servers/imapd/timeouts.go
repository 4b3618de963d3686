package imapd

import (
	"net"
	"time"

	"github.com/maillab/maillab/internal/netx"
)

// go-imap v2.0.0-beta.8's imapserver hard-codes its read timeouts: it
// arms the read deadline with cmdReadTimeout (30 s) before login and for
// the rest of a command once its first byte came, and with
// idleReadTimeout (35 min) while an authenticated client is between
// commands or in IDLE. Timeouts recognizes those two durations in the
// deadlines go-imap sets and replaces them with its own.
const (
	libraryCommandTimeout = 30 * time.Second
	libraryIdleTimeout    = 35 * time.Minute
)

// Timeouts are an IMAP server's read timeouts. A zero field keeps
// go-imap's own value.
type Timeouts struct {
	// Command is how long the server waits for a command before login,
	// and for the rest of a command once its first byte came. go-imap's
	// own value is 30 s.
	Command time.Duration
	// Idle is the autologout timer after login (RFC 9051 §5.4: at least
	// 30 minutes), also while in IDLE (RFC 2177). go-imap's own value is
	// 35 min.
	Idle time.Duration
}

// Wrap returns c with its read deadlines rewritten to t. It must sit below
// TLS (the *tls.Conn passes its deadlines down to it), because go-imap
// detects TLS by the *tls.Conn type.
func (t Timeouts) Wrap(c net.Conn) net.Conn {
	if t.Command == 0 && t.Idle == 0 {
		return c
	}
	return &timeoutConn{Wrapped: netx.Wrapped{Conn: c}, t: t}
}

type timeoutConn struct {
	netx.Wrapped
	t Timeouts
}

// rewrite maps a deadline go-imap set to the one the Timeouts ask for. A
// deadline it does not recognize (a literal's 5 minutes, none) is kept.
func (c *timeoutConn) rewrite(deadline time.Time) time.Time {
	if deadline.IsZero() {
		return deadline
	}
	d := time.Until(deadline)
	switch {
	case c.t.Idle > 0 && d > libraryIdleTimeout-time.Minute && d <= libraryIdleTimeout:
		return time.Now().Add(c.t.Idle)
	case c.t.Command > 0 && d > libraryCommandTimeout-5*time.Second && d <= libraryCommandTimeout:
		return time.Now().Add(c.t.Command)
	}
	return deadline
}

func (c *timeoutConn) SetReadDeadline(t time.Time) error {
	return c.Conn.SetReadDeadline(c.rewrite(t))
}
