package mailstore_test

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/maillab/maillab/servers/mailstore"
)

// openDir opens a Maildir store in dir with a fixed clock. A store this
// helper opened before on the same directory is closed first, as if its
// lab had stopped: a "restart".
func openDir(t *testing.T, dir string) *mailstore.Store {
	t.Helper()
	if old := openStores[dir]; old != nil {
		if err := old.Close(); err != nil {
			t.Fatalf("Close(%s) = %v", dir, err)
		}
	}
	c := &clock{t: epoch}
	s, err := mailstore.Open(mailstore.Options{Dir: dir, Now: c.now})
	if err != nil {
		t.Fatalf("Open(%s) = %v", dir, err)
	}
	openStores[dir] = s
	t.Cleanup(func() { s.Close(); delete(openStores, dir) })
	return s
}

// openStores are the stores openDir opened, by directory (tests using it
// do not run in parallel).
var openStores = map[string]*mailstore.Store{}

// files lists the regular files under dir/sub ("new", "cur", "tmp").
func files(t *testing.T, dir, sub string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(dir, sub))
	if err != nil {
		t.Fatalf("ReadDir(%s/%s) = %v", dir, sub, err)
	}
	out := []string{}
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

// infos returns the Maildir info part (after ":") of each file in dir/sub.
func infos(t *testing.T, dir, sub string) []string {
	t.Helper()
	out := []string{}
	for _, f := range files(t, dir, sub) {
		_, info, _ := strings.Cut(f, ":")
		out = append(out, info)
	}
	sort.Strings(out)
	return out
}

func TestOpenDirectory(t *testing.T) {
	root := t.TempDir()
	file := filepath.Join(root, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	readOnly := filepath.Join(root, "read-only")
	if err := os.Mkdir(readOnly, 0o500); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		dir     string
		wantErr bool
		skip    func() string
	}{
		{name: "created when missing", dir: filepath.Join(root, "a", "b")},
		{name: "relative path made absolute", dir: "relative-store"},
		{name: "a file, not a directory", dir: file, wantErr: true},
		{name: "below a file", dir: filepath.Join(file, "store"), wantErr: true},
		{name: "not writable", dir: readOnly, wantErr: true, skip: func() string {
			// root writes through mode bits; only check where they bite.
			if probe, err := os.CreateTemp(readOnly, "probe"); err == nil {
				probe.Close()
				os.Remove(probe.Name())
				return "this user can write to a 0500 directory (root)"
			}
			return ""
		}},
		// An existing directory nobody can create files in, root included.
		{name: "procfs directory", dir: "/proc/self", wantErr: true, skip: func() string {
			if _, err := os.Stat("/proc/self"); err != nil {
				return "no /proc"
			}
			return ""
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.skip != nil {
				if why := tt.skip(); why != "" {
					t.Skip(why)
				}
			}
			if !filepath.IsAbs(tt.dir) {
				t.Chdir(t.TempDir())
			}
			s, err := mailstore.Open(mailstore.Options{Dir: tt.dir})
			if tt.wantErr {
				if err == nil {
					t.Fatalf("Open(%s) = %v, want an error", tt.dir, s.Dir())
				}
				return
			}
			if err != nil {
				t.Fatalf("Open(%s) = %v", tt.dir, err)
			}
			if !filepath.IsAbs(s.Dir()) || filepath.Base(s.Dir()) != filepath.Base(tt.dir) {
				t.Errorf("Open(%s).Dir() = %q, want the absolute path", tt.dir, s.Dir())
			}
			defer s.Close()
			entries, _ := os.ReadDir(s.Dir())
			if len(entries) != 1 || entries[0].Name() != "maillab.lock" {
				t.Errorf("Open left %v in %s, want only maillab.lock (the write probe must be removed)", entries, s.Dir())
			}
		})
	}
}

