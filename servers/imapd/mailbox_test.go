package imapd

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"

	"github.com/maillab/maillab/servers/mailstore"
)

// wantNo checks that err is a NO reply with code.
func wantNo(t *testing.T, what string, err error, code imap.ResponseCode) {
	t.Helper()
	var ie *imap.Error
	if !errors.As(err, &ie) || ie.Type != imap.StatusResponseTypeNo || ie.Code != code {
		t.Errorf("%s = %v, want NO [%s]", what, err, code)
	}
}

func TestMailboxCommands(t *testing.T) {
	l := startLab(t)
	r, _ := dialRaw(t, l.addr)
	r.expectOK("LOGIN alice@example.test alice-secret")

	steps := []struct {
		command string
		want    string // completion without tag
	}{
		{"CREATE Archive/2024/", "OK CREATE completed"}, // trailing delimiter ignored, parents created
		{"CREATE Archive", "NO [ALREADYEXISTS] Mailbox already exists"},
		{"CREATE inbox", "NO [ALREADYEXISTS] Mailbox already exists"},
		{"CREATE Sent", "OK CREATE completed"},
		{`CREATE "bad//name"`, "NO [CANNOT] Invalid mailbox name"},
		{"DELETE Nope", "NO [NONEXISTENT] Mailbox does not exist"},
		{"DELETE INBOX", "NO [CANNOT] INBOX cannot be deleted"},
		{"RENAME Nope Other", "NO [NONEXISTENT] Mailbox does not exist"},
		{"RENAME Sent Archive", "NO [ALREADYEXISTS] Mailbox already exists"},
		{"RENAME Archive Archive/sub", "NO [CANNOT] Cannot move a mailbox below itself"},
		{"SELECT Nope", "NO [NONEXISTENT] Mailbox does not exist"},
		{"STATUS Nope (MESSAGES)", "NO [NONEXISTENT] Mailbox does not exist"},
		{"SUBSCRIBE Nope", "NO [NONEXISTENT] Mailbox does not exist"},
		{"SUBSCRIBE Sent", "OK SUBSCRIBE completed"},
		{"UNSUBSCRIBE Archive", "NO [NONEXISTENT] Mailbox is not subscribed"},
		{"APPEND Nope {1+}\r\nx", "NO [TRYCREATE] Mailbox does not exist"},
	}
	for _, s := range steps {
		if _, done := r.cmd(s.command); done != s.want {
			t.Errorf("%s: got %q, want %q", s.command, done, s.want)
		}
	}

	list := func(command string) []string {
		t.Helper()
		return r.expectOK(command) // INBOX first, then by name
	}
	if got, want := list(`LIST "" "*"`), []string{
		`* LIST (\HasNoChildren) "/" INBOX`,
		`* LIST (\HasChildren) "/" "Archive"`,
		`* LIST (\HasNoChildren) "/" "Archive/2024"`,
		`* LIST (\HasNoChildren) "/" "Sent"`,
	}; !slices.Equal(got, want) {
		t.Errorf("LIST * =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if got, want := list(`LIST "" "%"`), []string{
		`* LIST (\HasNoChildren) "/" INBOX`,
		`* LIST (\HasChildren) "/" "Archive"`,
		`* LIST (\HasNoChildren) "/" "Sent"`,
	}; !slices.Equal(got, want) {
		t.Errorf("LIST %% = %q, want %q", got, want)
	}
	if got, want := list(`LIST "" ""`), []string{`* LIST (\Noselect) "/" ""`}; !slices.Equal(got, want) {
		t.Errorf(`LIST "" "" = %q, want %q`, got, want)
	}
	if got, want := list(`LIST "" "inbox"`), []string{`* LIST (\HasNoChildren) "/" INBOX`}; !slices.Equal(got, want) {
		t.Errorf(`LIST "" inbox = %q, want %q`, got, want)
	}
	if got, want := list(`LIST "Archive/" "%"`), []string{`* LIST (\HasNoChildren) "/" "Archive/2024"`}; !slices.Equal(got, want) {
		t.Errorf(`LIST Archive/ %% = %q, want %q`, got, want)
	}

	// Deleting a parent keeps its children; the parent becomes \Noselect
	// (RFC 3501 §6.3.4), and deleting it again is refused.
	r.expectOK("DELETE Archive")
	if got, want := list(`LIST "" "Archive*"`), []string{
		`* LIST (\Noselect \HasChildren) "/" "Archive"`,
		`* LIST (\HasNoChildren) "/" "Archive/2024"`,
	}; !slices.Equal(got, want) {
		t.Errorf("LIST after DELETE parent = %q, want %q", got, want)
	}
	if _, done := r.cmd("DELETE Archive"); !strings.HasPrefix(done, "NO [HASCHILDREN]") {
		t.Errorf("DELETE of a \\Noselect parent = %q, want NO [HASCHILDREN]", done)
	}

	// RENAME moves inferior names along (RFC 3501 §6.3.5).
	r.expectOK("CREATE Projects/a/b")
	r.expectOK("RENAME Projects Work")
	if got, want := list(`LIST "" "Work*"`), []string{
		`* LIST (\HasChildren) "/" "Work"`,
		`* LIST (\HasChildren) "/" "Work/a"`,
		`* LIST (\HasNoChildren) "/" "Work/a/b"`,
	}; !slices.Equal(got, want) {
		t.Errorf("LIST after RENAME = %q, want %q", got, want)
	}

	// LSUB lists subscribed mailboxes; INBOX always is.
	r.expectOK("SUBSCRIBE Work/a/b")
	if got, want := list(`LSUB "" "*"`), []string{
		`* LSUB (\HasNoChildren) "/" INBOX`,
		`* LSUB (\HasNoChildren) "/" "Sent"`,
		`* LSUB (\HasNoChildren) "/" "Work/a/b"`,
	}; !slices.Equal(got, want) {
		t.Errorf("LSUB * = %q, want %q", got, want)
	}
	if got, want := list(`LSUB "" "Work/%"`), []string{`* LSUB (\Noselect \HasChildren) "/" "Work/a"`}; !slices.Equal(got, want) {
		t.Errorf("LSUB Work/%% = %q, want %q (RFC 3501 §6.3.9)", got, want)
	}
	r.expectOK("UNSUBSCRIBE Sent")
	if got := list(`LSUB "" "Sent"`); len(got) != 0 {
		t.Errorf("LSUB Sent after UNSUBSCRIBE = %q", got)
	}

	if got := r.expectOK("NAMESPACE"); !slices.Equal(got, []string{`* NAMESPACE (("" "/")) NIL NIL`}) {
		t.Errorf("NAMESPACE = %q", got)
	}
}

func TestStatus(t *testing.T) {
	l := startLab(t)
	l.deliver(alice, message(bob, alice, "one", "first"))
	l.deliver(alice, message(bob, alice, "two", "second"))
	inbox, _ := l.user(alice).Mailbox("INBOX")
	if _, err := inbox.StoreFlags([]uint32{1}, mailstore.FlagsAdd, []string{`\Seen`, `\Deleted`}); err != nil {
		t.Fatal(err)
	}
	st := inbox.Status()

	r, _ := dialRaw(t, l.addr)
	r.expectOK("LOGIN alice@example.test alice-secret")
	got := r.expectOK("STATUS inbox (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN DELETED SIZE DELETED-STORAGE)")
	msgs := inbox.Messages()
	want := "* STATUS INBOX (MESSAGES 2 UIDNEXT 3 UIDVALIDITY " + itoa(st.UIDValidity) + " UNSEEN 1 DELETED 1 SIZE " +
		itoa64(msgs[0].Size()+msgs[1].Size()) + " DELETED-STORAGE " + itoa64(msgs[0].Size()) + " RECENT 0)"
	if len(got) != 1 || got[0] != want {
		t.Errorf("STATUS = %q\nwant %q", got, want)
	}
}

func TestAppend(t *testing.T) {
	l := startLab(t)
	c := l.client(alice, alicePass, nil)
	msg := message(alice, alice, "draft", "hello")
	date := mustTime(t, "2024-03-01T10:00:00+01:00")
	cmd := c.Append("INBOX", int64(len(msg)), &imap.AppendOptions{Flags: []imap.Flag{imap.FlagDraft, "$Label1", `\Recent`}, Time: date})
	if _, err := cmd.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := cmd.Wait()
	if err != nil {
		t.Fatalf("APPEND = %v", err)
	}
	inbox, _ := l.user(alice).Mailbox("INBOX")
	if data.UID != 1 || data.UIDValidity != inbox.UIDValidity() {
		t.Errorf("APPENDUID = %+v, want UID 1 UIDVALIDITY %d", data, inbox.UIDValidity())
	}
	m, err := inbox.Message(1)
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Data) != msg || !m.InternalDate.Equal(date) || !slices.Equal(m.Flags, []string{"$Label1", `\Draft`}) {
		t.Errorf("stored message = %q %v %q", m.Data, m.InternalDate, m.Flags)
	}
}

