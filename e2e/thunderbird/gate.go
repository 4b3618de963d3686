//go:build e2e

package thunderbird

import (
	"io"
	"net"
	"sync"
)

// gate is a TCP relay to a lab service that accepts nothing until it is
// opened. Thunderbird connects to its account at startup and shows any
// failure as a window-modal alert, which holds up the end of its startup;
// Marionette's session waits for that end. So Thunderbird starts against
// closed gates (its connections wait in the listen queue, their first
// bytes in the kernel's buffer), Marionette connects, and then the gates
// open and relay byte for byte: the lab sees the client's own TLS
// handshake and commands.
type gate struct {
	ln     net.Listener
	target string
	once   sync.Once
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  []net.Conn
	closed bool
}

// newGate listens on a free loopback port for target.
func newGate(target string) (*gate, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	return &gate{ln: ln, target: target}, nil
}

// port is the port Thunderbird is configured with.
func (g *gate) port() int { return g.ln.Addr().(*net.TCPAddr).Port }

// open starts relaying, the connections already waiting first.
func (g *gate) open() {
	g.once.Do(func() {
		g.wg.Add(1)
		go g.serve()
	})
}

func (g *gate) serve() {
	defer g.wg.Done()
	for {
		c, err := g.ln.Accept()
		if err != nil {
			return
		}
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			g.relay(c)
		}()
	}
}

// relay copies both ways; a side's EOF is passed on as a half-close, so
// a server that closes is seen closing, and a reset as a close.
func (g *gate) relay(c net.Conn) {
	s, err := net.Dial("tcp", g.target)
	if err != nil {
		c.Close() // the lab refused: the client sees the connection end
		return
	}
	if !g.track(c, s) {
		return
	}
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		io.Copy(dst, src)
		if tc, ok := dst.(*net.TCPConn); ok {
			tc.CloseWrite()
		}
		done <- struct{}{}
	}
	go pipe(s, c)
	go pipe(c, s)
	<-done
	<-done
	c.Close()
	s.Close()
}

// track records the pair for close; false when the gate is already closed.
func (g *gate) track(cs ...net.Conn) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		for _, c := range cs {
			c.Close()
		}
		return false
	}
	g.conns = append(g.conns, cs...)
	return true
}

// close stops the gate and cuts its connections.
func (g *gate) close() {
	g.ln.Close()
	g.mu.Lock()
	g.closed = true
	for _, c := range g.conns {
		c.Close()
	}
	g.mu.Unlock()
	g.wg.Wait()
}
