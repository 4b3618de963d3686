package netx

import (
	"errors"
	"net"
	"syscall"
	"time"
)

// Back-off of AcceptLoop after a failed accept: the first retry waits
// MinAcceptBackoff, each further failure in a row doubles the wait, up to
// MaxAcceptBackoff (the same steps as net/http and go-smtp).
const (
	MinAcceptBackoff = 5 * time.Millisecond
	MaxAcceptBackoff = time.Second
)

// AcceptLoop is the one accept loop of every lab server. Its contract is
// go-smtp's Server.Serve, made total: a failed accept is waited out and
// retried, with a back-off from MinAcceptBackoff doubling to
// MaxAcceptBackoff; only closing the listener (or Stop) ends the loop.
//
// The failures that matter pass on their own: EMFILE and ENFILE (out of
// file descriptors: the kernel keeps the waiting connections in the accept
// queue, and they are served once descriptors are free again), ENOBUFS,
// ENOMEM, and ECONNABORTED (a client gave up while queued). Ending the loop
// on any of them would leave a port that listens but never accepts again,
// which is what the lab did before (issue 12, defect 1).
type AcceptLoop struct {
	// Handle receives each accepted connection, in the accepting
	// goroutine: it must not block (start a goroutine for the session).
	Handle func(net.Conn)
	// OnRetry, if set, is told of every failed accept before the wait.
	OnRetry func(err error, wait time.Duration)
	// Stop, if set, ends the loop when closed (for a listener that does not
	// return from Accept on Close by itself, the wait is cut short too).
	Stop <-chan struct{}
	// MinBackoff and MaxBackoff override the package defaults; zero means
	// MinAcceptBackoff and MaxAcceptBackoff.
	MinBackoff, MaxBackoff time.Duration
}

// Run accepts on ln until ln is closed or Stop is closed, and then returns
// nil. It never returns any other error: every other failure is retried.
func (a *AcceptLoop) Run(ln net.Listener) error {
	lo, hi := a.MinBackoff, a.MaxBackoff
	if lo <= 0 {
		lo = MinAcceptBackoff
	}
	if hi <= 0 {
		hi = MaxAcceptBackoff
	}
	var wait time.Duration
	for {
		c, err := ln.Accept()
		if err == nil {
			wait = 0
			a.Handle(c)
			continue
		}
		if a.stopped() || errors.Is(err, net.ErrClosed) {
			return nil
		}
		wait = min(max(2*wait, lo), hi)
		if a.OnRetry != nil {
			a.OnRetry(err, wait)
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-a.Stop:
			t.Stop()
			return nil
		}
	}
}

func (a *AcceptLoop) stopped() bool {
	if a.Stop == nil {
		return false
	}
	select {
	case <-a.Stop:
		return true
	default:
		return false
	}
}

// Temporary reports the accept failures that are expected to pass on
// their own (descriptor or memory exhaustion, a connection aborted while
// queued, a timeout). AcceptLoop retries every failure; callers use
// Temporary to log these ones more quietly than the unexpected rest.
func Temporary(err error) bool {
	for _, errno := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.ECONNABORTED} {
		if errors.Is(err, errno) {
			return true
		}
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
