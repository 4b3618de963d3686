package mailstore_test

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/maillab/maillab/servers/mailstore"
)

// clock is a settable Options.Now.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

var epoch = time.Date(2024, 3, 1, 9, 30, 0, 0, time.UTC)

// openMemory returns an in-memory store with a fixed clock.
func openMemory(t *testing.T) (*mailstore.Store, *clock) {
	t.Helper()
	c := &clock{t: epoch}
	s, err := mailstore.Open(mailstore.Options{Now: c.now})
	if err != nil {
		t.Fatalf("Open() = %v", err)
	}
	return s, c
}

func addUser(t *testing.T, s *mailstore.Store, email, username string) *mailstore.User {
	t.Helper()
	u, err := s.AddUser(email, username, "secret")
	if err != nil {
		t.Fatalf("AddUser(%s, %s) = %v", email, username, err)
	}
	return u
}

func mailbox(t *testing.T, u *mailstore.User, name string) *mailstore.Mailbox {
	t.Helper()
	mb, err := u.Mailbox(name)
	if err != nil {
		t.Fatalf("Mailbox(%s) = %v", name, err)
	}
	return mb
}

func appendMsg(t *testing.T, mb *mailstore.Mailbox, body string, flags ...string) uint32 {
	t.Helper()
	uid, err := mb.Append([]byte(body), flags, time.Time{})
	if err != nil {
		t.Fatalf("Append(%q) = %v", body, err)
	}
	return uid
}

func uids(msgs []mailstore.Message) []uint32 {
	out := []uint32{}
	for _, m := range msgs {
		out = append(out, m.UID)
	}
	return out
}

func bodies(msgs []mailstore.Message) []string {
	out := []string{}
	for _, m := range msgs {
		out = append(out, string(m.Data))
	}
	return out
}

func TestAddUserAndLookup(t *testing.T) {
	s, _ := openMemory(t)
	alice := addUser(t, s, "Alice@Example.test", "Alice")
	addUser(t, s, "bob@example.test", "bob")

	if _, err := s.AddUser("other@example.test", "ALICE", "x"); err == nil {
		t.Errorf("AddUser(ALICE) with Alice present = nil, want an error (user names are case-insensitive)")
	}
	for _, tt := range []struct{ email, user string }{{"", "carol"}, {"carol@example.test", ""}} {
		if _, err := s.AddUser(tt.email, tt.user, "x"); err == nil {
			t.Errorf("AddUser(%q, %q) = nil, want an error", tt.email, tt.user)
		}
	}

	lookups := []struct {
		name    string
		byAddr  bool
		key     string
		want    *mailstore.User
		wantErr error
	}{
		{"user exact", false, "Alice", alice, nil},
		{"user other case", false, "aLiCe", alice, nil},
		{"user unknown", false, "carol", nil, mailstore.ErrNoSuchUser},
		{"user by email is not a user name", false, "Alice@Example.test", nil, mailstore.ErrNoSuchUser},
		{"address exact", true, "Alice@Example.test", alice, nil},
		{"address other case", true, "alice@EXAMPLE.TEST", alice, nil},
		{"address in angle brackets", true, "<alice@example.test>", alice, nil},
		{"address unknown", true, "carol@example.test", nil, mailstore.ErrNoSuchUser},
	}
	for _, tt := range lookups {
		t.Run(tt.name, func(t *testing.T) {
			var got *mailstore.User
			var err error
			if tt.byAddr {
				got, err = s.UserByAddress(tt.key)
			} else {
				got, err = s.User(tt.key)
			}
			if got != tt.want || !errors.Is(err, tt.wantErr) {
				t.Errorf("lookup(%q) = %v, %v, want %v, %v", tt.key, got, err, tt.want, tt.wantErr)
			}
		})
	}

	var names []string
	for _, u := range s.Users() {
		names = append(names, u.Username)
	}
	if want := []string{"Alice", "bob"}; !reflect.DeepEqual(names, want) {
		t.Errorf("Users() = %v, want %v", names, want)
	}
	if got := alice.Mailboxes(); !reflect.DeepEqual(got, []string{mailstore.Inbox}) {
		t.Errorf("Mailboxes() of a new user = %v, want [INBOX]", got)
	}
	if s.Dir() != "" {
		t.Errorf("Dir() of an in-memory store = %q, want empty", s.Dir())
	}
}

