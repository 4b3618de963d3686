package imapd

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/maillab/maillab/servers/auth"
	"github.com/maillab/maillab/servers/mailstore"
)

// attachment is the binary payload of multipartMessage.
var attachment = []byte{0x00, 0x01, 0xfe, 0xff, 'P', 'K', 0x03, 0x04, '\r', '\n', 0x80}

// multipartMessage has a text part and a base64 attachment.
func multipartMessage() string {
	return "From: Bob <bob@example.test>\r\n" +
		"To: alice@example.test\r\n" +
		"Subject: Report\r\n" +
		"Date: Tue, 05 Mar 2024 09:30:00 +0100\r\n" +
		"Message-ID: <report@example.test>\r\n" +
		"MIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=\"b1\"\r\n" +
		"\r\n" +
		"--b1\r\n" +
		"Content-Type: text/plain; charset=us-ascii\r\n" +
		"\r\n" +
		"See the attachment.\r\n" +
		"--b1\r\n" +
		"Content-Type: application/octet-stream; name=\"data.bin\"\r\n" +
		"Content-Transfer-Encoding: base64\r\n" +
		"Content-Disposition: attachment; filename=\"data.bin\"\r\n" +
		"\r\n" +
		base64.StdEncoding.EncodeToString(attachment) + "\r\n" +
		"--b1--\r\n"
}

// appendMessage stores a message directly, as delivery or another
// session would.
func appendMessage(t *testing.T, mb *mailstore.Mailbox, msg string, date time.Time, flags ...string) uint32 {
	t.Helper()
	uid, err := mb.Append([]byte(msg), flags, date)
	if err != nil {
		t.Fatal(err)
	}
	return uid
}

