package imapd

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/maillab/maillab/servers/auth"
	"github.com/maillab/maillab/servers/mailstore"
)

// Accounts of every test store.
const (
	alice     = "alice@example.test"
	alicePass = "alice-secret"
	bob       = "bob@example.test"
	bobPass   = "bob-secret"
	goodToken = "ya29.good-token"
)

// ioTimeout only keeps a broken test from hanging; nothing asserts on it.
const ioTimeout = 10 * time.Second

func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if leaks := waitServerGoroutines(5 * time.Second); len(leaks) > 0 {
			fmt.Fprintf(os.Stderr, "goroutines of the server still running after all tests:\n%s\n", strings.Join(leaks, "\n\n"))
			code = 1
		}
	}
	os.Exit(code)
}

// serverGoroutines returns the stacks of goroutines that belong to a
// server: imapd's connections and sessions, go-imap's server side.
func serverGoroutines() []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		for _, frame := range []string{"imapserver.(*", "imapd.(*conn)", "imapd.(*Server)", "imapd.(*session)", "imapd.(*view)"} {
			if strings.Contains(g, frame) {
				out = append(out, g)
				break
			}
		}
	}
	return out
}

// waitServerGoroutines waits until no server goroutine runs, or returns
// their stacks when d has passed.
func waitServerGoroutines(d time.Duration) []string {
	deadline := time.Now().Add(d)
	for {
		leaks := serverGoroutines()
		if len(leaks) == 0 || time.Now().After(deadline) {
			return leaks
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// newStore returns an in-memory store with alice and bob.
func newStore(t *testing.T) *mailstore.Store {
	t.Helper()
	st, err := mailstore.Open(mailstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range [][2]string{{alice, alicePass}, {bob, bobPass}} {
		if _, err := st.AddUser(u[0], u[0], u[1]); err != nil {
			t.Fatal(err)
		}
	}
	return st
}

// testCert returns a throwaway ECDSA certificate for 127.0.0.1 and a
// client configuration that trusts it.
func testCert(t *testing.T) (server, client *tls.Config, certPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "imap.example.test"},
		DNSNames:              []string{"imap.example.test"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	server = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}}}
	client = &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
	return server, client, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// listenMode says how the test listener hands out connections.
type listenMode int

const (
	plainListener       listenMode = iota
	lazyTLSListener                // tls.NewListener: handshake not done yet
	handshakenTLSListen            // a wrapper that did the handshake already
)

// handshakeListener completes the TLS handshake before Accept returns, as
// a fault wrapper of the lab may.
type handshakeListener struct {
	net.Listener
	cfg *tls.Config
}

func (l handshakeListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		tc := tls.Server(c, l.cfg)
		ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
		err = tc.HandshakeContext(ctx)
		cancel()
		if err == nil {
			return tc, nil
		}
		c.Close()
	}
}

// lab is a running Server with its store and what its authenticator saw.
type lab struct {
	t         *testing.T
	store     *mailstore.Store
	srv       *Server
	addr      string
	clientTLS *tls.Config
	certPEM   []byte // the server certificate, for real clients
	serveErr  chan error
	log       *testLog
	// wantErrorLogs: the test provokes server errors on purpose.
	wantErrorLogs bool

	mu   sync.Mutex
	reqs []auth.Request
}

type labOption func(*Config, *listenMode)

func withConfig(f func(*Config)) labOption { return func(c *Config, _ *listenMode) { f(c) } }
func withListener(m listenMode) labOption  { return func(_ *Config, lm *listenMode) { *lm = m } }

// startLab serves a store with alice and bob on a loopback port. By
// default: plaintext, STARTTLS offered, insecure auth allowed, auth.Store
// with a good OAuth token for alice. The cleanup closes the server and
// checks that Serve returned nil and that no server goroutine is left.
func startLab(t *testing.T, opts ...labOption) *lab {
	t.Helper()
	serverTLS, clientTLS, certPEM := testCert(t)
	l := &lab{t: t, store: newStore(t), clientTLS: clientTLS, certPEM: certPEM, serveErr: make(chan error, 1), log: newTestLog(t)}
	base := &auth.Store{Store: l.store, Tokens: map[string]string{alice: goodToken}}
	cfg := Config{
		Hostname:          "imap.example.test",
		Service:           "imap",
		Store:             l.store,
		TLSConfig:         serverTLS,
		AllowInsecureAuth: true,
		Logger:            slog.New(l.log),
		Auth: auth.Func(func(ctx context.Context, req *auth.Request) (*mailstore.User, error) {
			l.mu.Lock()
			l.reqs = append(l.reqs, *req)
			l.mu.Unlock()
			return base.Authenticate(ctx, req)
		}),
	}
	mode := plainListener
	for _, o := range opts {
		o(&cfg, &mode)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l.addr = ln.Addr().String()
	switch mode {
	case lazyTLSListener:
		ln = tls.NewListener(ln, serverTLS)
	case handshakenTLSListen:
		ln = handshakeListener{Listener: ln, cfg: serverTLS}
	}
	l.srv = New(cfg)
	go func() { l.serveErr <- l.srv.Serve(ln) }()
	t.Cleanup(func() {
		if err := l.srv.Close(); err != nil {
			t.Errorf("Close() = %v", err)
		}
		select {
		case err := <-l.serveErr:
			if err != nil {
				t.Errorf("Serve() = %v, want nil after Close", err)
			}
		case <-time.After(ioTimeout):
			t.Errorf("Serve did not return after Close")
		}
		if leaks := waitServerGoroutines(5 * time.Second); len(leaks) > 0 {
			t.Errorf("server goroutines left after Close:\n%s", strings.Join(leaks, "\n\n"))
		}
		if errs := l.log.errorRecords(); len(errs) > 0 && !l.wantErrorLogs {
			t.Errorf("server logged errors: %q", errs)
		}
	})
	return l
}

// lastRequest returns what the authenticator saw last.
func (l *lab) lastRequest() auth.Request {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.reqs) == 0 {
		l.t.Fatal("the authenticator was not called")
	}
	return l.reqs[len(l.reqs)-1]
}

// user returns a store account.
func (l *lab) user(name string) *mailstore.User {
	l.t.Helper()
	u, err := l.store.User(name)
	if err != nil {
		l.t.Fatal(err)
	}
	return u
}

// deliver puts a message into an INBOX as SMTP would.
func (l *lab) deliver(rcpt, msg string) {
	l.t.Helper()
	if err := l.store.Deliver(rcpt, []byte(msg)); err != nil {
		l.t.Fatal(err)
	}
}

// client dials the lab with imapclient in plaintext and logs in unless
// user is empty.
func (l *lab) client(user, pass string, opts *imapclient.Options) *imapclient.Client {
	l.t.Helper()
	c, err := imapclient.DialInsecure(l.addr, opts)
	if err != nil {
		l.t.Fatal(err)
	}
	l.t.Cleanup(func() { c.Close() })
	if user != "" {
		if err := c.Login(user, pass).Wait(); err != nil {
			l.t.Fatalf("Login(%s) = %v", user, err)
		}
	}
	return c
}

// testLog sends the server's records to the test log and counts the
// records at level ERROR, which mean a bug or a failure of the lab.
type testLog struct {
	slog.Handler
	t      *testing.T
	mu     sync.Mutex
	done   bool
	errors []string
}

func newTestLog(t *testing.T) *testLog {
	h := &testLog{t: t}
	h.Handler = slog.NewTextHandler(h, &slog.HandlerOptions{Level: slog.LevelDebug})
	t.Cleanup(func() {
		h.mu.Lock()
		h.done = true
		h.mu.Unlock()
	})
	return h
}

// Write receives the text handler's output.
func (h *testLog) Write(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.done {
		h.t.Log(strings.TrimSpace(string(p)))
	}
	return len(p), nil
}

func (h *testLog) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelError {
		h.mu.Lock()
		h.errors = append(h.errors, r.Message)
		h.mu.Unlock()
	}
	return h.Handler.Handle(ctx, r)
}

