package netx

import (
	"errors"
	"net"
	"os"
	"sync"
)

// FinalTimeout makes a read timeout final: once a Read has failed because
// its deadline passed, every later Read fails the same way, whatever
// deadline the server sets afterwards.
//
// Server libraries re-arm the deadline before each command, and some
// carry on after a timeout: go-smtp's bufio hands the part of a line read
// before the deadline to the parser as if it were a whole command (501),
// then waits a full timeout again; go-imap, after its idle timeout,
// waits once more for a whole command timeout. With FinalTimeout the
// first timeout ends the session (go-smtp then says "421 4.4.2"), so a
// client that sends a byte at a time is cut after one timeout. It must
// sit below TLS: a *tls.Conn passes its reads and deadlines down.
type FinalTimeout struct {
	Wrapped
	mu      sync.Mutex
	expired error
}

// NewFinalTimeout wraps c.
func NewFinalTimeout(c net.Conn) *FinalTimeout {
	return &FinalTimeout{Wrapped: Wrapped{Conn: c}}
}

func (f *FinalTimeout) Read(b []byte) (int, error) {
	f.mu.Lock()
	expired := f.expired
	f.mu.Unlock()
	if expired != nil {
		return 0, expired
	}
	n, err := f.Conn.Read(b)
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		f.mu.Lock()
		f.expired = err
		f.mu.Unlock()
	}
	return n, err
}