func TestFetch(t *testing.T) {
	l := startLab(t)
	inbox, _ := l.user(alice).Mailbox("INBOX")
	msg := multipartMessage()
	date := mustTime(t, "2024-03-05T09:31:00+01:00")
	appendMessage(t, inbox, msg, date)
	appendMessage(t, inbox, message(bob, alice, "second", "hello"), date)

	c := l.client(alice, alicePass, nil)
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	header := &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, HeaderFields: []string{"Subject"}, Peek: true}
	binary := &imap.FetchItemBinarySection{Part: []int{2}, Peek: true}
	text := &imap.FetchItemBodySection{Part: []int{1}, Peek: true}
	msgs, err := c.Fetch(imap.UIDSetNum(1), &imap.FetchOptions{
		UID: true, Flags: true, InternalDate: true, RFC822Size: true, Envelope: true,
		BodyStructure:     &imap.FetchItemBodyStructure{Extended: true},
		BodySection:       []*imap.FetchItemBodySection{header, text},
		BinarySection:     []*imap.FetchItemBinarySection{binary},
		BinarySectionSize: []*imap.FetchItemBinarySectionSize{{Part: []int{2}}},
	}).Collect()
	if err != nil {
		t.Fatalf("FETCH = %v", err)
	}
	if len(msgs) != 1 {
		t.Fatalf("FETCH returned %d messages, want 1", len(msgs))
	}
	m := msgs[0]
	if m.SeqNum != 1 || m.UID != 1 || len(m.Flags) != 0 || !m.InternalDate.Equal(date) || m.RFC822Size != int64(len(msg)) {
		t.Errorf("FETCH = seq %d uid %d flags %v date %v size %d", m.SeqNum, m.UID, m.Flags, m.InternalDate, m.RFC822Size)
	}
	if m.Envelope == nil || m.Envelope.Subject != "Report" || m.Envelope.MessageID != "report@example.test" ||
		len(m.Envelope.From) != 1 || m.Envelope.From[0].Addr() != "bob@example.test" || m.Envelope.From[0].Name != "Bob" {
		t.Errorf("ENVELOPE = %+v", m.Envelope)
	}
	mp, ok := m.BodyStructure.(*imap.BodyStructureMultiPart)
	if !ok || mp.Subtype != "mixed" || len(mp.Children) != 2 {
		t.Fatalf("BODYSTRUCTURE = %#v, want multipart/mixed with 2 parts", m.BodyStructure)
	}
	if att, ok := mp.Children[1].(*imap.BodyStructureSinglePart); !ok || att.Type != "application" || att.Encoding != "base64" ||
		att.Extended == nil || att.Extended.Disposition == nil || att.Extended.Disposition.Value != "attachment" {
		t.Errorf("attachment structure = %#v", mp.Children[1])
	}
	if got := string(m.FindBodySection(header)); got != "Subject: Report\r\n\r\n" {
		t.Errorf("BODY[HEADER.FIELDS (Subject)] = %q", got)
	}
	if got := string(m.FindBodySection(text)); got != "See the attachment." {
		t.Errorf("BODY[1] = %q", got)
	}
	if got := m.FindBinarySection(binary); !bytes.Equal(got, attachment) {
		t.Errorf("BINARY[2] = %q, want %q", got, attachment)
	}
	if n, ok := m.FindBinarySectionSize([]int{2}); !ok || n != uint32(len(attachment)) {
		t.Errorf("BINARY.SIZE[2] = %d, %v; want %d", n, ok, len(attachment))
	}
	if got, _ := inbox.Message(1); len(got.Flags) != 0 {
		t.Errorf("PEEK fetches set flags %v", got.Flags)
	}

	// Without PEEK, \Seen is set and FLAGS comes back unasked (RFC 3501
	// §6.4.5); a partial returns its origin.
	r, _ := dialRaw(t, l.addr)
	r.expectOK("LOGIN alice@example.test alice-secret")
	r.expectOK("SELECT INBOX")
	untagged := r.expectOK("FETCH 2 (BODY[]<0.6>)")
	if got, want := strings.Join(untagged, "\r\n"), "* 2 FETCH (FLAGS (\\Seen) BODY[]<0> {6}\r\nFrom: )"; got != want {
		t.Errorf("FETCH BODY[]<0.6> = %q, want %q", got, want)
	}
	if got, _ := inbox.Message(2); !slices.Equal(got.Flags, []string{`\Seen`}) {
		t.Errorf("flags after FETCH BODY[] = %v, want \\Seen", got.Flags)
	}
	if untagged := r.expectOK("NOOP"); len(untagged) != 0 {
		t.Errorf("NOOP after FETCH BODY[] = %q, want no echo of the \\Seen change", untagged)
	}

	// EXAMINE: fetching the body changes nothing (RFC 3501 §6.3.2).
	r.expectOK("EXAMINE INBOX")
	r.expectOK("FETCH 1 (BINARY[1])")
	if got, _ := inbox.Message(1); len(got.Flags) != 0 {
		t.Errorf("FETCH in EXAMINE set flags %v", got.Flags)
	}
}

func TestFetchUnknownTransferEncoding(t *testing.T) {
	l := startLab(t)
	inbox, _ := l.user(alice).Mailbox("INBOX")
	appendMessage(t, inbox, "Subject: x\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nbegin 644 x\r\n", time.Time{})
	r, _ := dialRaw(t, l.addr)
	r.expectOK("LOGIN alice@example.test alice-secret")
	r.expectOK("SELECT INBOX")
	if _, done := r.cmd("FETCH 1 BINARY.PEEK[]"); done != "NO [UNKNOWN-CTE] Unknown Content-Transfer-Encoding" {
		t.Errorf("BINARY of x-uuencode = %q", done)
	}
	if _, done := r.cmd("FETCH 1 BODY.PEEK[]"); done != "OK FETCH completed" {
		t.Errorf("BODY[] of x-uuencode = %q", done)
	}
}

