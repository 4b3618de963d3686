package netx

import (
	"fmt"
	"net"
	"sync"
)

// ConnLimiter caps simultaneous connections per client address and in
// total, as Postfix's anvil does for smtpd_client_connection_count_limit.
// A connection holds its slot from Admit until it is closed. A nil
// *ConnLimiter admits everything; it is safe for concurrent use.
type ConnLimiter struct {
	// PerClient is the most connections one client IP address may hold at
	// once; negative means no limit (zero admits none).
	PerClient int
	// Total is the most connections all clients together may hold at
	// once; negative means no limit (zero admits none).
	Total int

	mu    sync.Mutex
	open  map[string]int
	total int
}

// NewConnLimiter returns a limiter; a negative limit means none.
func NewConnLimiter(perClient, total int) *ConnLimiter {
	return &ConnLimiter{PerClient: perClient, Total: total}
}

// LimitError says which limit turned a connection away.
type LimitError struct {
	// Client is the client's IP address.
	Client string
	// PerClient is true for the per-client limit, false for the total.
	PerClient bool
	// Limit is the limit that was reached.
	Limit int
}

func (e *LimitError) Error() string {
	if e.PerClient {
		return fmt.Sprintf("too many connections from %s (limit %d)", e.Client, e.Limit)
	}
	return fmt.Sprintf("too many connections (limit %d in total)", e.Limit)
}

// ClientIP is the IP address of a connection's peer ("" if unknown).
func ClientIP(a net.Addr) string {
	if a == nil {
		return ""
	}
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}

// Admit counts c against the limits. Within them it returns c wrapped so
// that closing it gives the slot back; over a limit it returns a
// *LimitError and leaves c alone (the caller replies and closes it).
func (l *ConnLimiter) Admit(c net.Conn) (net.Conn, *LimitError) {
	if l == nil {
		return c, nil
	}
	ip := ClientIP(c.RemoteAddr())
	release, err := l.acquire(ip)
	if err != nil {
		return nil, err
	}
	return &CountedConn{Wrapped: Wrapped{Conn: c}, release: release}, nil
}

func (l *ConnLimiter) acquire(ip string) (func(), *LimitError) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open == nil {
		l.open = map[string]int{}
	}
	if l.PerClient >= 0 && l.open[ip] >= l.PerClient {
		return nil, &LimitError{Client: ip, PerClient: true, Limit: l.PerClient}
	}
	if l.Total >= 0 && l.total >= l.Total {
		return nil, &LimitError{Client: ip, Limit: l.Total}
	}
	l.open[ip]++
	l.total++
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			l.total--
			if l.open[ip]--; l.open[ip] <= 0 {
				delete(l.open, ip)
			}
		})
	}, nil
}

// Open returns how many connections client ip holds and how many are held
// in total.
func (l *ConnLimiter) Open(ip string) (client, total int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open[ip], l.total
}

// CountedConn is a connection a ConnLimiter admitted; closing it gives its
// slot back (once, however often it is closed).
type CountedConn struct {
	Wrapped
	release func()
}

// Close gives the slot back and closes the connection.
func (c *CountedConn) Close() error {
	c.release()
	return c.Conn.Close()
}
