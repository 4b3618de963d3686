package faults

import (
	"bufio"
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"github.com/maillab/maillab/internal/netx"
	"github.com/maillab/maillab/servers/transcript"
)

// lineRelay is the engine of the middlebox faults: a proxy that relays a
// mail protocol line by line while it is in plaintext, lets hooks rewrite
// or block lines, follows a STARTTLS exchange, and after it either relays
// the bytes blindly (it cannot read TLS) or, for an intercepting proxy,
// terminates TLS on both sides.
type lineRelay struct {
	proto string
	ts    *transcript.Session
	name  string // fault name, for the transcript
	// clientLine may rewrite a client line; reset cuts both connections.
	clientLine func(line []byte) (out []byte, reset bool)
	// serverLine may rewrite a server line.
	serverLine func(line []byte) []byte
	// upgrade runs when the server accepted STARTTLS; it returns the
	// connections to relay from then on. nil relays the raw ones.
	upgrade func(client, server net.Conn) (net.Conn, net.Conn, error)
	// idle bounds how long the relay waits for either side.
	idle time.Duration
}

const maxRelayLine = 64 << 10

// serve relays between client and server until either side closes.
func (r *lineRelay) serve(client, server net.Conn) {
	defer client.Close()
	defer server.Close()
	if r.idle == 0 {
		r.idle = 10 * time.Minute
	}
	cr := bufio.NewReaderSize(client, 4096)
	sr := bufio.NewReaderSize(server, 4096)

	var mu sync.Mutex // serialises writes to the client
	awaiting := ""    // IMAP tag (or "-" for SMTP/POP3) of a STARTTLS in flight
	resume := make(chan bool, 1)
	done := make(chan struct{})
	var once sync.Once
	finish := func() { once.Do(func() { close(done) }) }

	// client → server
	go func() {
		handedOver := false
		defer func() {
			// After STARTTLS the other goroutine owns both connections
			// and ends the relay itself.
			if !handedOver {
				finish()
			}
		}()
		for {
			client.SetReadDeadline(time.Now().Add(r.idle))
			line, err := readLine(cr)
			if err != nil {
				return
			}
			out := line
			if r.clientLine != nil {
				var reset bool
				out, reset = r.clientLine(line)
				if reset {
					netx.Reset(client)
					netx.Reset(server)
					return
				}
			}
			tag, isSTARTTLS := startTLSCommand(r.proto, out)
			if isSTARTTLS {
				if tag == "" {
					tag = "-"
				}
				mu.Lock()
				awaiting = tag
				mu.Unlock()
			}
			if _, err := server.Write(out); err != nil {
				return
			}
			if isSTARTTLS {
				select {
				case cont := <-resume:
					if !cont {
						handedOver = true
						return
					}
				case <-done:
					return
				}
			}
		}
	}()

	// server → client
	go func() {
		defer finish()
		for {
			server.SetReadDeadline(time.Now().Add(r.idle))
			line, err := readLine(sr)
			if err != nil {
				return
			}
			if r.serverLine != nil {
				line = r.serverLine(line)
			}
			mu.Lock()
			tag := awaiting
			mu.Unlock()
			if _, err := client.Write(line); err != nil {
				return
			}
			if tag == "" || !isFinalReply(r.proto, tag, line) {
				continue
			}
			mu.Lock()
			awaiting = ""
			mu.Unlock()
			if !isPositive(r.proto, tag, line) {
				resume <- true
				continue
			}
			// The client will now start TLS: stop reading lines.
			resume <- false
			c, s := net.Conn(&prefixConn{Conn: client, r: cr}), net.Conn(&prefixConn{Conn: server, r: sr})
			if r.upgrade != nil {
				var err error
				c, s, err = r.upgrade(c, s)
				if err != nil {
					r.ts.Eventf("fault %s: TLS after STARTTLS failed: %v", r.name, err)
					return
				}
			} else {
				r.ts.Eventf("fault %s: STARTTLS done; relaying encrypted bytes unseen", r.name)
			}
			client.SetReadDeadline(time.Time{})
			server.SetReadDeadline(time.Time{})
			pipe(c, s)
			return
		}
	}()
	<-done
}

// readLine reads one line (with its newline), bounded.
func readLine(r *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		frag, err := r.ReadSlice('\n')
		line = append(line, frag...)
		if err == nil {
			return line, nil
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			if len(line) > 0 && errors.Is(err, io.EOF) {
				return line, nil
			}
			return nil, err
		}
		if len(line) > maxRelayLine {
			return line, nil
		}
	}
}

// pipe copies both ways until one side ends.
func pipe(a, b net.Conn) {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); io.Copy(a, b); a.Close() }()
	go func() { defer wg.Done(); io.Copy(b, a); b.Close() }()
	wg.Wait()
}

// prefixConn reads what a bufio.Reader already buffered before the
// connection itself.
type prefixConn struct {
	net.Conn
	r *bufio.Reader
}

func (p *prefixConn) Read(b []byte) (int, error) {
	if p.r != nil && p.r.Buffered() > 0 {
		return p.r.Read(b)
	}
	return p.Conn.Read(b)
}

// NetConn exposes the connection, for netx.Reset.
func (p *prefixConn) NetConn() net.Conn { return p.Conn }