// searchMailbox fills INBOX for TestSearch. UIDs are sequence numbers
// plus one: UID 1 was expunged.
func searchMailbox(t *testing.T, l *lab) {
	t.Helper()
	inbox, _ := l.user(alice).Mailbox("INBOX")
	day := func(s string) time.Time { return mustTime(t, s+"T12:00:00+00:00") }
	appendMessage(t, inbox, message(bob, alice, "gone", "expunged"), day("2024-01-01"))
	appendMessage(t, inbox, "From: Bob <bob@example.test>\r\nTo: alice@example.test\r\nSubject: Quarterly report\r\n"+
		"Date: Mon, 08 Jan 2024 10:00:00 +0000\r\n\r\nnumbers attached\r\n", day("2024-01-10"), `\Seen`)
	appendMessage(t, inbox, "From: carol@example.test\r\nTo: alice@example.test\r\nSubject: Lunch?\r\n"+
		"Date: Wed, 14 Feb 2024 11:00:00 +0000\r\n\r\nPizza at noon\r\n", day("2024-02-15"), `\Flagged`, "$Work")
	appendMessage(t, inbox, "From: Bob <bob@example.test>\r\nTo: alice@example.test\r\nSubject: Re: Lunch?\r\n"+
		"Date: Thu, 29 Feb 2024 23:30:00 -0500\r\n\r\n"+strings.Repeat("x", 2000)+"\r\n", day("2024-03-01"), `\Deleted`, `\Seen`)
	appendMessage(t, inbox, "From: dave@example.test\r\nTo: alice@example.test\r\nSubject: =?utf-8?q?Caf=C3=A9?=\r\n"+
		"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n"+
		"Date: Fri, 01 Mar 2024 08:00:00 +0000\r\n\r\ncaf=C3=A9 au lait\r\n", day("2024-03-01"))
	if _, err := inbox.Expunge([]uint32{1}); err != nil {
		t.Fatal(err)
	}
}

func TestSearch(t *testing.T) {
	l := startLab(t)
	searchMailbox(t, l)
	r, _ := dialRaw(t, l.addr)
	r.expectOK("LOGIN alice@example.test alice-secret")
	r.expectOK("SELECT INBOX")

	tests := []struct {
		criteria string
		want     string // the SEARCH response
	}{
		{"ALL", "1 2 3 4"},
		{"SEEN", "1 3"},
		{"UNSEEN", "2 4"},
		{"FLAGGED", "2"},
		{"deleted", "3"},
		{"UNDELETED", "1 2 4"},
		{"KEYWORD $Work", "2"},
		{"UNKEYWORD $work", "1 3 4"},
		{"NEW", ""},
		{"OLD", "1 2 3 4"},
		{"FROM bob", "1 3"},
		{"FROM BOB@EXAMPLE.TEST", "1 3"},
		{"SUBJECT lunch", "2 3"},
		{"SUBJECT caf", "4"},
		{`HEADER Subject ""`, "1 2 3 4"},
		{`HEADER X-Missing ""`, ""},
		{"BODY pizza", "2"},
		{"BODY quarterly", ""},
		{"TEXT quarterly", "1"},
		{`BODY "au lait"`, "4"},
		{"LARGER 1000", "3"},
		{"SMALLER 1000", "1 2 4"},
		{"SINCE 1-Feb-2024", "2 3 4"},
		{"BEFORE 1-Feb-2024", "1"},
		{"ON 1-Mar-2024", "3 4"},
		{"SENTON 29-Feb-2024", "3"},
		{"SENTSINCE 1-Mar-2024", "4"},
		{"SENTBEFORE 14-Feb-2024", "1"},
		{"NOT SEEN", "2 4"},
		{"OR FLAGGED DELETED", "2 3"},
		{"NOT OR FLAGGED DELETED", "1 4"},
		{"(SEEN FROM bob) UNDELETED", "1"},
		{"2:3", "2 3"},
		{"*", "4"},
		{"3:*", "3 4"},
		{"1,4 SEEN", "1"},
		{"UID 3:*", "2 3 4"},
		{"UID 1", ""},
		{"CHARSET UTF-8 SUBJECT lunch", "2 3"},
	}
	for _, tt := range tests {
		t.Run(tt.criteria, func(t *testing.T) {
			untagged, done := r.cmd("SEARCH " + tt.criteria)
			want := strings.TrimSpace("* SEARCH " + tt.want)
			if !strings.HasPrefix(done, "OK") || len(untagged) != 1 || untagged[0] != want {
				t.Errorf("SEARCH %s = %q, %q; want %q", tt.criteria, untagged, done, want)
			}
		})
	}

	t.Run("UID SEARCH", func(t *testing.T) {
		if got := r.expectOK("UID SEARCH FROM bob"); !slices.Equal(got, []string{"* SEARCH 2 4"}) {
			t.Errorf("UID SEARCH FROM bob = %q, want UIDs 2 4", got)
		}
	})
	t.Run("ESEARCH", func(t *testing.T) {
		got := r.expectOK("SEARCH RETURN (MIN MAX COUNT) UNDELETED")
		if len(got) != 1 || !strings.HasSuffix(got[0], " MIN 1 MAX 4 COUNT 3") {
			t.Errorf("SEARCH RETURN (MIN MAX COUNT) = %q", got)
		}
	})
	t.Run("unknown charset", func(t *testing.T) {
		if _, done := r.cmd("SEARCH CHARSET KOI8-R ALL"); !strings.HasPrefix(done, "NO [BADCHARSET]") {
			t.Errorf("SEARCH CHARSET KOI8-R = %q", done)
		}
	})
}