func TestMaildirLayout(t *testing.T) {
	root := t.TempDir()
	s := openDir(t, root)
	u := addUser(t, s, "Alice@Example.test", "Alice@Example.test")
	home := filepath.Join(root, "alice@example%2Etest")
	for _, sub := range []string{"new", "cur", "tmp", "maillab-uidlist"} {
		if _, err := os.Stat(filepath.Join(home, sub)); err != nil {
			t.Fatalf("after AddUser: %v", err)
		}
	}
	inbox := mailbox(t, u, mailstore.Inbox)

	uid := appendMsg(t, inbox, "Subject: hi\r\n\r\nhello\r\n")
	steps := []struct {
		name    string
		do      func() error
		wantNew int
		wantCur []string // info parts of the files in cur/
	}{
		{"delivered to new", func() error { return nil }, 1, []string{}},
		{"seen moves it to cur", func() error {
			_, err := inbox.StoreFlags([]uint32{uid}, mailstore.FlagsAdd, []string{`\Seen`})
			return err
		}, 0, []string{"2,S"}},
		{"letters in ASCII order", func() error {
			_, err := inbox.StoreFlags([]uint32{uid}, mailstore.FlagsAdd, []string{`\Flagged`, `\Answered`, `\Draft`, `\Deleted`})
			return err
		}, 0, []string{"2,DFRST"}},
		{"keywords do not show in the name", func() error {
			_, err := inbox.StoreFlags([]uint32{uid}, mailstore.FlagsSet, []string{"$Forwarded"})
			return err
		}, 0, []string{"2,"}},
		// Maildir: a message a client has seen stays in cur/ for good.
		{"no flags at all stays in cur", func() error {
			_, err := inbox.StoreFlags([]uint32{uid}, mailstore.FlagsSet, nil)
			return err
		}, 0, []string{"2,"}},
		{"appended with flags lands in cur", func() error {
			_, err := inbox.Append([]byte("second"), []string{`\Seen`}, time.Time{})
			return err
		}, 0, []string{"2,", "2,S"}},
		{"expunge removes the files", func() error {
			_, err := inbox.Expunge([]uint32{1, 2})
			return err
		}, 0, []string{}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if err := st.do(); err != nil {
				t.Fatal(err)
			}
			if got := files(t, home, "new"); len(got) != st.wantNew {
				t.Errorf("new/ = %q, want %d files", got, st.wantNew)
			}
			if got := infos(t, home, "cur"); !slices.Equal(got, st.wantCur) {
				t.Errorf("cur/ infos = %q, want %q", got, st.wantCur)
			}
			if got := files(t, home, "tmp"); len(got) != 0 {
				t.Errorf("tmp/ = %q, want empty", got)
			}
		})
	}

	// Mailboxes other than INBOX are Maildir++ folders with escaped names.
	folders := []struct{ name, dir string }{
		{"Sent", ".Sent"},
		{"Archive/2024", ".Archive.2024"},
		{"a.b", ".a%2Eb"},
		{"Sent Items", ".Sent%20Items"},
	}
	for _, f := range folders {
		t.Run("folder "+f.name, func(t *testing.T) {
			if err := u.CreateMailbox(f.name); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(filepath.Join(home, f.dir, "cur")); err != nil {
				t.Errorf("CreateMailbox(%q): %v", f.name, err)
			}
		})
	}
}

// message is what a restart must bring back.
type message struct {
	uid   uint32
	data  string
	flags []string
	date  time.Time
}

func snapshot(mb *mailstore.Mailbox) []message {
	var out []message
	for _, m := range mb.Messages() {
		out = append(out, message{m.UID, string(m.Data), m.Flags, m.InternalDate.UTC()})
	}
	return out
}

func equalMessages(a, b []message) bool {
	return slices.EqualFunc(a, b, func(x, y message) bool {
		return x.uid == y.uid && x.data == y.data && slices.Equal(x.flags, y.flags) && x.date.Equal(y.date)
	})
}