func TestDeliver(t *testing.T) {
	s, _ := openMemory(t)
	u := addUser(t, s, "alice@example.test", "alice")
	u.SetQuota(10)
	tests := []struct {
		name    string
		rcpt    string
		msg     string
		wantErr error
	}{
		{"to the address", "alice@example.test", "hello", nil},
		{"address in other case", "<ALICE@example.test>", "again", nil},
		{"unknown recipient", "bob@example.test", "x", mailstore.ErrNoSuchUser},
		{"over quota", "alice@example.test", "too much", mailstore.ErrOverQuota},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.Deliver(tt.rcpt, []byte(tt.msg))
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("Deliver(%s, %q) = %v, want %v", tt.rcpt, tt.msg, err, tt.wantErr)
			}
		})
	}
	if got, want := bodies(mailbox(t, u, "inbox").Messages()), []string{"hello", "again"}; !reflect.DeepEqual(got, want) {
		t.Errorf("INBOX after Deliver = %q, want %q", got, want)
	}
}

func TestAppend(t *testing.T) {
	s, clk := openMemory(t)
	u := addUser(t, s, "alice@example.test", "alice")
	mb := mailbox(t, u, mailstore.Inbox)
	date := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)

	tests := []struct {
		name      string
		data      string
		flags     []string
		date      time.Time
		wantUID   uint32
		wantFlags []string
		wantDate  time.Time
	}{
		{"no flags, date now", "one", nil, time.Time{}, 1, []string{}, epoch},
		{"given date kept", "two", nil, date, 2, []string{}, date},
		{"system flags spelled canonically", "three", []string{`\SEEN`, `\flagged`}, date, 3, []string{`\Flagged`, `\Seen`}, date},
		{"duplicates removed", "four", []string{`\Seen`, `\seen`, "$Label1", "$label1"}, date, 4, []string{"$Label1", `\Seen`}, date},
		{`\Recent cannot be stored`, "five", []string{`\Recent`, "Junk"}, date, 5, []string{"Junk"}, date},
		{"empty flag ignored", "six", []string{""}, date, 6, []string{}, date},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			uid, err := mb.Append([]byte(tt.data), tt.flags, tt.date)
			if err != nil || uid != tt.wantUID {
				t.Fatalf("Append(%q, %q) = %d, %v, want %d", tt.data, tt.flags, uid, err, tt.wantUID)
			}
			m, err := mb.Message(uid)
			if err != nil {
				t.Fatalf("Message(%d) = %v", uid, err)
			}
			if string(m.Data) != tt.data || m.Size() != int64(len(tt.data)) {
				t.Errorf("Message(%d) data = %q (size %d), want %q", uid, m.Data, m.Size(), tt.data)
			}
			if !slices.Equal(m.Flags, tt.wantFlags) {
				t.Errorf("Message(%d).Flags = %q, want %q", uid, m.Flags, tt.wantFlags)
			}
			if !m.InternalDate.Equal(tt.wantDate) {
				t.Errorf("Message(%d).InternalDate = %v, want %v", uid, m.InternalDate, tt.wantDate)
			}
		})
	}

	// The store keeps its own copy of the data and of the flags.
	data := []byte("original")
	flags := []string{"$A"}
	uid, err := mb.Append(data, flags, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	data[0] = 'X'
	flags[0] = "$B"
	got, _ := mb.Message(uid)
	if string(got.Data) != "original" || !slices.Equal(got.Flags, []string{"$A"}) {
		t.Errorf("Message(%d) after the caller changed its slices = %q %q, want original [$A]", uid, got.Data, got.Flags)
	}
	got.Flags[0] = "$C"
	if again, _ := mb.Message(uid); again.Flags[0] != "$A" {
		t.Errorf("changing the Flags of a snapshot changed the store: %q", again.Flags)
	}

	if _, err := mb.Message(99); !errors.Is(err, mailstore.ErrNoSuchMessage) {
		t.Errorf("Message(99) = %v, want ErrNoSuchMessage", err)
	}
	clk.t = clk.t.Add(time.Hour)
	if uid := appendMsg(t, mb, "later"); uid != 8 {
		t.Errorf("Append after 7 messages = UID %d, want 8", uid)
	}
}