func TestStoreAndExpunge(t *testing.T) {
	l := startLab(t)
	inbox, _ := l.user(alice).Mailbox("INBOX")
	for _, s := range []string{"one", "two", "three"} {
		appendMessage(t, inbox, message(bob, alice, s, s), time.Time{})
	}
	r, _ := dialRaw(t, l.addr)
	r.expectOK("LOGIN alice@example.test alice-secret")
	r.expectOK("SELECT INBOX")

	steps := []struct {
		command  string
		untagged []string
	}{
		{`STORE 1 +FLAGS (\Deleted)`, []string{`* 1 FETCH (FLAGS (\Deleted))`}},
		{`STORE 2 +FLAGS.SILENT (\Seen)`, nil},
		{`UID STORE 2 -FLAGS (\Seen)`, []string{`* 2 FETCH (UID 2 FLAGS ())`}},
		{`STORE 2 FLAGS ($Work \flagged)`, []string{`* 2 FETCH (FLAGS ($Work \Flagged))`}},
		{`STORE 3 +FLAGS (\Recent \Seen)`, []string{`* 3 FETCH (FLAGS (\Seen))`}},
		{"NOOP", nil}, // the session's own changes are not echoed
		{"EXPUNGE", []string{"* 1 EXPUNGE"}},
		{`STORE 1:2 +FLAGS.SILENT (\Deleted)`, nil},
		{"UID EXPUNGE 3", []string{"* 2 EXPUNGE"}},
		{"FETCH 1 (UID FLAGS)", []string{`* 1 FETCH (UID 2 FLAGS ($Work \Deleted \Flagged))`}},
		{"CLOSE", nil}, // expunges silently (RFC 3501 §6.4.2)
	}
	for _, s := range steps {
		if got := r.expectOK(s.command); !slices.Equal(got, s.untagged) {
			t.Errorf("%s: untagged %q, want %q", s.command, got, s.untagged)
		}
	}
	if n := inbox.Status().Messages; n != 0 {
		t.Errorf("INBOX holds %d messages after CLOSE, want 0", n)
	}
}

func TestExamineIsReadOnly(t *testing.T) {
	l := startLab(t)
	inbox, _ := l.user(alice).Mailbox("INBOX")
	appendMessage(t, inbox, message(bob, alice, "one", "x"), time.Time{}, `\Deleted`)
	l.user(alice).CreateMailbox("Archive")
	r, _ := dialRaw(t, l.addr)
	r.expectOK("LOGIN alice@example.test alice-secret")
	untagged, done := r.cmd("EXAMINE INBOX")
	if done != "OK [READ-ONLY] EXAMINE completed" || !slices.Contains(untagged, "* OK [PERMANENTFLAGS ()] Permanent flags") {
		t.Errorf("EXAMINE = %q %q", untagged, done)
	}
	for _, command := range []string{`STORE 1 +FLAGS (\Seen)`, "MOVE 1 Archive"} {
		if _, done := r.cmd(command); !strings.HasPrefix(done, "NO [CANNOT]") {
			t.Errorf("%s in EXAMINE = %q, want NO [CANNOT]", command, done)
		}
	}
	r.expectOK("COPY 1 Archive") // reading is allowed
	r.expectOK("EXPUNGE")
	r.expectOK("CLOSE")
	if n := inbox.Status().Messages; n != 1 {
		t.Errorf("EXPUNGE/CLOSE after EXAMINE removed messages: %d left, want 1", n)
	}
}

