package pop3

import (
	"crypto/tls"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
)

func TestSTLS(t *testing.T) {
	p := getPKI(t)
	be := newTestBackend()
	rec := &recorder{}
	s := newTestServer(be, rec)
	s.TLSConfig = p.serverConfig()
	c := dial(t, serve(t, s, nil))
	c.expect("+OK mail.example.test POP3 server ready")
	c.run([]string{
		"C: CAPA", "S: +OK Capability list follows", "S: TOP", "S: UIDL", "S: RESP-CODES", "S: AUTH-RESP-CODE", "S: PIPELINING", "S: STLS", "S: IMPLEMENTATION maillab-test", "S: .",
		"C: STLS x", "S: -ERR Wrong number of arguments.",
		"C: STLS", "S: +OK Begin TLS negotiation",
	})
	c.startTLS(p.clientConfig())
	c.run(script([]string{
		"C: CAPA", "S: +OK Capability list follows", "S: TOP", "S: UIDL", "S: RESP-CODES", "S: AUTH-RESP-CODE", "S: PIPELINING", "S: USER", "S: SASL PLAIN", "S: IMPLEMENTATION maillab-test", "S: .",
		"C: STLS", "S: -ERR Command not permitted when TLS active",
	}, login, []string{"C: RETR 3", "S~ \\+OK \\d+ octets", "S: Subject: three", "S: ", "S: no newline", "S: .", "C: QUIT", "S~ \\+OK Logging out.*"}))
	waitLogout(t, be, 1)
	if tr := rec.traceLines(); !slices.ContainsFunc(tr, func(l string) bool { return strings.HasPrefix(l, "S: <TLS established: TLS 1.3, ") }) {
		t.Errorf("trace lacks the TLS note: %q", tr)
	}
}

// TestSTLSDiscardsPipelinedPlaintext checks the CVE-2011-0411 defence:
// commands sent in plaintext right behind STLS must not run inside TLS.
func TestSTLSDiscardsPipelinedPlaintext(t *testing.T) {
	p := getPKI(t)
	be := newTestBackend()
	rec := &recorder{}
	s := newTestServer(be, rec)
	s.TLSConfig = p.serverConfig()
	c := dial(t, serve(t, s, nil))
	c.expect("+OK mail.example.test POP3 server ready")
	// One write, so the injected line arrives with STLS.
	c.sendRaw("STLS\r\nUSER mallory\r\n")
	c.expect("+OK Begin TLS negotiation")
	c.startTLS(p.clientConfig())
	// Had "USER mallory" run inside TLS, PASS would log in as mallory.
	c.run([]string{"C: PASS s3cret pass", "S: -ERR No username given.", "C: QUIT", "S: +OK Logging out."})
	waitLogout(t, be, 1)
	if logins, _, _ := be.snapshot(); len(logins) != 0 {
		t.Errorf("Login called for %q", logins)
	}
	tr := rec.traceLines()
	if !slices.Contains(tr, "C: <discarded 14 octets sent after STLS before TLS>") {
		t.Errorf("trace lacks the discard note: %q", tr)
	}
	if slices.ContainsFunc(tr, func(l string) bool { return strings.Contains(l, "mallory") }) {
		t.Errorf("the discarded command reached the trace: %q", tr)
	}
}

func TestSTLSForgetsUser(t *testing.T) {
	p := getPKI(t)
	s := newTestServer(newTestBackend(), &recorder{})
	s.TLSConfig = p.serverConfig()
	s.AllowInsecureAuth = true
	c := dial(t, serve(t, s, nil))
	c.expect("+OK mail.example.test POP3 server ready")
	c.run([]string{"C: USER alice", "S: +OK", "C: STLS", "S: +OK Begin TLS negotiation"})
	c.startTLS(p.clientConfig())
	// RFC 2595 §4: what the client said before TLS is forgotten.
	c.run([]string{"C: PASS s3cret pass", "S: -ERR No username given."})
}

