package netx

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"
)

// scriptedListener fails its first accepts with the given errors, then
// hands out conns until closed.
type scriptedListener struct {
	mu     sync.Mutex
	errs   []error
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newScriptedListener(errs ...error) *scriptedListener {
	return &scriptedListener{errs: errs, conns: make(chan net.Conn, 1), closed: make(chan struct{})}
}

func (l *scriptedListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	if len(l.errs) > 0 {
		err := l.errs[0]
		l.errs = l.errs[1:]
		l.mu.Unlock()
		return nil, err
	}
	l.mu.Unlock()
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *scriptedListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *scriptedListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }

func TestAcceptLoopRetriesEveryFailure(t *testing.T) {
	opErr := func(errno syscall.Errno) error {
		return &net.OpError{Op: "accept", Net: "tcp", Err: fmt.Errorf("accept4: %w", errno)}
	}
	tests := []struct {
		name string
		errs []error
	}{
		{"EMFILE", []error{opErr(syscall.EMFILE)}},
		{"ENFILE", []error{opErr(syscall.ENFILE)}},
		{"ECONNABORTED", []error{opErr(syscall.ECONNABORTED)}},
		{"many in a row", []error{opErr(syscall.EMFILE), opErr(syscall.EMFILE), opErr(syscall.ENOBUFS), opErr(syscall.EMFILE)}},
		// A failure nobody foresaw is retried too: only Close ends the loop.
		{"unexpected", []error{errors.New("something else")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ln := newScriptedListener(tt.errs...)
			got := make(chan net.Conn, 1)
			var waits []time.Duration
			loop := &AcceptLoop{
				Handle:     func(c net.Conn) { got <- c },
				OnRetry:    func(err error, wait time.Duration) { waits = append(waits, wait) },
				MinBackoff: time.Millisecond,
				MaxBackoff: 4 * time.Millisecond,
			}
			done := make(chan error, 1)
			go func() { done <- loop.Run(ln) }()
			server, client := net.Pipe()
			defer client.Close()
			ln.conns <- server
			select {
			case c := <-got:
				if c != server {
					t.Fatalf("Handle got %v, want the queued conn", c)
				}
			case err := <-done:
				t.Fatalf("Run returned %v after %d failures, want it to keep accepting", err, len(tt.errs))
			case <-time.After(10 * time.Second):
				t.Fatal("no connection accepted after the failures")
			}
			ln.Close()
			if err := <-done; err != nil {
				t.Errorf("Run after Close = %v, want nil", err)
			}
			want := []time.Duration{1, 2, 4, 4}
			for i, w := range waits {
				if w != want[i]*time.Millisecond {
					t.Errorf("wait %d = %v, want %v (doubling, capped)", i, w, want[i]*time.Millisecond)
				}
			}
		})
	}
}

func TestAcceptLoopStop(t *testing.T) {
	// A listener that fails forever: only Stop ends the loop.
	ln := newScriptedListener()
	ln.errs = make([]error, 1<<20)
	for i := range ln.errs {
		ln.errs[i] = syscall.EMFILE
	}
	stop := make(chan struct{})
	loop := &AcceptLoop{Handle: func(net.Conn) {}, Stop: stop, MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond}
	done := make(chan error, 1)
	go func() { done <- loop.Run(ln) }()
	close(stop)
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run after Stop = %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after Stop")
	}
}

func TestTemporary(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{&net.OpError{Op: "accept", Err: syscall.EMFILE}, true},
		{fmt.Errorf("wrapped: %w", syscall.ENFILE), true},
		{syscall.ECONNABORTED, true},
		{net.ErrClosed, false},
		{errors.New("other"), false},
	}
	for _, tt := range tests {
		if got := Temporary(tt.err); got != tt.want {
			t.Errorf("Temporary(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}
