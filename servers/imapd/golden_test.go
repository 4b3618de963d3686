package imapd

import (
	"flag"
	"io"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/maillab/maillab/internal/golden"
	"github.com/maillab/maillab/servers/auth"
	"github.com/maillab/maillab/servers/mailstore"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files under testdata/")

// goldenScript is what a desktop client does when it opens an account:
// capabilities, login, folders, the INBOX summary, reading a message,
// flagging, deleting, searching.
const goldenScript = "a1 CAPABILITY\r\n" +
	"a2 LOGIN alice@example.test alice-secret\r\n" +
	"a3 NAMESPACE\r\n" +
	"a4 LIST \"\" \"*\"\r\n" +
	"a5 LSUB \"\" \"*\"\r\n" +
	"a6 STATUS Archive (MESSAGES UIDNEXT UIDVALIDITY UNSEEN)\r\n" +
	"a7 SELECT INBOX\r\n" +
	"a8 UID FETCH 1:* (UID RFC822.SIZE FLAGS INTERNALDATE ENVELOPE BODYSTRUCTURE BODY.PEEK[HEADER.FIELDS (From To Subject Date Message-ID)])\r\n" +
	"a9 UID FETCH 2 (BODY[1] BINARY.SIZE[2])\r\n" +
	"a10 UID STORE 1 +FLAGS (\\Flagged)\r\n" +
	"a11 UID SEARCH UNSEEN\r\n" +
	"a12 UID COPY 1 Archive\r\n" +
	"a13 UID STORE 1 +FLAGS.SILENT (\\Deleted)\r\n" +
	"a14 UID EXPUNGE 1\r\n" +
	"a15 NOOP\r\n" +
	"a16 LOGOUT\r\n"

func TestGoldenSession(t *testing.T) {
	clock := time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC)
	st, err := mailstore.Open(mailstore.Options{Now: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	u, err := st.AddUser(alice, alice, alicePass)
	if err != nil {
		t.Fatal(err)
	}
	if err := u.CreateMailbox("Archive"); err != nil {
		t.Fatal(err)
	}
	u.SetSubscribed("Archive", true)
	for _, m := range []string{message(bob, alice, "Hello Alice", "Lunch tomorrow?"), multipartMessage()} {
		if err := st.Deliver(alice, []byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	log := newTestLog(t)
	srv := New(Config{Store: st, Auth: &auth.Store{Store: st}, AllowInsecureAuth: true, Logger: slogNew(log)})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(ioTimeout))
	// Write the script at once: go-imap answers commands in order.
	if _, err := io.WriteString(c, goldenScript); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(c) // until the server closes after LOGOUT
	if err != nil {
		t.Fatal(err)
	}
	srv.Close()
	if err := <-served; err != nil {
		t.Errorf("Serve = %v", err)
	}
	if errs := log.errorRecords(); len(errs) > 0 {
		t.Errorf("server logged errors: %q", errs)
	}

	golden.Check(t, filepath.Join("testdata", "session.golden"), got, *updateGolden)
}
