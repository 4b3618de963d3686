package pop3

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
)

// testMessage is one message of the in-memory maildrop.
type testMessage struct {
	uid  string
	body string
}

// The fixture maildrop: CRLF with a dot-led line, LF endings, and a last
// line without a line ending.
var fixtureMessages = []testMessage{
	{"uid-1", "From: bob@example.test\r\nSubject: one\r\n\r\nHello\r\n.dot line\r\n..two dots\r\n.\r\nend\r\n"},
	{"uid-2", "Subject: two\n\nline1\nline2\nline3\n"},
	{"uid-3", "Subject: three\r\n\r\nno newline"},
}

// crlfSize is the size of a body as sent: LF endings count as CRLF, and a
// missing final line ending is added.
func crlfSize(body string) int64 {
	n := strings.Count(strings.ReplaceAll(body, "\r\n", "\n"), "\n") + len(strings.ReplaceAll(body, "\r\n", "\n"))
	if body != "" && !strings.HasSuffix(body, "\n") {
		n += 2
	}
	return int64(n)
}

// testBackend is an in-memory Backend that records what the server asks of
// it. Its error fields make the next call fail.
type testBackend struct {
	mu       sync.Mutex
	users    map[string]string
	messages []testMessage

	newSessionErr error
	loginErr      error
	maildropErr   error
	maildrop      []Message // overrides the computed snapshot when set
	retrieveErr   error
	retrieveBody  io.Reader // overrides the message body when set
	updateErr     error
	loginPanic    bool
	nilSession    bool
	mechanisms    []string // non-nil: sessions implement AuthSession

	logins    []string   // user names given to Login
	updates   [][]string // arguments of Update
	logouts   int
	sessions  int
	loggedOut chan struct{} // receives once per Logout
}

func newTestBackend() *testBackend {
	return &testBackend{
		users:     map[string]string{"alice": "s3cret pass"},
		messages:  append([]testMessage(nil), fixtureMessages...),
		loggedOut: make(chan struct{}, 100),
	}
}

func (b *testBackend) NewSession(c *Conn) (Session, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.newSessionErr != nil {
		return nil, b.newSessionErr
	}
	if b.nilSession {
		return nil, nil
	}
	b.sessions++
	s := &testSession{be: b, conn: c}
	if b.mechanisms != nil {
		return &testAuthSession{s}, nil
	}
	return s, nil
}

func (b *testBackend) snapshot() (logins []string, updates [][]string, logouts int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.logins...), append([][]string(nil), b.updates...), b.logouts
}

type testSession struct {
	be   *testBackend
	conn *Conn
	user string
}

func (s *testSession) Login(username, password string) error {
	b := s.be
	b.mu.Lock()
	defer b.mu.Unlock()
	b.logins = append(b.logins, username)
	if b.loginPanic {
		panic("backend bug")
	}
	if b.loginErr != nil {
		return b.loginErr
	}
	if pw, ok := b.users[username]; !ok || pw != password {
		return ErrAuthFailed
	}
	s.user = username
	return nil
}

func (s *testSession) Maildrop() ([]Message, error) {
	b := s.be
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.maildropErr != nil {
		return nil, b.maildropErr
	}
	if b.maildrop != nil {
		return b.maildrop, nil
	}
	var msgs []Message
	for _, m := range b.messages {
		msgs = append(msgs, Message{UID: m.uid, Size: crlfSize(m.body)})
	}
	return msgs, nil
}

func (s *testSession) Retrieve(uid string) (io.ReadCloser, error) {
	b := s.be
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.retrieveErr != nil {
		return nil, b.retrieveErr
	}
	if b.retrieveBody != nil {
		return io.NopCloser(b.retrieveBody), nil
	}
	for _, m := range b.messages {
		if m.uid == uid {
			return io.NopCloser(strings.NewReader(m.body)), nil
		}
	}
	return nil, fmt.Errorf("no message %q", uid)
}

func (s *testSession) Update(deleted []string) error {
	b := s.be
	b.mu.Lock()
	defer b.mu.Unlock()
	b.updates = append(b.updates, append([]string{}, deleted...))
	return b.updateErr
}

func (s *testSession) Logout() error {
	b := s.be
	b.mu.Lock()
	b.logouts++
	b.mu.Unlock()
	b.loggedOut <- struct{}{}
	return nil
}