func TestCopyAndMove(t *testing.T) {
	l := startLab(t)
	u := l.user(alice)
	inbox, _ := u.Mailbox("INBOX")
	date := mustTime(t, "2024-05-01T08:00:00Z")
	for _, s := range []string{"one", "two", "three"} {
		appendMessage(t, inbox, message(bob, alice, s, s), date, `\Flagged`)
	}
	if err := u.CreateMailbox("Archive"); err != nil {
		t.Fatal(err)
	}
	archive, _ := u.Mailbox("Archive")

	c := l.client(alice, alicePass, nil)
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	data, err := c.Copy(imap.SeqSetNum(1, 2), "Archive").Wait()
	if err != nil {
		t.Fatalf("COPY = %v", err)
	}
	src, _ := data.SourceUIDs.Nums()
	dst, _ := data.DestUIDs.Nums()
	if data.UIDValidity != archive.UIDValidity() || !slices.Equal(src, []imap.UID{1, 2}) || !slices.Equal(dst, []imap.UID{1, 2}) {
		t.Errorf("COPYUID = %d %v %v", data.UIDValidity, src, dst)
	}
	for _, m := range archive.Messages() {
		if !m.InternalDate.Equal(date) || !slices.Equal(m.Flags, []string{`\Flagged`}) {
			t.Errorf("copied message %d: date %v flags %v, want both kept", m.UID, m.InternalDate, m.Flags)
		}
	}
	_, err = c.Copy(imap.SeqSetNum(1), "Nope").Wait()
	wantNo(t, "COPY to a missing mailbox", err, imap.ResponseCodeTryCreate)

	r, _ := dialRaw(t, l.addr)
	r.expectOK("LOGIN alice@example.test alice-secret")
	r.expectOK("SELECT INBOX")
	got := r.expectOK("UID MOVE 2 Archive")
	want := []string{"* OK [COPYUID " + itoa(archive.UIDValidity()) + " 2 3] COPY completed", "* 2 EXPUNGE"}
	if !slices.Equal(got, want) {
		t.Errorf("UID MOVE = %q, want %q", got, want)
	}
	if _, done := r.cmd("MOVE 1 inbox"); !strings.HasPrefix(done, "NO [CANNOT]") {
		t.Errorf("MOVE to the selected mailbox = %q", done)
	}
	if uids := uidsOf(inbox); !slices.Equal(uids, []uint32{1, 3}) {
		t.Errorf("INBOX after MOVE holds %v, want [1 3]", uids)
	}
	if uids := uidsOf(archive); !slices.Equal(uids, []uint32{1, 2, 3}) {
		t.Errorf("Archive after MOVE holds %v, want [1 2 3]", uids)
	}
}

func uidsOf(mb *mailstore.Mailbox) []uint32 {
	var out []uint32
	for _, m := range mb.Messages() {
		out = append(out, m.UID)
	}
	return out
}