func TestMaildirRestart(t *testing.T) {
	root := t.TempDir()
	s := openDir(t, root)
	u := addUser(t, s, "alice@example.test", "alice")
	for _, name := range []string{"Archive/2024", "Sent Items", "a.b"} {
		if err := u.CreateMailbox(name); err != nil {
			t.Fatal(err)
		}
	}
	inbox := mailbox(t, u, mailstore.Inbox)
	day := func(d int) time.Time { return time.Date(2023, 5, d, 8, 0, 0, 0, time.UTC) }
	for i, m := range []struct {
		data  string
		flags []string
	}{
		{"one", nil},
		{"two", []string{`\Seen`}},
		{"three", []string{`\Seen`, `\Flagged`, "$Label1", "NonJunk"}},
		{"four", []string{"$Forwarded"}},
		{"five", []string{`\Deleted`}},
	} {
		if _, err := inbox.Append([]byte(m.data), m.flags, day(i+1)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := inbox.StoreFlags([]uint32{1}, mailstore.FlagsAdd, []string{`\Answered`, "$Replied"}); err != nil {
		t.Fatal(err)
	}
	if _, err := inbox.Expunge([]uint32{5}); err != nil {
		t.Fatal(err)
	}
	archive := mailbox(t, u, "Archive/2024")
	if _, err := archive.Append([]byte("archived"), []string{`\Seen`, "Work"}, day(9)); err != nil {
		t.Fatal(err)
	}
	u.SetQuota(1 << 20)

	wantBoxes := u.Mailboxes()
	want := map[string][]message{}
	validity := map[string]uint32{}
	next := map[string]uint32{}
	for _, name := range wantBoxes {
		mb := mailbox(t, u, name)
		want[name] = snapshot(mb)
		validity[name] = mb.UIDValidity()
		next[name] = mb.Status().UIDNext
	}

	// A new process: Open the same directory and add the same user.
	s2 := openDir(t, root)
	u2, err := s2.AddUser("alice@example.test", "Alice", "secret")
	if err != nil {
		t.Fatalf("AddUser after restart = %v", err)
	}
	if got := u2.Mailboxes(); !slices.Equal(got, wantBoxes) {
		t.Fatalf("Mailboxes() after restart = %q, want %q", got, wantBoxes)
	}
	for _, name := range wantBoxes {
		t.Run(name, func(t *testing.T) {
			mb := mailbox(t, u2, name)
			if got := snapshot(mb); !equalMessages(got, want[name]) {
				t.Errorf("messages after restart =\n%+v\nwant\n%+v", got, want[name])
			}
			if got := mb.UIDValidity(); got != validity[name] {
				t.Errorf("UIDValidity() after restart = %d, want %d", got, validity[name])
			}
			if got := mb.Status().UIDNext; got != next[name] {
				t.Errorf("UIDNext after restart = %d, want %d (expunged UIDs are not reused)", got, next[name])
			}
		})
	}
	if uid := appendMsg(t, mailbox(t, u2, mailstore.Inbox), "six"); uid != 6 {
		t.Errorf("Append after restart = UID %d, want 6", uid)
	}
}

// deliverForeign writes a message into dir/new the way another delivery
// agent does: into tmp/, then renamed into new/.
func deliverForeign(t *testing.T, dir, name, data string) {
	t.Helper()
	tmp := filepath.Join(dir, "tmp", name)
	if err := os.WriteFile(tmp, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "new", name)); err != nil {
		t.Fatal(err)
	}
}

func TestMaildirForeignDelivery(t *testing.T) {
	root := t.TempDir()
	s := openDir(t, root)
	u := addUser(t, s, "bob@example.test", "bob")
	inbox := mailbox(t, u, mailstore.Inbox)
	appendMsg(t, inbox, "ours 1")
	appendMsg(t, inbox, "ours 2")
	inbox.Expunge([]uint32{2})
	home := filepath.Join(root, "bob")
	// Names sort in delivery order, as Maildir unique names do.
	deliverForeign(t, home, "1700000001.M1P1.otherhost", "procmail 1")
	deliverForeign(t, home, "1700000002.M1P1.otherhost", "procmail 2")
	// Hidden files and tmp/ are not messages.
	os.WriteFile(filepath.Join(home, "new", ".hidden"), []byte("x"), 0o600)
	os.WriteFile(filepath.Join(home, "tmp", "1700000003.M1P1.otherhost"), []byte("half written"), 0o600)

	s2 := openDir(t, root)
	u2 := addUser(t, s2, "bob@example.test", "bob")
	in2 := mailbox(t, u2, mailstore.Inbox)
	got := snapshot(in2)
	wantUIDs, wantData := []uint32{1, 3, 4}, []string{"ours 1", "procmail 1", "procmail 2"}
	var gotUIDs []uint32
	var gotData []string
	for _, m := range got {
		gotUIDs = append(gotUIDs, m.uid)
		gotData = append(gotData, m.data)
	}
	if !slices.Equal(gotUIDs, wantUIDs) || !slices.Equal(gotData, wantData) {
		t.Fatalf("after restart = UIDs %v %q, want %v %q (new files get the next UIDs)", gotUIDs, gotData, wantUIDs, wantData)
	}

	// The UIDs given to foreign files are kept by the next restart too, and
	// the files are flagged and expunged like our own.
	if _, err := in2.StoreFlags([]uint32{3}, mailstore.FlagsAdd, []string{`\Seen`}); err != nil {
		t.Fatalf("StoreFlags on a foreign message = %v", err)
	}
	if _, err := in2.Expunge([]uint32{4}); err != nil {
		t.Fatalf("Expunge of a foreign message = %v", err)
	}
	s3 := openDir(t, root)
	in3 := mailbox(t, addUser(t, s3, "bob@example.test", "bob"), mailstore.Inbox)
	want := snapshot(in2)
	if got := snapshot(in3); !equalMessages(got, want) {
		t.Errorf("second restart =\n%+v\nwant\n%+v", got, want)
	}
}

// Files that a Maildir client (mutt, Dovecot) moved into cur/ carry info
// this store does not write itself: "2," with no flags, letters in
// another order, or letters it does not know (P = passed; Dovecot's
// lower-case keyword letters). They must still be flagged and expunged.
// The store finds its own files by rebuilding the name from the flags
// (pathFor), which misses every such name.
func TestMaildirForeignCurFiles(t *testing.T) {
	tests := []struct {
		name string
		file string
		bug  string
	}{
		{name: "seen", file: "1700000001.M1P1.mutt:2,S"},
		{name: "empty info", file: "1700000001.M1P1.mutt:2,"},
		{name: "unknown letter", file: "1700000001.M1P1.mutt:2,PS"},
		{name: "letters out of order", file: "1700000001.M1P1.mutt:2,SF"},
		{name: "no info in cur", file: "1700000001.M1P1.mutt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.bug != "" {
				t.Skip("bug: " + tt.bug)
			}
			root := t.TempDir()
			addUser(t, openDir(t, root), "carol@example.test", "carol")
			home := filepath.Join(root, "carol")
			if err := os.WriteFile(filepath.Join(home, "cur", tt.file), []byte("from mutt"), 0o600); err != nil {
				t.Fatal(err)
			}
			inbox := mailbox(t, addUser(t, openDir(t, root), "carol@example.test", "carol"), mailstore.Inbox)
			if _, err := inbox.StoreFlags([]uint32{1}, mailstore.FlagsAdd, []string{`\Flagged`}); err != nil {
				t.Errorf("StoreFlags(%s) = %v", tt.file, err)
			}
			if _, err := inbox.Expunge([]uint32{1}); err != nil {
				t.Errorf("Expunge(%s) = %v", tt.file, err)
			}
			if left := append(files(t, home, "cur"), files(t, home, "new")...); len(left) != 0 {
				t.Errorf("files after Expunge(%s) = %q, want none", tt.file, left)
			}
		})
	}
}

