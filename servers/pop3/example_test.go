package pop3_test

import (
	"crypto/tls"
	"errors"
	"io"
	"log"
	"net"
	"strings"

	"github.com/maillab/maillab/servers/pop3"
)

// mailbox is a one-user, in-memory maildrop.
type mailbox struct {
	messages map[string]string // UID → message
}

type session struct {
	box      *mailbox
	loggedIn bool
}

func (s *session) Login(username, password string) error {
	if username != "alice" || password != "secret" {
		return pop3.ErrAuthFailed
	}
	s.loggedIn = true
	return nil
}

func (s *session) Maildrop() ([]pop3.Message, error) {
	var msgs []pop3.Message
	for uid, m := range s.box.messages {
		msgs = append(msgs, pop3.Message{UID: uid, Size: int64(len(m))})
	}
	return msgs, nil
}

func (s *session) Retrieve(uid string) (io.ReadCloser, error) {
	m, ok := s.box.messages[uid]
	if !ok {
		return nil, &pop3.Error{Code: pop3.CodeSysTemp, Message: "Message vanished."}
	}
	return io.NopCloser(strings.NewReader(m)), nil
}

func (s *session) Update(deleted []string) error {
	for _, uid := range deleted {
		delete(s.box.messages, uid)
	}
	return nil
}

func (s *session) Logout() error { return nil }

// Example serves one maildrop on a plaintext port with STLS and on an
// implicit-TLS port.
func Example() {
	box := &mailbox{messages: map[string]string{"m1": "Subject: hi\r\n\r\nHello.\r\n"}}
	var cfg *tls.Config // a real certificate here enables STLS and port 995

	srv := &pop3.Server{
		Backend:   pop3.BackendFunc(func(c *pop3.Conn) (pop3.Session, error) { return &session{box: box}, nil }),
		Hostname:  "mail.example.test",
		TLSConfig: cfg,
		Trace: func(c *pop3.Conn, fromClient bool, line string) {
			log.Printf("%v %v %s", c.RemoteAddr(), fromClient, line) // passwords arrive masked
		},
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go func() {
		if err := srv.Serve(ln); !errors.Is(err, pop3.ErrServerClosed) {
			log.Print(err)
		}
	}()
	if cfg != nil {
		ln995, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			log.Fatal(err)
		}
		go srv.Serve(tls.NewListener(ln995, cfg))
	}
	srv.Close()
	// Output:
}

var _ pop3.Session = (*session)(nil)