// testAuthSession adds SASL mechanisms: PLAIN (built in) and XTEST, whose
// single client response must be "token:<password of alice>".
type testAuthSession struct{ *testSession }

func (s *testAuthSession) AuthMechanisms() []string { return s.be.mechanisms }

func (s *testAuthSession) Auth(mech string) (sasl.Server, error) {
	switch mech {
	case "PLAIN":
		return PlainServer(s), nil
	case "XTEST":
		return &xtestServer{s: s.testSession}, nil
	}
	return nil, &Error{Message: "no such mechanism"}
}

type xtestServer struct {
	s    *testSession
	step int
}

func (x *xtestServer) Next(response []byte) ([]byte, bool, error) {
	x.step++
	if x.step == 1 {
		return []byte("send token"), false, nil
	}
	if string(response) != "token:s3cret pass" {
		return nil, false, &Error{Code: CodeAuth, Message: "Invalid token."}
	}
	x.s.user = "alice"
	return nil, true, nil
}

var _ AuthSession = (*testAuthSession)(nil)

// recorder collects Trace lines and ErrorLog output.
type recorder struct {
	mu    sync.Mutex
	trace []string
	logs  []string
}

func (r *recorder) Trace(c *Conn, fromClient bool, line string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	dir := "S: "
	if fromClient {
		dir = "C: "
	}
	r.trace = append(r.trace, dir+line)
}

func (r *recorder) Printf(format string, v ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.logs = append(r.logs, fmt.Sprintf(format, v...))
}

func (r *recorder) traceLines() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.trace...)
}

func (r *recorder) logLines() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.logs...)
}

// newTestServer returns a server over be that traces and logs into rec.
func newTestServer(be Backend, rec *recorder) *Server {
	return &Server{
		Backend:        be,
		Hostname:       "mail.example.test",
		Implementation: "maillab-test",
		ErrorLog:       rec,
		Trace:          rec.Trace,
	}
}

// serve starts s on a loopback listener (wrapped by wrap, if not nil) and
// returns its address; the server is closed when the test ends.
func serve(t *testing.T, s *Server, wrap func(net.Listener) net.Listener) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	addr := ln.Addr().String()
	if wrap != nil {
		ln = wrap(ln)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if err := <-done; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve = %v, want ErrServerClosed", err)
		}
	})
	return addr
}

// testClient scripts one POP3 session, maddy-style: send a line, expect a
// reply.
type testClient struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
}

// clientDeadline bounds every test conversation so that a server bug fails
// the test instead of hanging it; no test asserts on elapsed time.
const clientDeadline = 10 * time.Second

func dial(t *testing.T, addr string) *testClient {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	return newTestClient(t, conn)
}

func newTestClient(t *testing.T, conn net.Conn) *testClient {
	t.Helper()
	_ = conn.SetDeadline(time.Now().Add(clientDeadline))
	t.Cleanup(func() { conn.Close() })
	return &testClient{t: t, conn: conn, r: bufio.NewReader(conn)}
}

// send writes one command line (CRLF added).
func (c *testClient) send(line string) {
	c.t.Helper()
	c.sendRaw(line + "\r\n")
}

func (c *testClient) sendRaw(data string) {
	c.t.Helper()
	if _, err := io.WriteString(c.conn, data); err != nil {
		c.t.Fatalf("send %q: %v", data, err)
	}
}

// readLine reads one reply line without CRLF.
func (c *testClient) readLine() (string, error) {
	line, err := c.r.ReadString('\n')
	if err != nil {
		return line, err
	}
	if !strings.HasSuffix(line, "\r\n") {
		return line, fmt.Errorf("reply line %q does not end with CRLF", line)
	}
	return strings.TrimSuffix(line, "\r\n"), nil
}

// expect reads one line and checks it equals want.
func (c *testClient) expect(want string) {
	c.t.Helper()
	got, err := c.readLine()
	if err != nil {
		c.t.Fatalf("reading reply (want %q): %v (got %q)", want, err, got)
	}
	if got != want {
		c.t.Fatalf("reply = %q, want %q", got, want)
	}
}

// expectMatch reads one line and checks it matches the regexp pattern.
func (c *testClient) expectMatch(pattern string) string {
	c.t.Helper()
	got, err := c.readLine()
	if err != nil {
		c.t.Fatalf("reading reply (want /%s/): %v (got %q)", pattern, err, got)
	}
	if !regexp.MustCompile("^(?:" + pattern + ")$").MatchString(got) {
		c.t.Fatalf("reply = %q, want match of /%s/", got, pattern)
	}
	return got
}