func TestStoreFlags(t *testing.T) {
	tests := []struct {
		name    string
		initial []string
		op      mailstore.FlagOp
		flags   []string
		want    []string
		event   bool
	}{
		{"set replaces", []string{`\Seen`, "$A"}, mailstore.FlagsSet, []string{`\flagged`}, []string{`\Flagged`}, true},
		{"set to nothing", []string{`\Seen`}, mailstore.FlagsSet, nil, []string{}, true},
		{"add merges", []string{`\Seen`}, mailstore.FlagsAdd, []string{`\Answered`, `\seen`}, []string{`\Answered`, `\Seen`}, true},
		{"add present flag is no change", []string{`\Seen`}, mailstore.FlagsAdd, []string{`\SEEN`}, []string{`\Seen`}, false},
		{"remove ignores case", []string{`\Seen`, `\Deleted`, "$Work"}, mailstore.FlagsRemove, []string{`\deleted`, "$work"}, []string{`\Seen`}, true},
		{"remove absent flag is no change", []string{`\Seen`}, mailstore.FlagsRemove, []string{`\Draft`}, []string{`\Seen`}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := openMemory(t)
			mb := mailbox(t, addUser(t, s, "a@example.test", "a"), mailstore.Inbox)
			appendMsg(t, mb, "first")
			uid := appendMsg(t, mb, "second", tt.initial...)
			var events []mailstore.Event
			defer mb.Watch(func(ev mailstore.Event) { events = append(events, ev) })()

			got, err := mb.StoreFlags([]uint32{uid, 77}, tt.op, tt.flags)
			if err != nil {
				t.Fatalf("StoreFlags = %v", err)
			}
			if want := map[uint32][]string{uid: tt.want}; !reflect.DeepEqual(got, want) {
				t.Errorf("StoreFlags(%d, %v, %q) = %v, want %v (unknown UID 77 ignored)", uid, tt.op, tt.flags, got, want)
			}
			if m, _ := mb.Message(uid); !slices.Equal(m.Flags, tt.want) {
				t.Errorf("Message(%d).Flags = %q, want %q", uid, m.Flags, tt.want)
			}
			var want []mailstore.Event
			if tt.event {
				want = []mailstore.Event{{Kind: mailstore.EventFlags, UID: uid, SeqNum: 2, NumMessages: 2, Flags: tt.want}}
			}
			if !reflect.DeepEqual(events, want) {
				t.Errorf("events = %+v, want %+v", events, want)
			}
		})
	}
}

func TestExpunge(t *testing.T) {
	tests := []struct {
		name        string
		expunge     []uint32
		wantRemoved []uint32
		wantLeft    []uint32
	}{
		{"some", []uint32{3, 1}, []uint32{1, 3}, []uint32{2, 4}},
		{"duplicates and unknown", []uint32{2, 2, 9}, []uint32{2}, []uint32{1, 3, 4}},
		{"none", nil, nil, []uint32{1, 2, 3, 4}},
		{"all", []uint32{4, 3, 2, 1}, []uint32{1, 2, 3, 4}, []uint32{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := openMemory(t)
			mb := mailbox(t, addUser(t, s, "a@example.test", "a"), mailstore.Inbox)
			for i := range 4 {
				appendMsg(t, mb, fmt.Sprint("m", i+1))
			}
			removed, err := mb.Expunge(tt.expunge)
			if err != nil || !slices.Equal(removed, tt.wantRemoved) {
				t.Errorf("Expunge(%v) = %v, %v, want %v", tt.expunge, removed, err, tt.wantRemoved)
			}
			if got := uids(mb.Messages()); !slices.Equal(got, tt.wantLeft) {
				t.Errorf("UIDs after Expunge(%v) = %v, want %v", tt.expunge, got, tt.wantLeft)
			}
			// UIDs are never reused (RFC 3501 §2.3.1.1).
			if uid := appendMsg(t, mb, "next"); uid != 5 {
				t.Errorf("Append after Expunge = UID %d, want 5", uid)
			}
		})
	}
}