func TestMaildirRenameAndDelete(t *testing.T) {
	root := t.TempDir()
	s := openDir(t, root)
	u := addUser(t, s, "dave@example.test", "dave")
	home := filepath.Join(root, "dave")
	inbox := mailbox(t, u, mailstore.Inbox)
	appendMsg(t, inbox, "in 1", `\Seen`, "$Label2")
	appendMsg(t, inbox, "in 2")
	if err := u.CreateMailbox("Work"); err != nil {
		t.Fatal(err)
	}
	appendMsg(t, mailbox(t, u, "Work"), "work 1", `\Flagged`)
	if err := u.CreateMailbox("Trash"); err != nil {
		t.Fatal(err)
	}

	if err := u.RenameMailbox("Work", "Jobs/Old"); err != nil {
		t.Fatalf("RenameMailbox(Work, Jobs/Old) = %v", err)
	}
	if err := u.RenameMailbox("INBOX", "Saved"); err != nil {
		t.Fatalf("RenameMailbox(INBOX, Saved) = %v", err)
	}
	if err := u.DeleteMailbox("Trash"); err != nil {
		t.Fatalf("DeleteMailbox(Trash) = %v", err)
	}
	for _, gone := range []string{".Work", ".Trash"} {
		if _, err := os.Stat(filepath.Join(home, gone)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Stat(%s) after rename/delete = %v, want not exist", gone, err)
		}
	}
	if n := len(files(t, home, "new")) + len(files(t, home, "cur")); n != 0 {
		t.Errorf("INBOX Maildir after renaming INBOX holds %d files, want 0", n)
	}

	want := map[string][]string{mailstore.Inbox: {}, "Jobs/Old": {"work 1"}, "Saved": {"in 1", "in 2"}}
	u2 := addUser(t, openDir(t, root), "dave@example.test", "dave")
	if got := u2.Mailboxes(); !slices.Equal(got, []string{mailstore.Inbox, "Jobs/Old", "Saved"}) {
		t.Fatalf("Mailboxes() after restart = %q", got)
	}
	for name, wantBodies := range want {
		msgs := mailbox(t, u2, name).Messages()
		if got := bodies(msgs); !slices.Equal(got, wantBodies) {
			t.Errorf("%s after restart = %q, want %q", name, got, wantBodies)
		}
	}
	saved := mailbox(t, u2, "Saved").Messages()
	if len(saved) == 2 && !slices.Equal(saved[0].Flags, []string{"$Label2", `\Seen`}) {
		t.Errorf("flags of the moved INBOX message after restart = %q, want [$Label2 \\Seen]", saved[0].Flags)
	}
	if uid := appendMsg(t, mailbox(t, u2, mailstore.Inbox), "in 3"); uid != 3 {
		t.Errorf("Append to INBOX after rename and restart = UID %d, want 3", uid)
	}
}