func TestUpdatesFromOthers(t *testing.T) {
	l := startLab(t)
	u := l.user(alice)
	inbox, _ := u.Mailbox("INBOX")
	appendMessage(t, inbox, message(bob, alice, "first", "x"), time.Time{})

	r, _ := dialRaw(t, l.addr)
	r.expectOK("LOGIN alice@example.test alice-secret")
	r.expectOK("SELECT INBOX")
	other := l.client(alice, alicePass, nil)
	if _, err := other.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}

	steps := []struct {
		name     string
		change   func()
		command  string
		untagged []string
	}{
		{"two SMTP deliveries", func() {
			l.deliver(alice, message(bob, alice, "second", "x"))
			l.deliver(alice, message(bob, alice, "third", "x"))
		}, "NOOP", []string{"* 3 EXISTS"}},
		{"flags set by another session", func() {
			if err := other.Noop().Wait(); err != nil { // learn of the deliveries
				t.Fatal(err)
			}
			if err := other.Store(imap.UIDSetNum(2), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagFlagged}, Silent: true}, nil).Close(); err != nil {
				t.Fatal(err)
			}
		}, "NOOP", []string{`* 2 FETCH (UID 2 FLAGS (\Flagged))`}},
		{"POP3 deletes a message", func() {
			if _, err := inbox.Expunge([]uint32{1}); err != nil {
				t.Fatal(err)
			}
		}, "CHECK", []string{"* 1 EXPUNGE"}},
		{"another session expunges, FETCH must not say EXPUNGE", func() {
			if err := other.Store(imap.UIDSetNum(3), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagDeleted}, Silent: true}, nil).Close(); err != nil {
				t.Fatal(err)
			}
			if err := other.Expunge().Close(); err != nil {
				t.Fatal(err)
			}
		}, "FETCH 1:* (UID)", nil},
		{"delivery while an expunge is pending", func() {
			l.deliver(alice, message(bob, alice, "fourth", "x"))
		}, "SEARCH ALL", nil},
		{"then NOOP tells everything", func() {}, "NOOP", nil},
	}
	for _, s := range steps {
		s.change()
		untagged, done := r.cmd(s.command)
		switch s.name {
		case "another session expunges, FETCH must not say EXPUNGE":
			// The expunged message is still message 2 to this client;
			// its data is gone (RFC 2180 §4.1.2).
			want := []string{"* 1 FETCH (UID 2)"}
			if !slices.Equal(untagged, want) || done != "NO [EXPUNGEISSUED] Some of the requested messages no longer exist" {
				t.Errorf("%s: %q %q, want %q and NO [EXPUNGEISSUED]", s.name, untagged, done, want)
			}
		case "delivery while an expunge is pending":
			// The new message is not searched before its EXISTS; the
			// flags of the doomed message 2 are not worth telling.
			want := []string{"* SEARCH 1", "* 3 EXISTS"}
			if !slices.Equal(untagged, want) {
				t.Errorf("%s: %q, want %q", s.name, untagged, want)
			}
		case "then NOOP tells everything":
			if want := []string{"* 2 EXPUNGE"}; !slices.Equal(untagged, want) {
				t.Errorf("%s: %q, want %q", s.name, untagged, want)
			}
		default:
			if !slices.Equal(untagged, s.untagged) || !strings.HasPrefix(done, "OK") {
				t.Errorf("%s: %s = %q %q, want %q", s.name, s.command, untagged, done, s.untagged)
			}
		}
	}
}

func TestSelectedMailboxDeleted(t *testing.T) {
	l := startLab(t)
	u := l.user(alice)
	u.CreateMailbox("Work")
	work, _ := u.Mailbox("Work")
	appendMessage(t, work, message(bob, alice, "a", "x"), time.Time{})
	appendMessage(t, work, message(bob, alice, "b", "x"), time.Time{})
	r, _ := dialRaw(t, l.addr)
	r.expectOK("LOGIN alice@example.test alice-secret")
	r.expectOK("SELECT Work")
	if err := u.DeleteMailbox("Work"); err != nil {
		t.Fatal(err)
	}
	if got, want := r.expectOK("NOOP"), []string{"* 2 EXPUNGE", "* 1 EXPUNGE"}; !slices.Equal(got, want) {
		t.Errorf("NOOP after the selected mailbox was deleted = %q, want %q", got, want)
	}
}

func TestIdle(t *testing.T) {
	l := startLab(t)
	inbox, _ := l.user(alice).Mailbox("INBOX")
	appendMessage(t, inbox, message(bob, alice, "first", "x"), time.Time{})

	exists := make(chan uint32, 10)
	expunged := make(chan uint32, 10)
	c := l.client(alice, alicePass, &imapclient.Options{UnilateralDataHandler: &imapclient.UnilateralDataHandler{
		Mailbox: func(d *imapclient.UnilateralDataMailbox) {
			if d.NumMessages != nil {
				exists <- *d.NumMessages
			}
		},
		Expunge: func(seq uint32) { expunged <- seq },
	}})
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	idle, err := c.Idle()
	if err != nil {
		t.Fatal(err)
	}
	waitFor := func(ch chan uint32, what string, want uint32) {
		t.Helper()
		select {
		case got := <-ch:
			if got != want {
				t.Errorf("%s = %d, want %d", what, got, want)
			}
		case <-time.After(ioTimeout):
			t.Fatalf("no %s during IDLE", what)
		}
	}
	l.deliver(alice, message(bob, alice, "second", "x"))
	waitFor(exists, "EXISTS", 2)
	if _, err := inbox.Expunge([]uint32{1}); err != nil {
		t.Fatal(err)
	}
	waitFor(expunged, "EXPUNGE", 1)
	if err := idle.Close(); err != nil {
		t.Fatal(err)
	}
	if err := idle.Wait(); err != nil {
		t.Fatalf("IDLE = %v", err)
	}
}