func TestStatus(t *testing.T) {
	s, _ := openMemory(t)
	mb := mailbox(t, addUser(t, s, "a@example.test", "a"), mailstore.Inbox)
	if got, want := mb.Status(), (mailstore.Status{UIDNext: 1, UIDValidity: uint32(epoch.Unix())}); got != want {
		t.Errorf("Status() of an empty mailbox = %+v, want %+v", got, want)
	}
	appendMsg(t, mb, "12345", `\Seen`)
	appendMsg(t, mb, "123", `\Deleted`)
	appendMsg(t, mb, "1", `\Seen`, `\Deleted`)
	appendMsg(t, mb, "12")
	want := mailstore.Status{Messages: 4, Unseen: 2, UIDNext: 5, UIDValidity: uint32(epoch.Unix()), Size: 11, Deleted: 2, FirstUnseen: 2}
	if got := mb.Status(); got != want {
		t.Errorf("Status() = %+v, want %+v", got, want)
	}
	if got := mb.UIDValidity(); got != want.UIDValidity {
		t.Errorf("UIDValidity() = %d, want %d", got, want.UIDValidity)
	}
}

func TestMailboxes(t *testing.T) {
	s, _ := openMemory(t)
	u := addUser(t, s, "a@example.test", "a")
	for _, name := range []string{"Sent", "Archive/2024", "Archive", "Drafts", "Ünicode Ordner"} {
		if err := u.CreateMailbox(name); err != nil {
			t.Fatalf("CreateMailbox(%q) = %v", name, err)
		}
	}
	want := []string{mailstore.Inbox, "Archive", "Archive/2024", "Drafts", "Sent", "Ünicode Ordner"}
	if got := u.Mailboxes(); !slices.Equal(got, want) {
		t.Errorf("Mailboxes() = %q, want %q", got, want)
	}

	tests := []struct {
		name    string
		do      func() error
		wantErr error
	}{
		{"create existing", func() error { return u.CreateMailbox("Sent") }, mailstore.ErrMailboxExists},
		{"create inbox in other case", func() error { return u.CreateMailbox("InBox") }, mailstore.ErrMailboxExists},
		{"create empty name", func() error { return u.CreateMailbox("") }, mailstore.ErrInvalidName},
		{"create leading slash", func() error { return u.CreateMailbox("/x") }, mailstore.ErrInvalidName},
		{"create trailing slash", func() error { return u.CreateMailbox("x/") }, mailstore.ErrInvalidName},
		{"create double slash", func() error { return u.CreateMailbox("a//b") }, mailstore.ErrInvalidName},
		{"create dot dot", func() error { return u.CreateMailbox("a/../b") }, mailstore.ErrInvalidName},
		{"create with newline", func() error { return u.CreateMailbox("a\r\nb") }, mailstore.ErrInvalidName},
		{"create with NUL", func() error { return u.CreateMailbox("a\x00b") }, mailstore.ErrInvalidName},
		{"delete INBOX", func() error { return u.DeleteMailbox("inbox") }, mailstore.ErrInvalidName},
		{"delete unknown", func() error { return u.DeleteMailbox("Nope") }, mailstore.ErrNoSuchMailbox},
		{"open unknown", func() error { _, err := u.Mailbox("Nope"); return err }, mailstore.ErrNoSuchMailbox},
		{"mailbox names are case-sensitive", func() error { _, err := u.Mailbox("sent"); return err }, mailstore.ErrNoSuchMailbox},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.do(); !errors.Is(err, tt.wantErr) {
				t.Errorf("%s = %v, want %v", tt.name, err, tt.wantErr)
			}
		})
	}

	drafts := mailbox(t, u, "Drafts")
	appendMsg(t, drafts, "draft")
	var events []mailstore.Event
	drafts.Watch(func(ev mailstore.Event) { events = append(events, ev) })
	if err := u.DeleteMailbox("Drafts"); err != nil {
		t.Fatalf("DeleteMailbox(Drafts) = %v", err)
	}
	if want := []mailstore.Event{{Kind: mailstore.EventDeleted, NumMessages: 1}}; !reflect.DeepEqual(events, want) {
		t.Errorf("events of DeleteMailbox = %+v, want %+v", events, want)
	}
	if _, err := drafts.Append([]byte("x"), nil, time.Time{}); !errors.Is(err, mailstore.ErrNoSuchMailbox) {
		t.Errorf("Append to a deleted mailbox = %v, want ErrNoSuchMailbox", err)
	}
	if _, err := u.Mailbox("Drafts"); !errors.Is(err, mailstore.ErrNoSuchMailbox) {
		t.Errorf("Mailbox(Drafts) after delete = %v, want ErrNoSuchMailbox", err)
	}
}

