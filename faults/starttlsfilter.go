package faults

import (
	"bytes"
	"net"
	"sync"

	"github.com/maillab/maillab/internal/netx"
	"github.com/maillab/maillab/servers/transcript"
)

// starttlsFilter sits below the server on a plaintext port and watches
// the client's commands for STARTTLS. In refuse mode it answers the
// command itself with the protocol's "temporarily unavailable" reply and
// the server never sees it; in break mode it lets the server accept, then
// sends the client bytes that are not TLS instead of the server's
// handshake and closes. Both are what a misconfigured server does on the
// wire (Postfix with an unreadable key, a broken TLS library).
type starttlsFilter struct {
	netx.Wrapped
	proto  string
	broken bool // break mode (else refuse)
	ts     *transcript.Session

	mu      sync.Mutex
	pending []byte // complete client lines not yet handed to the server
	partial []byte
	armed   bool // break mode: STARTTLS passed, the next write is its reply
	cut     bool // break mode: the server's TLS handshake is being replaced
	done    bool // plaintext phase over (TLS or broken): pass through
}

const maxFilterLine = 8192

func (f *starttlsFilter) Read(b []byte) (int, error) {
	for {
		f.mu.Lock()
		if len(f.pending) > 0 {
			n := copy(b, f.pending)
			f.pending = f.pending[n:]
			f.mu.Unlock()
			return n, nil
		}
		done := f.done || f.armed
		f.mu.Unlock()
		if done {
			return f.Conn.Read(b)
		}
		buf := make([]byte, 4096)
		n, err := f.Conn.Read(buf)
		if n > 0 {
			if werr := f.consume(buf[:n]); werr != nil {
				return 0, werr
			}
		}
		if err != nil {
			f.mu.Lock()
			f.pending = append(f.pending, f.partial...)
			f.partial = nil
			has := len(f.pending) > 0
			f.mu.Unlock()
			if has {
				continue
			}
			return 0, err
		}
	}
}

// consume splits client bytes into lines and decides about each.
func (f *starttlsFilter) consume(data []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.partial = append(f.partial, data...)
	for {
		if f.armed || f.done {
			// Bytes after STARTTLS belong to the TLS handshake.
			f.pending = append(f.pending, f.partial...)
			f.partial = nil
			return nil
		}
		i := bytes.IndexByte(f.partial, '\n')
		if i < 0 {
			if len(f.partial) > maxFilterLine {
				f.pending = append(f.pending, f.partial...)
				f.partial = nil
			}
			return nil
		}
		line := f.partial[:i+1]
		rest := f.partial[i+1:]
		tag, isSTARTTLS := startTLSCommand(f.proto, line)
		switch {
		case isSTARTTLS && !f.broken:
			// Refuse: answer for the server; RFC 3207 §4 lets the client
			// go on in plaintext or quit.
			f.ts.Log(transcript.Client, string(line))
			reply := startTLSRefusal(f.proto, tag)
			f.ts.Log(transcript.Server, reply)
			f.ts.Eventf("fault starttls-refused: STARTTLS answered by the fault, the server never saw it")
			if _, err := f.Conn.Write([]byte(reply)); err != nil {
				return err
			}
			f.partial = append([]byte(nil), rest...)
		case isSTARTTLS:
			f.pending = append(f.pending, line...)
			f.armed = true
			f.partial = append([]byte(nil), rest...)
		default:
			f.pending = append(f.pending, line...)
			f.partial = append([]byte(nil), rest...)
		}
	}
}

func (f *starttlsFilter) Write(b []byte) (int, error) {
	f.mu.Lock()
	armed, cut := f.armed, f.cut
	if armed {
		// This write is the server's "go ahead"; what follows is its
		// side of the handshake, which the client will not get.
		f.armed, f.cut, f.done = false, true, true
	}
	f.mu.Unlock()
	switch {
	case armed:
		return f.Conn.Write(b)
	case cut:
		f.ts.Eventf("fault starttls-broken: server's TLS handshake replaced by plaintext garbage, connection closed")
		f.Conn.Write([]byte("TLS negotiation failed: internal error\r\n"))
		f.Conn.Close()
		return 0, net.ErrClosed
	}
	return f.Conn.Write(b)
}
