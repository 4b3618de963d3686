package transcript

import (
	"bufio"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

type authBackend struct{}

func (authBackend) NewSession(*smtp.Conn) (smtp.Session, error) { return &authSession{}, nil }

type authSession struct{}

func (*authSession) AuthMechanisms() []string { return []string{sasl.Plain} }
func (*authSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user == "alice" && pass == "hunter2-pw" {
			return nil
		}
		return errors.New("bad")
	}), nil
}
func (*authSession) Mail(string, *smtp.MailOptions) error { return nil }
func (*authSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (*authSession) Data(io.Reader) error                 { return nil }
func (*authSession) Reset()                               {}
func (*authSession) Logout() error                        { return nil }

type syncRecorder struct {
	mu  sync.Mutex
	got []string
}

func (r *syncRecorder) Record(e Entry) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, string(e.Dir)+": "+e.Text)
}

// TestGoSMTPPipelinedAuth runs go-smtp itself: the client sends AUTH PLAIN
// and its response in one write. The transcript must learn each write's
// direction from go-smtp's tee (no guessing) and show no credential.
func TestGoSMTPPipelinedAuth(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rec := &syncRecorder{}
	w := NewSession(rec, "submission", nil).SMTPWriter()
	srv := smtp.NewServer(authBackend{})
	srv.Domain = "lab.test"
	srv.AllowInsecureAuth = true
	srv.Debug = w
	go srv.Serve(ln)
	defer srv.Close()

	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	readReply := func() string {
		t.Helper()
		var last string
		for {
			l, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("read reply: %v", err)
			}
			last = l
			if len(l) < 4 || l[3] != '-' {
				return last
			}
		}
	}
	readReply() // greeting
	blob := base64.StdEncoding.EncodeToString([]byte("\x00alice\x00hunter2-pw"))
	if _, err := c.Write([]byte("EHLO client\r\nAUTH PLAIN\r\n" + blob + "\r\n")); err != nil {
		t.Fatal(err)
	}
	readReply() // EHLO
	readReply() // 334
	if r := readReply(); !strings.HasPrefix(r, "235") {
		t.Fatalf("AUTH reply %q, want 235", r)
	}
	c.Write([]byte("QUIT\r\n"))
	readReply()
	srv.Close()

	rec.mu.Lock()
	defer rec.mu.Unlock()
	sw := w.(*smtpWriter)
	sw.mu.Lock()
	defer sw.mu.Unlock()
	if sw.guessed != 0 {
		t.Errorf("%d writes of go-smtp's debug stream had no known direction; go-smtp no longer tees through io.TeeReader/io.MultiWriter?", sw.guessed)
	}
	transcript := strings.Join(rec.got, "\n")
	for _, secret := range []string{blob, "hunter2-pw", base64.StdEncoding.EncodeToString([]byte("hunter2-pw"))} {
		if strings.Contains(transcript, secret) {
			t.Errorf("transcript shows %q:\n%s", secret, transcript)
		}
	}
	if !strings.Contains(transcript, "C: AUTH PLAIN\nC: ****") {
		t.Errorf("transcript lacks the masked AUTH exchange:\n%s", transcript)
	}
}

// TestGoIMAPSplitPassword runs go-imap's server: the client's quoted
// password is cut where its second part begins with "* ", the segment that
// used to be logged as a server line. The transcript must learn each
// write's direction from go-imap's tee and show no credential.
func TestGoIMAPSplitPassword(t *testing.T) {
	const password = "hunter2* pw"
	mem := imapmemserver.New()
	mem.AddUser(imapmemserver.NewUser("alice", password))
	rec := &syncRecorder{}
	w := NewSession(rec, "imap", nil).IMAPWriter()
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return mem.NewSession(), nil, nil
		},
		Caps:         imap.CapSet{imap.CapIMAP4rev1: {}},
		InsecureAuth: true,
		DebugWriter:  w,
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Close()

	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	expect := func(prefix string) {
		t.Helper()
		for {
			l, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("waiting for %q: %v", prefix, err)
			}
			if strings.HasPrefix(l, prefix) {
				return
			}
		}
	}
	expect("* OK")
	c.Write([]byte(`a1 LOGIN alice "hunter2`))
	time.Sleep(20 * time.Millisecond) // let the server read the first part alone
	c.Write([]byte(`* pw"` + "\r\n"))
	expect("a1 OK")
	c.Write([]byte("a2 LOGOUT\r\n"))
	expect("a2 OK")
	c.Close()
	srv.Close()

	iw := w.(*imapWriter)
	iw.mu.Lock()
	guessed := iw.guessed
	iw.mu.Unlock()
	if guessed != 0 {
		t.Errorf("%d writes of go-imap's debug stream had no known direction; go-imap no longer tees through io.TeeReader/io.MultiWriter?", guessed)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	transcript := strings.Join(rec.got, "\n")
	for _, secret := range []string{"hunter2", "* pw"} {
		if strings.Contains(transcript, secret) {
			t.Errorf("transcript shows %q:\n%s", secret, transcript)
		}
	}
	if !strings.Contains(transcript, "C: a1 LOGIN alice ****") {
		t.Errorf("transcript lacks the masked LOGIN:\n%s", transcript)
	}
}