func TestRenameMailbox(t *testing.T) {
	s, _ := openMemory(t)
	u := addUser(t, s, "a@example.test", "a")
	for _, name := range []string{"Work", "Private"} {
		if err := u.CreateMailbox(name); err != nil {
			t.Fatal(err)
		}
	}
	work := mailbox(t, u, "Work")
	appendMsg(t, work, "w1")
	u.SetSubscribed("Work", true)

	errs := []struct {
		name     string
		from, to string
		wantErr  error
	}{
		{"unknown source", "Nope", "X", mailstore.ErrNoSuchMailbox},
		{"existing target", "Work", "Private", mailstore.ErrMailboxExists},
		{"onto INBOX", "Work", "inbox", mailstore.ErrMailboxExists},
		{"invalid target", "Work", "a//b", mailstore.ErrInvalidName},
	}
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) {
			if err := u.RenameMailbox(tt.from, tt.to); !errors.Is(err, tt.wantErr) {
				t.Errorf("RenameMailbox(%q, %q) = %v, want %v", tt.from, tt.to, err, tt.wantErr)
			}
		})
	}

	if err := u.RenameMailbox("Work", "Projects"); err != nil {
		t.Fatalf("RenameMailbox(Work, Projects) = %v", err)
	}
	if got, want := u.Mailboxes(), []string{mailstore.Inbox, "Private", "Projects"}; !slices.Equal(got, want) {
		t.Errorf("Mailboxes() after rename = %q, want %q", got, want)
	}
	projects := mailbox(t, u, "Projects")
	if projects != work || projects.Name() != "Projects" {
		t.Errorf("renamed mailbox = %p %q, want the same mailbox %p named Projects", projects, projects.Name(), work)
	}
	if got := bodies(projects.Messages()); !slices.Equal(got, []string{"w1"}) {
		t.Errorf("messages of the renamed mailbox = %q, want [w1]", got)
	}
	if !u.Subscribed("Projects") || u.Subscribed("Work") {
		t.Errorf("Subscribed(Projects, Work) = %v, %v, want true, false (the subscription follows the rename)", u.Subscribed("Projects"), u.Subscribed("Work"))
	}
}

