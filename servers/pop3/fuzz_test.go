package pop3

import (
	"io"
	"net"
	"testing"
	"time"
)

// pipeConn is the server's end of two net.Pipes: it reads what the client
// wrote on one and writes to the client on the other, so the client can
// close its writing side (the server reads EOF) and still read everything
// the server answers.
type pipeConn struct {
	in  net.Conn // server reads
	out net.Conn // server writes
}

func (p pipeConn) Read(b []byte) (int, error)         { return p.in.Read(b) }
func (p pipeConn) Write(b []byte) (int, error)        { return p.out.Write(b) }
func (p pipeConn) LocalAddr() net.Addr                { return p.in.LocalAddr() }
func (p pipeConn) RemoteAddr() net.Addr               { return p.in.RemoteAddr() }
func (p pipeConn) SetReadDeadline(t time.Time) error  { return p.in.SetReadDeadline(t) }
func (p pipeConn) SetWriteDeadline(t time.Time) error { return p.out.SetWriteDeadline(t) }

func (p pipeConn) SetDeadline(t time.Time) error {
	p.in.SetDeadline(t)
	return p.out.SetDeadline(t)
}

func (p pipeConn) Close() error {
	p.in.Close()
	return p.out.Close()
}

var _ net.Conn = pipeConn{}

// FuzzSession feeds arbitrary bytes to a server as one client's whole
// session and checks that the server neither panics nor hangs: ServeConn
// must return once the input is exhausted.
func FuzzSession(f *testing.F) {
	for _, seed := range []string{
		"CAPA\r\nUSER alice\r\nPASS s3cret pass\r\nSTAT\r\nLIST\r\nUIDL\r\nRETR 1\r\nTOP 1 0\r\nTOP 2 1\r\nDELE 1\r\nRSET\r\nDELE 3\r\nQUIT\r\n",
		"AUTH PLAIN AGFsaWNlAHMzY3JldCBwYXNz\r\nLIST 2\r\nUIDL 3\r\nRETR 3\r\nDELE 2\r\nDELE 2\r\nNOOP\r\nQUIT\r\n",
		"AUTH PLAIN\r\nAGFsaWNlAHMzY3JldCBwYXNz\r\nRETR 1\r\nQUIT\r\n",
		"AUTH PLAIN\r\n*\r\nAUTH\r\nAUTH X\r\nQUIT\r\n",
		"STLS\r\nCAPA\r\n",
		"STLS\r\n\x16\x03\x01\x00\x05hello",
		"USER alice\nPASS s3cret pass\nLIST 99999999999999999999\nTOP 1 -1\nQUIT\n",
		"XXXX\r\nYYYY\r\n\r\n\x00\x01\r\nPASS\r\n",
		"CAPA" + string(make([]byte, 300)),
	} {
		f.Add([]byte(seed))
	}
	p := getPKI(f)
	f.Fuzz(func(t *testing.T, input []byte) {
		be := newTestBackend()
		s := &Server{
			Backend:           be,
			TLSConfig:         p.serverConfig(),
			AllowInsecureAuth: true,
			MaxBadCommands:    50,
			ReadTimeout:       5 * time.Second,
			WriteTimeout:      5 * time.Second,
			ErrorLog:          &recorder{},
		}
		serverIn, clientOut := net.Pipe()
		clientIn, serverOut := net.Pipe()
		go func() {
			_, _ = clientOut.Write(input)
			clientOut.Close()
		}()
		go func() { _, _ = io.Copy(io.Discard, clientIn) }()
		done := make(chan error, 1)
		go func() { done <- s.ServeConn(pipeConn{in: serverIn, out: serverOut}) }()
		timer := time.NewTimer(10 * time.Second)
		defer timer.Stop()
		select {
		case <-done:
		case <-timer.C:
			t.Fatalf("ServeConn did not return for input %q", input)
		}
		clientIn.Close()
		if _, _, logouts := be.snapshot(); logouts > 1 {
			t.Fatalf("Logout called %d times", logouts)
		}
	})
}