func TestSTLSHandshakeFailure(t *testing.T) {
	p := getPKI(t)
	be := newTestBackend()
	rec := &recorder{}
	s := newTestServer(be, rec)
	s.TLSConfig = p.serverConfig()
	c := dial(t, serve(t, s, nil))
	c.expect("+OK mail.example.test POP3 server ready")
	c.run([]string{"C: STLS", "S: +OK Begin TLS negotiation"})
	c.send("this is not a ClientHello")
	if _, err := io.ReadAll(c.r); err != nil && !isReset(err) {
		t.Fatalf("read after failed handshake: %v", err)
	}
	waitLogout(t, be, 1)
	if tr := rec.traceLines(); !slices.ContainsFunc(tr, func(l string) bool { return strings.HasPrefix(l, "S: <TLS handshake failed: ") }) {
		t.Errorf("trace lacks the handshake failure: %q", tr)
	}
}

func TestImplicitTLS(t *testing.T) {
	p := getPKI(t)
	be := newTestBackend()
	s := newTestServer(be, &recorder{})
	cfg := p.serverConfig()
	s.TLSConfig = cfg // must not offer STLS on an implicit-TLS connection
	addr := serve(t, s, func(ln net.Listener) net.Listener { return tls.NewListener(ln, cfg) })
	conn, err := tls.Dial("tcp", addr, p.clientConfig())
	if err != nil {
		t.Fatalf("tls.Dial: %v", err)
	}
	c := newTestClient(t, conn)
	c.expect("+OK mail.example.test POP3 server ready")
	c.run(script([]string{
		"C: CAPA", "S: +OK Capability list follows", "S: TOP", "S: UIDL", "S: RESP-CODES", "S: AUTH-RESP-CODE", "S: PIPELINING", "S: USER", "S: SASL PLAIN", "S: IMPLEMENTATION maillab-test", "S: .",
		"C: STLS", "S: -ERR Command not permitted when TLS active",
	}, login, []string{"C: QUIT", "S~ \\+OK Logging out.*"}))
}

// TestImplicitTLSPlaintextClient: a plaintext client on the TLS port gets
// no greeting, and the backend is never asked for a session.
func TestImplicitTLSPlaintextClient(t *testing.T) {
	p := getPKI(t)
	be := newTestBackend()
	rec := &recorder{}
	s := newTestServer(be, rec)
	cfg := p.serverConfig()
	ln, err := listenLoopback()
	if err != nil {
		t.Fatal(err)
	}
	tln := tls.NewListener(ln, cfg)
	defer tln.Close()
	result := make(chan error, 1)
	go func() {
		nc, err := tln.Accept()
		if err != nil {
			result <- err
			return
		}
		result <- s.ServeConn(nc)
	}()
	c := dial(t, ln.Addr().String())
	c.send("CAPA")
	rest, _ := io.ReadAll(c.r)
	if strings.Contains(string(rest), "+OK") {
		t.Errorf("plaintext client on a TLS port got %q", rest)
	}
	if err := <-result; err == nil || !strings.Contains(err.Error(), "tls handshake") {
		t.Errorf("ServeConn = %v, want a TLS handshake error", err)
	}
	if be.sessions != 0 {
		t.Errorf("NewSession called %d times before a TLS handshake", be.sessions)
	}
}

// wrappedTLSConn exposes the TLS state of a connection it wraps, as a
// fault-injecting wrapper of a lab might.
type wrappedTLSConn struct {
	net.Conn
	tc *tls.Conn
}

func (w wrappedTLSConn) ConnectionState() tls.ConnectionState { return w.tc.ConnectionState() }

func TestTLSDetectedThroughWrapper(t *testing.T) {
	p := getPKI(t)
	be := newTestBackend()
	s := newTestServer(be, &recorder{})
	cfg := p.serverConfig()
	addr := serve(t, s, func(ln net.Listener) net.Listener { return wrapListener{tls.NewListener(ln, cfg)} })
	conn, err := tls.Dial("tcp", addr, p.clientConfig())
	if err != nil {
		t.Fatalf("tls.Dial: %v", err)
	}
	c := newTestClient(t, conn)
	c.expect("+OK mail.example.test POP3 server ready")
	c.run(login)
}

type wrapListener struct{ net.Listener }

func (l wrapListener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc := nc.(*tls.Conn)
	return wrappedTLSConn{Conn: tc, tc: tc}, nil
}