func TestQuota(t *testing.T) {
	l := startLab(t)
	l.deliver(alice, message(bob, alice, "big", strings.Repeat("x", 300)))
	u := l.user(alice)
	_, used := u.Quota()
	u.SetQuota(used + 50)

	r, _ := dialRaw(t, l.addr)
	r.expectOK("LOGIN alice@example.test alice-secret")
	r.expectOK("CREATE Saved")
	if _, done := r.cmd("APPEND INBOX {100+}\r\n" + strings.Repeat("y", 100)); done != "NO [OVERQUOTA] Quota exceeded (mailbox for user is full)" {
		t.Errorf("APPEND over quota = %q", done)
	}
	r.expectOK("SELECT INBOX")
	if _, done := r.cmd("COPY 1 Saved"); done != "NO [OVERQUOTA] Quota exceeded (mailbox for user is full)" {
		t.Errorf("COPY over quota = %q", done)
	}
	saved, _ := u.Mailbox("Saved")
	if n := saved.Status().Messages; n != 0 {
		t.Errorf("Saved holds %d messages after a refused COPY", n)
	}
	if _, done := r.cmd("APPEND INBOX {10+}\r\n0123456789"); !strings.HasPrefix(done, "OK [APPENDUID ") {
		t.Errorf("APPEND under quota = %q", done)
	}
}