// TestMaildirDamagedUIDList damages the uidlist of a mailbox with three
// messages as a crash, a disk or an older maillab can, and restarts: the
// store must start, keep every message file, hand out unique UIDs, report
// what it repaired and leave a clean uidlist behind.
func TestMaildirDamagedUIDList(t *testing.T) {
	tests := []struct {
		name string
		// damage returns the new uidlist from the lines of a clean one:
		// the header, then one record per message in UID order.
		damage   func(lines []string) string
		wantUIDs []uint32 // of the messages one, two, three
		// keywordsKept says whether "three" keeps its keyword Work.
		keywordsKept bool
		sameValidity bool
		repair       string
	}{
		{"empty", func([]string) string { return "" }, []uint32{1, 2, 3}, false, false, "empty uidlist"},
		{"bad header", func(l []string) string { return "2 V1 N1\n" + strings.Join(l[1:], "") }, []uint32{1, 2, 3}, true, false, "bad header"},
		{"bad uid", func(l []string) string { return l[0] + "four" + l[1][1:] + l[2] + l[3] }, []uint32{4, 2, 3}, true, true, "bad uid"},
		{"line over 1 MiB", func(l []string) string {
			// What 30 STOREs of ~40 kB of keywords each left with old code.
			return l[0] + l[1] + l[2] + strings.TrimSuffix(l[3], "\n") + strings.Repeat(" $kw", 300000) + "\n"
		}, []uint32{1, 2, 3}, false, true, "longer than 1048576 bytes: UID 3"},
		{"duplicate uids", func(l []string) string {
			_, file2, _ := strings.Cut(l[2], " ")
			return l[0] + l[1] + "1 " + file2 + l[3]
		}, []uint32{1, 4, 3}, true, true, "UID 1 is given to both"},
		{"interrupted journal record", func(l []string) string {
			return l[0] + l[1] + l[2] + l[3] + strings.TrimSuffix(l[3], "Work\n") + "Wo"
		}, []uint32{1, 2, 3}, true, true, "interrupted record"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			s1 := openDir(t, root)
			u := addUser(t, s1, "erin@example.test", "erin")
			inbox := mailbox(t, u, mailstore.Inbox)
			appendMsg(t, inbox, "one")
			appendMsg(t, inbox, "two", `\Seen`)
			appendMsg(t, inbox, "three", "Work")
			validity := inbox.UIDValidity()
			if err := s1.Close(); err != nil { // the lab stops, then the damage
				t.Fatal(err)
			}
			list := filepath.Join(root, "erin", "maillab-uidlist")
			clean, err := os.ReadFile(list)
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.SplitAfter(string(clean), "\n")
			if len(lines) != 5 || lines[4] != "" {
				t.Fatalf("uidlist = %q, want a header and 3 records", clean)
			}
			if err := os.WriteFile(list, []byte(tt.damage(lines[:4])), 0o600); err != nil {
				t.Fatal(err)
			}

			s2 := openDir(t, root)
			u2, err := s2.AddUser("erin@example.test", "erin", "x")
			if err != nil {
				t.Fatalf("AddUser after damaging the uidlist = %v, want a repair", err)
			}
			msgs := mailbox(t, u2, mailstore.Inbox).Messages()
			got := map[string]uint32{}
			for _, m := range msgs {
				got[string(m.Data)] = m.UID
			}
			want := map[string]uint32{"one": tt.wantUIDs[0], "two": tt.wantUIDs[1], "three": tt.wantUIDs[2]}
			if len(msgs) != 3 || !maps.Equal(got, want) {
				t.Errorf("messages after repair = %v, want UIDs %v", got, want)
			}
			var three mailstore.Message
			for _, m := range msgs {
				if string(m.Data) == "three" {
					three = m
				}
			}
			if kept := slices.Contains(three.Flags, "Work"); kept != tt.keywordsKept {
				t.Errorf("flags of three after repair = %q, want Work kept: %v", three.Flags, tt.keywordsKept)
			}
			// A lost header gets the UIDVALIDITY of the clock, which is
			// fixed in this test; only a kept one can be checked.
			if got := mailbox(t, u2, mailstore.Inbox).UIDValidity(); tt.sameValidity && got != validity {
				t.Errorf("UIDVALIDITY after repair = %d, want %d kept", got, validity)
			}
			repairs := s2.Repairs()
			if len(repairs) == 0 || !strings.Contains(strings.Join(repairs, "\n"), tt.repair) || !strings.HasPrefix(repairs[0], list) {
				t.Errorf("Repairs() = %q, want one naming %s and saying %q", repairs, list, tt.repair)
			}
			if n := len(files(t, filepath.Join(root, "erin"), "new")) + len(files(t, filepath.Join(root, "erin"), "cur")); n != 3 {
				t.Errorf("%d message files after repair, want 3", n)
			}
			// The repaired list is clean: the next start repairs nothing.
			s3 := openDir(t, root)
			if _, err := s3.AddUser("erin@example.test", "erin", "x"); err != nil {
				t.Fatal(err)
			}
			if r := s3.Repairs(); len(r) != 0 {
				t.Errorf("Repairs() after the repaired start = %q, want none", r)
			}
		})
	}
}