// RFC 3501 §6.3.5: renaming INBOX moves all its messages to a new mailbox
// and leaves INBOX empty; UIDs in INBOX keep growing.
func TestRenameInbox(t *testing.T) {
	s, _ := openMemory(t)
	u := addUser(t, s, "a@example.test", "a")
	inbox := mailbox(t, u, mailstore.Inbox)
	appendMsg(t, inbox, "one", `\Seen`)
	appendMsg(t, inbox, "two", "$Important")
	var events []mailstore.Event
	inbox.Watch(func(ev mailstore.Event) { events = append(events, ev) })

	if err := u.RenameMailbox("inbox", "Old Mail"); err != nil {
		t.Fatalf("RenameMailbox(inbox, Old Mail) = %v", err)
	}
	old := mailbox(t, u, "Old Mail")
	msgs := old.Messages()
	if got := bodies(msgs); !slices.Equal(got, []string{"one", "two"}) {
		t.Fatalf("Old Mail = %q, want [one two]", got)
	}
	if !slices.Equal(msgs[0].Flags, []string{`\Seen`}) || !slices.Equal(msgs[1].Flags, []string{"$Important"}) {
		t.Errorf("flags in Old Mail = %q, %q, want [\\Seen], [$Important]", msgs[0].Flags, msgs[1].Flags)
	}
	if got := uids(msgs); !slices.Equal(got, []uint32{1, 2}) {
		t.Errorf("UIDs in Old Mail = %v, want [1 2]", got)
	}
	if n := len(inbox.Messages()); n != 0 {
		t.Errorf("INBOX after rename has %d messages, want 0", n)
	}
	if got := mailbox(t, u, mailstore.Inbox); got != inbox {
		t.Errorf("INBOX after rename is a new mailbox; want the same one")
	}
	want := []mailstore.Event{
		{Kind: mailstore.EventExpunged, UID: 2, SeqNum: 2, NumMessages: 1},
		{Kind: mailstore.EventExpunged, UID: 1, SeqNum: 1, NumMessages: 0},
	}
	if !reflect.DeepEqual(events, want) {
		t.Errorf("INBOX events of the rename = %+v, want %+v", events, want)
	}
	if uid := appendMsg(t, inbox, "three"); uid != 3 {
		t.Errorf("Append to INBOX after rename = UID %d, want 3", uid)
	}
}

// RenameMailbox renames one mailbox. Inferior names ("Work/2024") and
// names that merely share a prefix ("Workshop") stay: the IMAP server
// moves inferiors itself, one RenameMailbox each (RFC 3501 §6.3.5).
func TestRenameMailboxLeavesOtherNames(t *testing.T) {
	s, _ := openMemory(t)
	u := addUser(t, s, "a@example.test", "a")
	for _, name := range []string{"Work", "Work/2024", "Workshop"} {
		if err := u.CreateMailbox(name); err != nil {
			t.Fatal(err)
		}
	}
	if err := u.RenameMailbox("Work", "Jobs"); err != nil {
		t.Fatalf("RenameMailbox(Work, Jobs) = %v", err)
	}
	want := []string{mailstore.Inbox, "Jobs", "Work/2024", "Workshop"}
	if got := u.Mailboxes(); !slices.Equal(got, want) {
		t.Errorf("Mailboxes() after RenameMailbox(Work, Jobs) = %q, want %q", got, want)
	}
}

// RFC 3501 §2.3.1.1: a mailbox that is deleted and created again must not
// reuse the old UIDVALIDITY, or clients keep stale UIDs.
func TestRecreatedMailboxGetsNewUIDValidity(t *testing.T) {
	s, _ := openMemory(t) // the clock does not move, as within one second
	u := addUser(t, s, "a@example.test", "a")
	if err := u.CreateMailbox("Trash"); err != nil {
		t.Fatal(err)
	}
	first := mailbox(t, u, "Trash").UIDValidity()
	if err := u.DeleteMailbox("Trash"); err != nil {
		t.Fatal(err)
	}
	if err := u.CreateMailbox("Trash"); err != nil {
		t.Fatal(err)
	}
	if again := mailbox(t, u, "Trash").UIDValidity(); again == first {
		t.Errorf("UIDVALIDITY of a mailbox made again = %d, the same as before; want a new one (RFC 3501 §2.3.1.1)", again)
	}
}

func TestSubscriptions(t *testing.T) {
	s, _ := openMemory(t)
	u := addUser(t, s, "a@example.test", "a")
	if err := u.CreateMailbox("News"); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name string
		do   func()
		box  string
		want bool
	}{
		{"INBOX always", func() {}, "inbox", true},
		{"INBOX cannot be unsubscribed", func() { u.SetSubscribed("INBOX", false) }, mailstore.Inbox, true},
		{"new mailbox not subscribed", func() {}, "News", false},
		{"subscribe", func() { u.SetSubscribed("News", true) }, "News", true},
		{"unsubscribe", func() { u.SetSubscribed("News", false) }, "News", false},
		{"subscribe a name that does not exist", func() { u.SetSubscribed("Later", true) }, "Later", true},
		{"delete drops the subscription", func() { u.SetSubscribed("News", true); u.DeleteMailbox("News") }, "News", false},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			st.do()
			if got := u.Subscribed(st.box); got != st.want {
				t.Errorf("Subscribed(%q) = %v, want %v", st.box, got, st.want)
			}
		})
	}
}

