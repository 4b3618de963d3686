package diagnose

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"syscall"

	"github.com/maillab/maillab/diagnose/wire"
)

// netKind is what a network error means for the diagnosis, decided from
// errno values and net.Error.Timeout, never from error text.
type netKind int

const (
	nkNone netKind = iota
	// nkTimeout: the deadline passed (nothing, or not enough, arrived).
	nkTimeout
	// nkRefused: ECONNREFUSED (RST in answer to SYN, or ICMP port
	// unreachable).
	nkRefused
	// nkReset: ECONNRESET or EPIPE on an established connection.
	nkReset
	// nkEOF: the peer closed the connection (FIN).
	nkEOF
	// nkUnreachable: no route, host unreachable, or a local firewall
	// refused the packet.
	nkUnreachable
	// nkTooLong: a line or reply exceeded the reader's bounds.
	nkTooLong
	// nkMalformed: bytes that are not the protocol expected.
	nkMalformed
	// nkOther: anything else.
	nkOther
)

// String describes the kind for evidence.
func (k netKind) String() string {
	switch k {
	case nkNone:
		return "no error"
	case nkTimeout:
		return "timed out"
	case nkRefused:
		return "connection refused"
	case nkReset:
		return "connection reset by peer"
	case nkEOF:
		return "connection closed by peer"
	case nkUnreachable:
		return "unreachable"
	case nkTooLong:
		return "reply too long"
	case nkMalformed:
		return "malformed reply"
	}
	return "error"
}

func netErrKind(err error) netKind {
	if err == nil {
		return nkNone
	}
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return nkRefused
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.Is(err, syscall.ECONNABORTED):
		return nkReset
	case errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.EHOSTUNREACH),
		errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM), errors.Is(err, syscall.EADDRNOTAVAIL):
		return nkUnreachable
	case errors.Is(err, syscall.ETIMEDOUT):
		return nkTimeout
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded):
		return nkTimeout
	case errors.As(err, &ne) && ne.Timeout():
		return nkTimeout
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
		return nkEOF
	case errors.Is(err, wire.ErrLineTooLong), errors.Is(err, wire.ErrTooManyLines):
		return nkTooLong
	case errors.Is(err, wire.ErrMalformedReply), errors.Is(err, wire.ErrMalformedResponse), errors.Is(err, wire.ErrMalformedStatus):
		return nkMalformed
	case errors.Is(err, context.Canceled):
		return nkTimeout
	}
	return nkOther
}