func (h *testLog) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &testLogChild{Handler: h.Handler.WithAttrs(attrs), root: h}
}

func (h *testLog) WithGroup(name string) slog.Handler {
	return &testLogChild{Handler: h.Handler.WithGroup(name), root: h}
}

// errorRecords returns the messages logged at level ERROR.
func (h *testLog) errorRecords() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.errors)
}

// testLogChild counts its records in the root testLog.
type testLogChild struct {
	slog.Handler
	root *testLog
}

func (h *testLogChild) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelError {
		h.root.mu.Lock()
		h.root.errors = append(h.root.errors, r.Message)
		h.root.mu.Unlock()
	}
	return h.Handler.Handle(ctx, r)
}

func (h *testLogChild) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &testLogChild{Handler: h.Handler.WithAttrs(attrs), root: h.root}
}

func (h *testLogChild) WithGroup(name string) slog.Handler {
	return &testLogChild{Handler: h.Handler.WithGroup(name), root: h.root}
}

// message builds a small RFC 5322 message.
func message(from, to, subject, body string) string {
	return "From: " + from + "\r\nTo: " + to + "\r\nSubject: " + subject +
		"\r\nDate: Mon, 02 Jan 2006 15:04:05 +0000\r\nMessage-ID: <" + strings.ReplaceAll(subject, " ", ".") + "@example.test>\r\n\r\n" + body + "\r\n"
}