func TestQuota(t *testing.T) {
	s, _ := openMemory(t)
	u := addUser(t, s, "a@example.test", "a")
	if err := u.CreateMailbox("Sent"); err != nil {
		t.Fatal(err)
	}
	inbox, sent := mailbox(t, u, mailstore.Inbox), mailbox(t, u, "Sent")
	appendMsg(t, inbox, "1234567890") // 10 bytes before any quota
	appendMsg(t, sent, "12345")

	steps := []struct {
		name      string
		quota     int64
		box       *mailstore.Mailbox
		size      int
		wantErr   error
		wantUsed  int64
		wantOverN bool // OverQuota(1) afterwards
	}{
		{"unlimited", 0, inbox, 100, nil, 115, false},
		{"fits exactly", 120, sent, 5, nil, 120, true},
		{"one byte too many", 120, inbox, 1, mailstore.ErrOverQuota, 120, true},
		{"counts every mailbox", 125, sent, 6, mailstore.ErrOverQuota, 120, false},
		{"lowered below usage keeps messages", 50, inbox, 1, mailstore.ErrOverQuota, 120, true},
		{"removed", 0, inbox, 1000, nil, 1120, false},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			u.SetQuota(st.quota)
			_, err := st.box.Append(make([]byte, st.size), nil, time.Time{})
			if !errors.Is(err, st.wantErr) {
				t.Errorf("Append(%d bytes) with quota %d = %v, want %v", st.size, st.quota, err, st.wantErr)
			}
			limit, used := u.Quota()
			if limit != st.quota || used != st.wantUsed {
				t.Errorf("Quota() = %d, %d, want %d, %d", limit, used, st.quota, st.wantUsed)
			}
			if got := u.OverQuota(1); got != st.wantOverN {
				t.Errorf("OverQuota(1) = %v, want %v", got, st.wantOverN)
			}
		})
	}
}

// model is what an IMAP client knows of a mailbox: the UID at each
// sequence number, kept up to date only from events (RFC 3501 §7.3.1,
// §7.4.1).
type model struct {
	t    *testing.T
	uids []uint32
}

func (m *model) apply(ev mailstore.Event) {
	switch ev.Kind {
	case mailstore.EventAppended:
		m.uids = append(m.uids, ev.UID)
		if int(ev.SeqNum) != len(m.uids) {
			m.t.Errorf("EXISTS event for UID %d has SeqNum %d, want %d", ev.UID, ev.SeqNum, len(m.uids))
		}
	case mailstore.EventExpunged:
		i := int(ev.SeqNum) - 1
		if i < 0 || i >= len(m.uids) || m.uids[i] != ev.UID {
			m.t.Errorf("EXPUNGE event SeqNum %d for UID %d does not match the client's view %v", ev.SeqNum, ev.UID, m.uids)
			return
		}
		m.uids = slices.Delete(m.uids, i, i+1)
	case mailstore.EventFlags:
		i := int(ev.SeqNum) - 1
		if i < 0 || i >= len(m.uids) || m.uids[i] != ev.UID {
			m.t.Errorf("FETCH FLAGS event SeqNum %d for UID %d does not match the client's view %v", ev.SeqNum, ev.UID, m.uids)
		}
	}
	if int(ev.NumMessages) != len(m.uids) {
		m.t.Errorf("event %+v: NumMessages %d, client counts %d", ev, ev.NumMessages, len(m.uids))
	}
}