func TestIdleEdgeCases(t *testing.T) {
	l := startLab(t)
	r, _ := dialRaw(t, l.addr)
	r.expectOK("LOGIN alice@example.test alice-secret")

	// IDLE without a selected mailbox (RFC 2177 allows it in the
	// authenticated state): nothing to report, DONE ends it.
	r.send("i1 IDLE")
	if got := r.line(); got != "+ idling" {
		t.Fatalf("IDLE = %q", got)
	}
	r.send("DONE")
	if got := r.line(); got != "i1 OK IDLE completed" {
		t.Errorf("DONE = %q", got)
	}

	// Something else than DONE ends IDLE with BAD; the session goes on,
	// and updates are not lost.
	r.expectOK("SELECT INBOX")
	r.send("i2 IDLE")
	if got := r.line(); got != "+ idling" {
		t.Fatalf("IDLE = %q", got)
	}
	r.send("NOOP")
	if got := r.line(); !strings.HasPrefix(got, "i2 BAD") {
		t.Errorf("IDLE ended by NOOP = %q, want BAD", got)
	}
	l.deliver(alice, message(bob, alice, "after idle", "x"))
	if got := r.expectOK("NOOP"); !slices.Equal(got, []string{"* 1 EXISTS"}) {
		t.Errorf("NOOP after a broken IDLE = %q, want * 1 EXISTS", got)
	}
}

// TestConcurrentChanges checks that the client's numbering stays exact
// while deliveries, expunges and flag changes race with IDLE: replaying
// the EXISTS and EXPUNGE responses must give the store's UIDs.
func TestConcurrentChanges(t *testing.T) {
	l := startLab(t)
	inbox, _ := l.user(alice).Mailbox("INBOX")
	for i := range 10 {
		appendMessage(t, inbox, message(bob, alice, "seed "+itoa(uint32(i)), "x"), time.Time{})
	}
	r, _ := dialRaw(t, l.addr)
	r.expectOK("LOGIN alice@example.test alice-secret")
	r.expectOK("SELECT INBOX")
	r.send("i1 IDLE")
	if got := r.line(); got != "+ idling" {
		t.Fatalf("IDLE = %q", got)
	}

	// The client's model: UIDs by sequence number; new messages get
	// their UIDs by FETCH after EXISTS, so only the count is tracked
	// here and checked against the store at the end.
	count := 10
	apply := func(lines []string) {
		t.Helper()
		for _, line := range lines {
			var n int
			switch {
			case scan(line, "* %d EXISTS", &n):
				if n < count {
					t.Errorf("EXISTS %d shrinks the mailbox from %d", n, count)
				}
				count = n
			case scan(line, "* %d EXPUNGE", &n):
				if n < 1 || n > count {
					t.Errorf("EXPUNGE %d outside 1..%d", n, count)
				}
				count--
			}
		}
	}

	var wg sync.WaitGroup
	for w := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				switch w {
				case 0:
					if err := l.store.Deliver(alice, []byte(message(bob, alice, "race", "x"))); err != nil {
						t.Error(err)
					}
				case 1:
					msgs := inbox.Messages()
					if len(msgs) > 0 {
						inbox.Expunge([]uint32{msgs[(i*7)%len(msgs)].UID})
					}
				case 2:
					msgs := inbox.Messages()
					if len(msgs) > 0 {
						inbox.StoreFlags([]uint32{msgs[(i*3)%len(msgs)].UID}, mailstore.FlagsAdd, []string{`\Flagged`})
					}
				}
			}
		}()
	}
	wg.Wait()
	r.send("DONE")
	var lines []string
	for {
		line := r.line()
		if line == "i1 OK IDLE completed" {
			break
		}
		lines = append(lines, line)
	}
	lines = append(lines, r.expectOK("NOOP")...)
	apply(lines)

	want := uidsOf(inbox)
	if count != len(want) {
		t.Fatalf("client counts %d messages, store holds %d", count, len(want))
	}
	var got []uint32
	for _, line := range r.expectOK("FETCH 1:* (UID)") {
		var seq, uid int
		if scan(line, "* %d FETCH (UID %d)", &seq, &uid) {
			if seq != len(got)+1 {
				t.Errorf("FETCH response for %d, want %d", seq, len(got)+1)
			}
			got = append(got, uint32(uid))
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("client view UIDs %v, store %v", got, want)
	}
}

