package imapd

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/maillab/maillab/servers/auth"
	"github.com/maillab/maillab/servers/mailstore"
)

// expectClosed checks that the server closed the connection (after any
// lines already sent).
func (r *raw) expectClosed() {
	r.t.Helper()
	r.c.SetReadDeadline(time.Now().Add(ioTimeout))
	rest, err := io.ReadAll(r.r)
	if err != nil && !errors.Is(err, net.ErrClosed) && !isReset(err) {
		r.t.Errorf("after the server closed: %v (read %q)", err, rest)
	}
}

func isReset(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && !ne.Timeout()
}

func TestServeErrors(t *testing.T) {
	st := newStore(t)
	good := Config{Store: st, Auth: &auth.Store{Store: st}}
	tests := []struct {
		name string
		cfg  Config
	}{
		{"no store", Config{Auth: good.Auth}},
		{"no authenticator", Config{Store: st}},
		{"unknown mechanism", Config{Store: st, Auth: good.Auth, Mechanisms: []string{"CRAM-MD5"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			if err := New(tt.cfg).Serve(ln); err == nil || errors.Is(err, ErrServerClosed) {
				t.Errorf("Serve = %v, want a configuration error", err)
			}
			if _, err := net.Dial("tcp", ln.Addr().String()); err == nil {
				t.Errorf("Serve left the listener open")
			}
		})
	}
	t.Run("after close", func(t *testing.T) {
		srv := New(good)
		if err := srv.Close(); err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		if err := srv.Serve(ln); !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve after Close = %v, want ErrServerClosed", err)
		}
		if err := srv.Close(); err != nil {
			t.Errorf("second Close = %v", err)
		}
	})
}