func TestWatch(t *testing.T) {
	s, _ := openMemory(t)
	mb := mailbox(t, addUser(t, s, "a@example.test", "a"), mailstore.Inbox)
	for i := range 3 {
		appendMsg(t, mb, fmt.Sprint("before watch ", i))
	}
	client := &model{t: t, uids: uids(mb.Messages())}
	var events []mailstore.Event
	cancel := mb.Watch(func(ev mailstore.Event) {
		events = append(events, ev)
		client.apply(ev)
	})
	second := 0
	cancelSecond := mb.Watch(func(mailstore.Event) { second++ })

	steps := []struct {
		name string
		do   func() error
		want []mailstore.Event
	}{
		{"append", func() error { _, err := mb.Append([]byte("x"), []string{`\Draft`}, time.Time{}); return err },
			[]mailstore.Event{{Kind: mailstore.EventAppended, UID: 4, SeqNum: 4, NumMessages: 4, Flags: []string{`\Draft`}}}},
		{"append another", func() error { _, err := mb.Append([]byte("y"), nil, time.Time{}); return err },
			[]mailstore.Event{{Kind: mailstore.EventAppended, UID: 5, SeqNum: 5, NumMessages: 5, Flags: []string{}}}},
		{"flags", func() error {
			_, err := mb.StoreFlags([]uint32{2, 5}, mailstore.FlagsAdd, []string{`\Seen`})
			return err
		},
			[]mailstore.Event{
				{Kind: mailstore.EventFlags, UID: 2, SeqNum: 2, NumMessages: 5, Flags: []string{`\Seen`}},
				{Kind: mailstore.EventFlags, UID: 5, SeqNum: 5, NumMessages: 5, Flags: []string{`\Seen`}},
			}},
		// Expunged from the highest sequence number down, so each number
		// is valid when the client applies it.
		{"expunge several", func() error { _, err := mb.Expunge([]uint32{2, 4, 1}); return err },
			[]mailstore.Event{
				{Kind: mailstore.EventExpunged, UID: 4, SeqNum: 4, NumMessages: 4},
				{Kind: mailstore.EventExpunged, UID: 2, SeqNum: 2, NumMessages: 3},
				{Kind: mailstore.EventExpunged, UID: 1, SeqNum: 1, NumMessages: 2},
			}},
		{"flags after expunge use new numbers", func() error { _, err := mb.StoreFlags([]uint32{5}, mailstore.FlagsSet, nil); return err },
			[]mailstore.Event{{Kind: mailstore.EventFlags, UID: 5, SeqNum: 2, NumMessages: 2, Flags: []string{}}}},
		{"no change, no event", func() error {
			_, err := mb.StoreFlags([]uint32{5}, mailstore.FlagsRemove, []string{`\Seen`})
			return err
		}, nil},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			client.t = t
			events = nil
			if err := st.do(); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(events, st.want) {
				t.Errorf("events = %+v, want %+v", events, st.want)
			}
		})
	}
	client.t = t
	if got := uids(mb.Messages()); !slices.Equal(client.uids, got) {
		t.Errorf("client view from events = %v, mailbox has %v", client.uids, got)
	}

	cancel()
	cancelSecond()
	n := len(events)
	appendMsg(t, mb, "after cancel")
	if len(events) != n {
		t.Errorf("a cancelled watcher got %d more events", len(events)-n)
	}
	if second != 8 {
		t.Errorf("second watcher got %d events, want 8 (each watcher sees every change)", second)
	}
}

// TestConcurrentUse runs deliveries, flag changes, expunges and reads at
// once; -race checks the locking and the final state must add up.
func TestConcurrentUse(t *testing.T) {
	s, _ := openMemory(t)
	u := addUser(t, s, "a@example.test", "a")
	mb := mailbox(t, u, mailstore.Inbox)
	var seen int
	defer mb.Watch(func(mailstore.Event) { seen++ })()
	const writers, each = 4, 25
	done := make(chan error)
	for w := range writers {
		go func() {
			var err error
			for i := 0; i < each && err == nil; i++ {
				err = s.Deliver("a@example.test", []byte(fmt.Sprint(w, "/", i)))
				if err == nil {
					_, err = mb.StoreFlags([]uint32{uint32(i + 1)}, mailstore.FlagsAdd, []string{`\Seen`})
				}
				_ = mb.Status()
				_ = mb.Messages()
				_, _ = u.Quota()
			}
			done <- err
		}()
	}
	for range writers {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if st := mb.Status(); st.Messages != writers*each || st.UIDNext != writers*each+1 {
		t.Errorf("Status() after %d deliveries = %+v", writers*each, st)
	}
}