// TestMaildirJournalCrash copies a store's tree while the store is open,
// as a kill -9 or a power cut leaves it, and starts on the copy: the
// uidlist was appended to (one record per delivery or keyword change, not
// rewritten), a record cut in half is dropped, and every message is there
// with its UID.
func TestMaildirJournalCrash(t *testing.T) {
	root := t.TempDir()
	u := addUser(t, openDir(t, root), "erin@example.test", "erin")
	inbox := mailbox(t, u, mailstore.Inbox)
	for _, body := range []string{"one", "two", "three", "four", "five"} {
		appendMsg(t, inbox, body)
	}
	if _, err := inbox.StoreFlags([]uint32{2}, mailstore.FlagsAdd, []string{"Work"}); err != nil {
		t.Fatal(err)
	}
	if _, err := inbox.StoreFlags([]uint32{3}, mailstore.FlagsAdd, []string{`\Seen`}); err != nil { // in the file name only
		t.Fatal(err)
	}
	crashed := t.TempDir()
	if err := os.CopyFS(crashed, os.DirFS(root)); err != nil {
		t.Fatal(err)
	}
	list := filepath.Join(crashed, "erin", "maillab-uidlist")
	data, err := os.ReadFile(list)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(data), "\n")
	// header (from AddUser's compaction) + 5 appends + 1 keyword record
	if len(lines) != 8 || !strings.HasPrefix(lines[6], "2 ") || !strings.HasSuffix(lines[6], " Work\n") {
		t.Fatalf("uidlist while open = %q, want the header, 5 append records and 1 keyword record", data)
	}
	cut := strings.Join(lines[:6], "") + lines[6][:len(lines[6])-4]
	if err := os.WriteFile(list, []byte(cut), 0o600); err != nil {
		t.Fatal(err)
	}

	s2 := openDir(t, crashed)
	u2, err := s2.AddUser("erin@example.test", "erin", "x")
	if err != nil {
		t.Fatalf("AddUser after a crash = %v", err)
	}
	var got []string
	for _, m := range mailbox(t, u2, mailstore.Inbox).Messages() {
		got = append(got, fmt.Sprintf("%d %s %v", m.UID, m.Data, m.Flags))
	}
	want := []string{"1 one []", "2 two []", `3 three [\Seen]`, "4 four []", "5 five []"}
	if !slices.Equal(got, want) {
		t.Errorf("messages after a crash = %q, want %q", got, want)
	}
	if r := s2.Repairs(); len(r) != 1 || !strings.Contains(r[0], "interrupted record") {
		t.Errorf("Repairs() after a crash = %q, want the interrupted record", r)
	}
	if uid := appendMsg(t, mailbox(t, u2, mailstore.Inbox), "six"); uid != 6 {
		t.Errorf("Append after a crash = UID %d, want 6", uid)
	}
}

// TestMaildirJournalCompaction: the journal is compacted once it holds
// more records than the mailbox has messages (plus slack), so it cannot
// grow without bound under keyword changes.
func TestMaildirJournalCompaction(t *testing.T) {
	root := t.TempDir()
	u := addUser(t, openDir(t, root), "erin@example.test", "erin")
	inbox := mailbox(t, u, mailstore.Inbox)
	appendMsg(t, inbox, "one")
	for i := range 1100 {
		op := mailstore.FlagsAdd
		if i%2 == 1 {
			op = mailstore.FlagsRemove
		}
		if _, err := inbox.StoreFlags([]uint32{1}, op, []string{"Toggle"}); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(filepath.Join(root, "erin", "maillab-uidlist"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(data), "\n"); n > 1030 {
		t.Errorf("uidlist has %d lines after 1100 keyword changes to 1 message, want it compacted (≤ 1030)", n)
	}
}