func TestServeSeveralListeners(t *testing.T) {
	l := startLab(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	second := make(chan error, 1)
	go func() { second <- l.srv.Serve(ln) }()
	for _, addr := range []string{l.addr, ln.Addr().String()} {
		r, greeting := dialRaw(t, addr)
		if !strings.HasPrefix(greeting, "* OK ") {
			t.Errorf("greeting on %s = %q", addr, greeting)
		}
		r.expectOK("LOGIN bob@example.test bob-secret")
	}
	l.srv.Close()
	if err := <-second; err != nil {
		t.Errorf("second Serve = %v, want nil after Close", err)
	}
}

func TestCloseWithLiveSessions(t *testing.T) {
	l := startLab(t)
	idle, _ := dialRaw(t, l.addr)
	idle.expectOK("LOGIN alice@example.test alice-secret")
	idle.expectOK("SELECT INBOX")
	idle.send("i1 IDLE")
	if got := idle.line(); got != "+ idling" {
		t.Fatalf("IDLE = %q", got)
	}
	appending, _ := dialRaw(t, l.addr)
	appending.expectOK("LOGIN bob@example.test bob-secret")
	appending.send("p1 APPEND INBOX {100}")
	if got := appending.line(); !strings.HasPrefix(got, "+ ") {
		t.Fatalf("APPEND = %q", got)
	}
	fresh, _ := dialRawNoGreeting(t, l.addr) // before or after its greeting

	if err := l.srv.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	for _, r := range []*raw{idle, appending, fresh} {
		r.expectClosed()
	}
	// Close returns when every session has ended; go-imap's connection
	// goroutine returns right after calling the session's Close.
	if leaks := waitServerGoroutines(5 * time.Second); len(leaks) > 0 {
		t.Errorf("goroutines left after Close:\n%s", strings.Join(leaks, "\n\n"))
	}
	if _, err := net.Dial("tcp", l.addr); err == nil {
		t.Errorf("listener still accepts after Close")
	}
}

func TestShutdown(t *testing.T) {
	l := startLab(t)
	idle, _ := dialRaw(t, l.addr)
	idle.expectOK("LOGIN alice@example.test alice-secret")
	idle.expectOK("SELECT INBOX")
	idle.send("i1 IDLE")
	if got := idle.line(); got != "+ idling" {
		t.Fatalf("IDLE = %q", got)
	}
	busy, _ := dialRaw(t, l.addr)
	busy.expectOK("LOGIN bob@example.test bob-secret")

	result := make(chan error, 1)
	go func() { result <- l.srv.Shutdown(context.Background()) }()

	// The session in IDLE is between commands: it gets a BYE at once.
	if got := idle.line(); got != "* BYE imap.example.test IMAP server shutting down" {
		t.Errorf("IDLE session got %q, want BYE", got)
	}
	idle.expectClosed()
	if _, err := net.Dial("tcp", l.addr); err == nil {
		t.Errorf("listener still accepts during Shutdown")
	}
	select {
	case err := <-result:
		t.Fatalf("Shutdown returned %v while a session was live", err)
	default:
	}

	// The other session finishes its work and logs out.
	busy.expectOK("SELECT INBOX")
	busy.expectOK("LOGOUT")
	select {
	case err := <-result:
		if err != nil {
			t.Errorf("Shutdown = %v, want nil", err)
		}
	case <-time.After(ioTimeout):
		t.Fatal("Shutdown did not return after the last session ended")
	}
}

func TestShutdownDeadline(t *testing.T) {
	l := startLab(t)
	busy, _ := dialRaw(t, l.addr)
	busy.expectOK("LOGIN bob@example.test bob-secret")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := l.srv.Shutdown(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Shutdown with an ended context = %v, want context.Canceled", err)
	}
	busy.expectClosed()
}

// transcripts records each connection's transcript separately.
type transcripts struct {
	mu    sync.Mutex
	conns map[string]*bytes.Buffer // by remote address
}

func (ts *transcripts) writer(c net.Conn) io.Writer {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	b := &bytes.Buffer{}
	ts.conns[c.RemoteAddr().String()] = b
	return writerFunc(func(p []byte) (int, error) {
		ts.mu.Lock()
		defer ts.mu.Unlock()
		return b.Write(p)
	})
}

func (ts *transcripts) of(c net.Conn) string {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	b := ts.conns[c.LocalAddr().String()]
	if b == nil {
		return ""
	}
	return b.String()
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func TestTranscriptPerConnection(t *testing.T) {
	ts := &transcripts{conns: map[string]*bytes.Buffer{}}
	l := startLab(t, withConfig(func(c *Config) { c.Transcript = ts.writer }))

	var wg sync.WaitGroup
	sessions := map[string]*raw{}
	for _, user := range [][2]string{{alice, alicePass}, {bob, bobPass}} {
		r, _ := dialRaw(t, l.addr)
		sessions[user[0]] = r
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, done := r.cmd("LOGIN " + user[0] + " " + user[1]); !strings.HasPrefix(done, "OK") {
				t.Errorf("LOGIN %s = %q", user[0], done)
			}
			r.cmd("SELECT INBOX")
			r.cmd("LOGOUT")
		}()
	}
	wg.Wait()
	l.srv.Close() // every transcript is complete once the sessions ended

	for user, r := range sessions {
		got := ts.of(r.c)
		for _, want := range []string{"* OK [CAPABILITY IMAP4rev1", "a1 LOGIN " + user, "a2 SELECT INBOX", "* BYE"} {
			if !strings.Contains(got, want) {
				t.Errorf("transcript of %s lacks %q:\n%s", user, want, got)
			}
		}
		for other := range sessions {
			if other != user && strings.Contains(got, other) {
				t.Errorf("transcript of %s holds %s's session:\n%s", user, other, got)
			}
		}
	}
}

func TestTranscriptAfterSTARTTLS(t *testing.T) {
	ts := &transcripts{conns: map[string]*bytes.Buffer{}}
	l := startLab(t, withConfig(func(c *Config) { c.Transcript = ts.writer; c.AllowInsecureAuth = false }))
	r, _ := dialRaw(t, l.addr)
	local := r.c
	r.startTLS(l.clientTLS)
	r.expectOK("LOGIN alice@example.test alice-secret")
	r.cmd("LOGOUT")
	l.srv.Close()
	got := ts.of(local)
	for _, want := range []string{"a1 STARTTLS", "a1 OK Begin TLS negotiation now", "a2 LOGIN alice@example.test alice-secret"} {
		if !strings.Contains(got, want) {
			t.Errorf("transcript lacks %q (plaintext after TLS):\n%s", want, got)
		}
	}
	// The session inside TLS does not greet again (the client never
	// gets that greeting, so the transcript must not show it).
	if n := strings.Count(got, "IMAP server ready"); n != 1 {
		t.Errorf("transcript holds %d greetings, want 1:\n%s", n, got)
	}
}

func TestBrokenTranscriptKeepsSessionAlive(t *testing.T) {
	l := startLab(t, withConfig(func(c *Config) {
		c.Transcript = func(net.Conn) io.Writer {
			return writerFunc(func([]byte) (int, error) { return 0, errors.New("disk full") })
		}
	}))
	r, _ := dialRaw(t, l.addr)
	r.expectOK("LOGIN alice@example.test alice-secret")
	r.expectOK("SELECT INBOX")
}

func TestCloseDuringSlowLogin(t *testing.T) {
	entered := make(chan struct{})
	l := startLab(t, withConfig(func(c *Config) {
		c.Auth = auth.Func(func(ctx context.Context, _ *auth.Request) (*mailstore.User, error) {
			close(entered)
			<-ctx.Done() // a slow directory that honours cancellation
			return nil, ctx.Err()
		})
	}))
	r, _ := dialRaw(t, l.addr)
	r.send("a1 LOGIN alice@example.test alice-secret")
	<-entered
	if err := l.srv.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	r.expectClosed()
}