// expectClosed checks that the server closed the connection without
// sending anything more.
func (c *testClient) expectClosed() {
	c.t.Helper()
	got, err := c.r.ReadString('\n')
	if err == nil || !errors.Is(err, io.EOF) && !isReset(err) {
		c.t.Fatalf("want connection closed, got %q, %v", got, err)
	}
	if got != "" {
		c.t.Fatalf("want connection closed, got partial %q", got)
	}
}

// expectTruncated checks that the server closed the connection before the
// terminating "." of a multi-line response.
func (c *testClient) expectTruncated() {
	c.t.Helper()
	rest, err := io.ReadAll(c.r)
	if err != nil && !isReset(err) {
		c.t.Fatalf("reading the rest: %v", err)
	}
	if s := string(rest); s == ".\r\n" || strings.Contains(s, "\r\n.\r\n") || strings.HasSuffix(s, "\n") {
		c.t.Fatalf("want a truncated response, got %q", s)
	}
}

func isReset(err error) bool {
	var ne *net.OpError
	return errors.As(err, &ne) && strings.Contains(ne.Err.Error(), "reset")
}

// run executes a script: "C: line" sends, "S: line" expects that line,
// "S~ re" expects a line matching re, "EOF" expects the server to close,
// "TRUNCATED" expects it to close in the middle of a multi-line response.
func (c *testClient) run(script []string) {
	c.t.Helper()
	for _, step := range script {
		switch {
		case strings.HasPrefix(step, "C: "):
			c.send(step[3:])
		case strings.HasPrefix(step, "S: "):
			c.expect(step[3:])
		case strings.HasPrefix(step, "S~ "):
			c.expectMatch(step[3:])
		case step == "EOF":
			c.expectClosed()
		case step == "TRUNCATED":
			c.expectTruncated()
		default:
			c.t.Fatalf("bad script step %q", step)
		}
	}
}

// testPKI is a throwaway CA and a server certificate for 127.0.0.1 and
// mail.example.test, ECDSA P-256.
type testPKI struct {
	caPEM  []byte
	roots  *x509.CertPool
	server tls.Certificate
}

var (
	pkiOnce sync.Once
	pki     *testPKI
	pkiErr  error
)

func getPKI(t testing.TB) *testPKI {
	t.Helper()
	pkiOnce.Do(func() { pki, pkiErr = makePKI() })
	if pkiErr != nil {
		t.Fatalf("make test PKI: %v", pkiErr)
	}
	return pki
}

func makePKI() (*testPKI, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "pop3 test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "mail.example.test"},
		DNSNames:     []string{"mail.example.test"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, caCert, &leafKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	roots.AddCert(caCert)
	return &testPKI{
		caPEM:  pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		roots:  roots,
		server: tls.Certificate{Certificate: [][]byte{leafDER}, PrivateKey: leafKey},
	}, nil
}

func (p *testPKI) serverConfig() *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{p.server}, MinVersion: tls.VersionTLS12}
}

func (p *testPKI) clientConfig() *tls.Config {
	return &tls.Config{RootCAs: p.roots, ServerName: "mail.example.test", MinVersion: tls.VersionTLS12}
}

// startTLS upgrades the client after "+OK Begin TLS negotiation".
func (c *testClient) startTLS(cfg *tls.Config) {
	c.t.Helper()
	if c.r.Buffered() != 0 {
		c.t.Fatalf("server sent %d octets after the STLS reply", c.r.Buffered())
	}
	tc := tls.Client(c.conn, cfg)
	if err := tc.Handshake(); err != nil {
		c.t.Fatalf("TLS handshake: %v", err)
	}
	c.conn = tc
	c.r = bufio.NewReader(tc)
}

// waitLogout waits until the backend saw n more Logout calls.
func waitLogout(t *testing.T, be *testBackend, n int) {
	t.Helper()
	timer := time.NewTimer(clientDeadline)
	defer timer.Stop()
	for range n {
		select {
		case <-be.loggedOut:
		case <-timer.C:
			t.Fatalf("Logout not called within %v", clientDeadline)
		}
	}
}

func listenLoopback() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }

func netPipe() (net.Conn, net.Conn) { return net.Pipe() }