// scan is fmt.Sscanf that must consume the whole line.
func scan(line, format string, args ...any) bool {
	n, err := fmt.Sscanf(line+"\n", format+"\n", args...)
	return err == nil && n == len(args)
}

func TestMaildirStore(t *testing.T) {
	dir := t.TempDir()
	l := startLab(t)
	st, err := mailstore.Open(mailstore.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.AddUser(alice, alice, alicePass); err != nil {
		t.Fatal(err)
	}
	// A second server over the Maildir store, on its own port.
	srv := New(Config{Store: st, Auth: &auth.Store{Store: st}, AllowInsecureAuth: true, Logger: slog.New(l.log)})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Close()

	r, _ := dialRaw(t, ln.Addr().String())
	r.expectOK("LOGIN alice@example.test alice-secret")
	r.expectOK("CREATE Archive")
	for _, s := range []string{"one", "two"} {
		msg := message(bob, alice, s, s)
		r.expectOK("APPEND INBOX (\\Flagged) {" + itoa(uint32(len(msg))) + "+}\r\n" + msg)
	}
	r.expectOK("SELECT INBOX")
	r.expectOK(`STORE 1 +FLAGS.SILENT (\Seen $Keyword)`)
	r.expectOK("COPY 1 Archive")
	r.expectOK(`STORE 2 +FLAGS.SILENT (\Deleted)`)
	if got := r.expectOK("EXPUNGE"); !slices.Equal(got, []string{"* 2 EXPUNGE"}) {
		t.Errorf("EXPUNGE = %q", got)
	}
	if got := r.expectOK("FETCH 1 (UID FLAGS)"); !slices.Equal(got, []string{`* 1 FETCH (UID 1 FLAGS ($Keyword \Flagged \Seen))`}) {
		t.Errorf("FETCH = %q", got)
	}
	r.expectOK("LOGOUT")

	// A restarted lab finds the same mail.
	srv.Close()
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := mailstore.Open(mailstore.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	u, err := again.AddUser(alice, alice, alicePass)
	if err != nil {
		t.Fatal(err)
	}
	archive, err := u.Mailbox("Archive")
	if err != nil {
		t.Fatal(err)
	}
	if msgs := archive.Messages(); len(msgs) != 1 || !slices.Equal(msgs[0].Flags, []string{"$Keyword", `\Flagged`, `\Seen`}) {
		t.Errorf("Archive after reopening = %+v", msgs)
	}
}

func TestUnselect(t *testing.T) {
	l := startLab(t)
	inbox, _ := l.user(alice).Mailbox("INBOX")
	appendMessage(t, inbox, message(bob, alice, "keep", "x"), time.Time{}, `\Deleted`)
	r, _ := dialRaw(t, l.addr)
	r.expectOK("LOGIN alice@example.test alice-secret")
	r.expectOK("SELECT INBOX")
	r.expectOK("UNSELECT") // RFC 3691: no expunge
	if n := inbox.Status().Messages; n != 1 {
		t.Errorf("UNSELECT expunged: %d messages left, want 1", n)
	}
	if _, done := r.cmd("FETCH 1 FLAGS"); !strings.HasPrefix(done, "BAD") {
		t.Errorf("FETCH after UNSELECT = %q, want BAD", done)
	}
	l.deliver(alice, message(bob, alice, "new", "x"))
	if got := r.expectOK("NOOP"); len(got) != 0 {
		t.Errorf("NOOP without a selected mailbox = %q, want nothing", got)
	}
}