// raw is a scripted IMAP client for checking exact wire text.
type raw struct {
	t   *testing.T
	c   net.Conn
	r   *bufio.Reader
	tag int
}

// dialRaw connects and reads the greeting.
func dialRaw(t *testing.T, addr string) (*raw, string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	r := &raw{t: t, c: c, r: bufio.NewReader(c)}
	return r, r.line()
}

// dialRawNoGreeting connects without reading anything; reads time out
// after ioTimeout.
func dialRawNoGreeting(t *testing.T, addr string) (*raw, net.Conn) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(ioTimeout))
	return &raw{t: t, c: c, r: bufio.NewReader(c)}, c
}

// line reads one line without its CRLF.
func (r *raw) line() string {
	r.t.Helper()
	r.c.SetReadDeadline(time.Now().Add(ioTimeout))
	s, err := r.r.ReadString('\n')
	if err != nil {
		r.t.Fatalf("read: %v (got %q)", err, s)
	}
	return strings.TrimRight(s, "\r\n")
}

// send writes one line with CRLF.
func (r *raw) send(line string) {
	r.t.Helper()
	r.c.SetWriteDeadline(time.Now().Add(ioTimeout))
	if _, err := io.WriteString(r.c, line+"\r\n"); err != nil {
		r.t.Fatalf("write %q: %v", line, err)
	}
}

// cmd sends a tagged command and returns the untagged lines and the
// completion without its tag.
func (r *raw) cmd(command string) (untagged []string, done string) {
	r.t.Helper()
	r.tag++
	tag := fmt.Sprintf("a%d", r.tag)
	r.send(tag + " " + command)
	for {
		l := r.line()
		if rest, ok := strings.CutPrefix(l, tag+" "); ok {
			return untagged, rest
		}
		untagged = append(untagged, l)
	}
}

// expectOK runs a command that must succeed.
func (r *raw) expectOK(command string) []string {
	r.t.Helper()
	untagged, done := r.cmd(command)
	if !strings.HasPrefix(done, "OK") {
		r.t.Fatalf("%s: got %q, want OK", command, done)
	}
	return untagged
}

// startTLS upgrades the connection.
func (r *raw) startTLS(cfg *tls.Config) {
	r.t.Helper()
	r.expectOK("STARTTLS")
	tc := tls.Client(r.c, cfg)
	tc.SetDeadline(time.Now().Add(ioTimeout))
	if err := tc.Handshake(); err != nil {
		r.t.Fatalf("TLS handshake after STARTTLS: %v", err)
	}
	r.c = tc
	r.r = bufio.NewReader(tc)
}

func itoa(n uint32) string  { return strconv.FormatUint(uint64(n), 10) }
func itoa64(n int64) string { return strconv.FormatInt(n, 10) }

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// slogNew returns a logger writing to h.
func slogNew(h slog.Handler) *slog.Logger { return slog.New(h) }

// dialRawTLS connects with implicit TLS and reads the greeting.
func dialRawTLS(t *testing.T, addr string, cfg *tls.Config) (*raw, string) {
	t.Helper()
	c, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	r := &raw{t: t, c: c, r: bufio.NewReader(c)}
	return r, r.line()
}
