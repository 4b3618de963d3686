package mailstore

import (
	"bytes"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

func TestParseUIDList(t *testing.T) {
	long := "1 " + strings.Repeat("x", 1<<20) + "\n"
	tests := []struct {
		name     string
		in       string
		validity uint32
		next     uint32
		entries  map[string]uidEntry
		problems []string // substrings, one per problem reported
	}{
		{name: "header only", in: "1 V1709280000 N1\n", validity: 1709280000, next: 1, entries: map[string]uidEntry{}},
		{name: "entries with keywords", in: "1 V42 N7\n1 1709280000.M1P2Q3.host\n4 1709280001.M5P2Q4.host $Label1 NonJunk\n",
			validity: 42, next: 7, entries: map[string]uidEntry{
				"1709280000.M1P2Q3.host": {uid: 1},
				"1709280001.M5P2Q4.host": {uid: 4, keywords: []string{"$Label1", "NonJunk"}},
			}},
		{name: "journal: the last record of a file wins", in: "1 V42 N2\n1 a\n2 b\n1 a $Seen1\n1 a Work\n",
			validity: 42, next: 2, entries: map[string]uidEntry{"a": {uid: 1, keywords: []string{"Work"}}, "b": {uid: 2}}},
		{name: "blank lines", in: "1 V3 N9\n\n8 f\n\n", validity: 3, next: 9,
			entries: map[string]uidEntry{"f": {uid: 8}}},
		{name: "CRLF", in: "1 V3 N9\r\n8 f\r\n", validity: 3, next: 9, entries: map[string]uidEntry{"f": {uid: 8}}},
		{name: "max uint32", in: "1 V4294967295 N4294967295\n4294967295 f\n", validity: 4294967295, next: 4294967295,
			entries: map[string]uidEntry{"f": {uid: 4294967295}}},
		{name: "interrupted last record", in: "1 V3 N9\n8 f\n9 g $Lab", validity: 3, next: 9,
			entries: map[string]uidEntry{"f": {uid: 8}}, problems: []string{"line 3: interrupted record"}},
		{name: "empty", in: "", entries: map[string]uidEntry{}, problems: []string{"empty uidlist"}},
		{name: "unknown version", in: "2 V1 N1\n", entries: map[string]uidEntry{}, problems: []string{"line 1: bad header"}},
		{name: "header fields missing", in: "1 V1\n", entries: map[string]uidEntry{}, problems: []string{"bad header"}},
		{name: "header extra field", in: "1 V1 N1 X\n", entries: map[string]uidEntry{}, problems: []string{"bad header"}},
		{name: "validity zero", in: "1 V0 N1\n", entries: map[string]uidEntry{}, problems: []string{"bad header"}},
		{name: "next zero", in: "1 V1 N0\n", entries: map[string]uidEntry{}, problems: []string{"bad header"}},
		{name: "validity not a number", in: "1 Vx N1\n", entries: map[string]uidEntry{}, problems: []string{"bad header"}},
		{name: "validity over 32 bits", in: "1 V4294967296 N1\n", entries: map[string]uidEntry{}, problems: []string{"bad header"}},
		{name: "letters swapped", in: "1 N1 V1\n", entries: map[string]uidEntry{}, problems: []string{"bad header"}},
		{name: "header missing, records kept", in: "3 f\n4 g Work\n", entries: map[string]uidEntry{"f": {uid: 3}, "g": {uid: 4, keywords: []string{"Work"}}},
			problems: []string{"line 1: bad header"}},
		{name: "uid without file", in: "1 V1 N2\n1\n", validity: 1, next: 2, entries: map[string]uidEntry{}, problems: []string{"line 2: want"}},
		{name: "uid zero", in: "1 V1 N2\n0 f\n", validity: 1, next: 2, entries: map[string]uidEntry{}, problems: []string{"line 2: bad uid"}},
		{name: "negative uid", in: "1 V1 N2\n-1 f\n2 g\n", validity: 1, next: 2, entries: map[string]uidEntry{"g": {uid: 2}}, problems: []string{"bad uid"}},
		{name: "line too long keeps the uid", in: "1 V1 N2\n1 f " + strings.Repeat("$kw ", 300000) + "\n2 g\n", validity: 1, next: 2,
			entries: map[string]uidEntry{"f": {uid: 1}, "g": {uid: 2}}, problems: []string{"line 2: longer than 1048576 bytes: UID 1 of f kept"}},
		{name: "file name too long", in: "1 V1 N2\n" + long + "2 g\n", validity: 1, next: 2,
			entries: map[string]uidEntry{"x" + strings.Repeat("x", 1<<20-3): {uid: 1}, "g": {uid: 2}}, problems: []string{"line 2: longer than"}},
		{name: "blank first line", in: "\n1 f\n", entries: map[string]uidEntry{"f": {uid: 1}}, problems: []string{"line 1: bad header"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := parseUIDList(strings.NewReader(tt.in))
			if l.validity != tt.validity || l.next != tt.next || !equalEntries(l.entries, tt.entries) {
				t.Errorf("parseUIDList(%.60q) = %d, %d, %.200v, want %d, %d, %.200v", tt.in, l.validity, l.next, l.entries, tt.validity, tt.next, tt.entries)
			}
			if len(l.problems) != len(tt.problems) {
				t.Fatalf("parseUIDList(%.60q) problems = %q, want %d matching %q", tt.in, l.problems, len(tt.problems), tt.problems)
			}
			for i, want := range tt.problems {
				if !strings.Contains(l.problems[i], want) {
					t.Errorf("parseUIDList(%.60q) problem %d = %.200q, want it to contain %q", tt.in, i, l.problems[i], want)
				}
			}
		})
	}
}

// equalEntries compares uidlist entries; no keywords is no keywords,
// whether nil or empty.
func equalEntries(a, b map[string]uidEntry) bool {
	return maps.EqualFunc(a, b, func(x, y uidEntry) bool {
		return x.uid == y.uid && slices.Equal(x.keywords, y.keywords)
	})
}

// formatUIDList writes entries in the format of saveUIDListLocked.
func formatUIDList(validity, next uint32, entries map[string]uidEntry) []byte {
	files := make([]string, 0, len(entries))
	for f := range entries {
		files = append(files, f)
	}
	sort.Strings(files)
	var b strings.Builder
	fmt.Fprintf(&b, "1 V%d N%d\n", validity, next)
	for _, f := range files {
		e := entries[f]
		fmt.Fprintf(&b, "%d %s", e.uid, f)
		for _, kw := range e.keywords {
			b.WriteString(" " + kw)
		}
		b.WriteByte('\n')
	}
	return []byte(b.String())
}

// TestUIDListSaveLoad checks that what saveUIDListLocked writes is what
// parseUIDList reads.
func TestUIDListSaveLoad(t *testing.T) {
	dir := t.TempDir()
	mb := &Mailbox{dir: dir, uidValidity: 1709280000, uidNext: 12, msgs: []*Message{
		{UID: 3, file: "1709280000.M1P1Q1.host", Flags: []string{`\Seen`}},
		{UID: 11, file: "1709280001.M1P1Q2.host", Flags: []string{"$Label1", "NonJunk", `\Flagged`}},
	}}
	if err := mb.saveUIDListLocked(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, uidListName))
	if err != nil {
		t.Fatal(err)
	}
	l := parseUIDList(bytes.NewReader(data))
	v, n, entries := l.validity, l.next, l.entries
	want := map[string]uidEntry{
		"1709280000.M1P1Q1.host": {uid: 3},
		"1709280001.M1P1Q2.host": {uid: 11, keywords: []string{"$Label1", "NonJunk"}},
	}
	if len(l.problems) > 0 || v != 1709280000 || n != 12 || !equalEntries(entries, want) {
		t.Errorf("parseUIDList(save(...)) = %d, %d, %+v, %q, want 1709280000, 12, %+v", v, n, entries, l.problems, want)
	}
	if _, err := os.Stat(filepath.Join(dir, uidListName+".tmp")); err == nil {
		t.Errorf("saveUIDListLocked left its temporary file behind")
	}
}

// FuzzParseUIDList feeds the uidlist parser arbitrary file contents. It
// must not panic; entries it returns have non-zero UIDs and file names
// without spaces, and a list without problems survives being written back
// in the same format.
func FuzzParseUIDList(f *testing.F) {
	for _, s := range []string{
		"1 V1709280000 N1\n",
		"1 V42 N7\n1 1709280000.M1P2Q3.host\n4 1709280001.M5P2Q4.host $Label1 NonJunk\n",
		"1 V3 N9\r\n\r\n8 f\r\n",
		"1 V1 N2\n0 f\n",
		"\n1 f\n",
		"2 V1 N1\n",
		"1 V3 N9\n8 f\n9 g $Lab",
		"1 V4294967295 N4294967295\n4294967295 f $Forwarded\n",
		// As written by saveUIDListLocked after a Maildir restart, then
		// journal records.
		"1 V1709280000 N6\n1 1709280000.M0P123Q1.lab\n2 1709280000.M0P123Q2.lab $Label1\n3 1700000001.M1P1.otherhost\n2 1709280000.M0P123Q2.lab\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		l := parseUIDList(bytes.NewReader(data))
		for file, e := range l.entries {
			if e.uid == 0 {
				t.Fatalf("parseUIDList(%q) accepted UID 0 for %q", data, file)
			}
			if file == "" || strings.ContainsAny(file, " \t\r\n") {
				t.Fatalf("parseUIDList(%q) returned file name %q", data, file)
			}
		}
		if (l.validity == 0) != (l.next == 0) {
			t.Fatalf("parseUIDList(%q) = validity %d, next %d", data, l.validity, l.next)
		}
		if len(l.problems) > 0 || l.validity == 0 {
			return
		}
		l2 := parseUIDList(bytes.NewReader(formatUIDList(l.validity, l.next, l.entries)))
		if len(l2.problems) > 0 || l2.validity != l.validity || l2.next != l.next || !equalEntries(l2.entries, l.entries) {
			t.Fatalf("parseUIDList(format(parseUIDList(%q))) = %d, %d, %+v, %q, want %d, %d, %+v", data, l2.validity, l2.next, l2.entries, l2.problems, l.validity, l.next, l.entries)
		}
	})
}

func TestEscapeName(t *testing.T) {
	tests := []struct{ in, want string }{
		{"alice@example.test", "alice@example%2Etest"},
		{"Sent Items", "Sent%20Items"},
		{"a+b-c_d", "a+b-c_d"},
		{"Ünï", "%C3%9Cn%C3%AF"},
		{"../..", "%2E%2E%2F%2E%2E"},
		{"%", "%25"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got := escapeName(tt.in)
			if got != tt.want {
				t.Errorf("escapeName(%q) = %q, want %q", tt.in, got, tt.want)
			}
			back, err := unescapeName(got)
			if err != nil || back != tt.in {
				t.Errorf("unescapeName(%q) = %q, %v, want %q", got, back, err, tt.in)
			}
		})
	}
	for _, bad := range []string{"%", "%4", "%ZZ", "a%2"} {
		if got, err := unescapeName(bad); err == nil {
			t.Errorf("unescapeName(%q) = %q, want an error", bad, got)
		}
	}
}

// FuzzFolderName checks that every mailbox name maps to one directory
// name and back.
func FuzzFolderName(f *testing.F) {
	for _, s := range []string{"Sent", "Archive/2024", "a.b", "Sent Items", "Ünicode/Ordner", "%41"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if validName(name) != nil || name == Inbox {
			return
		}
		u := &User{dir: "/maildir", store: &Store{now: time.Now}}
		dir := u.folderDir(name)
		if filepath.Dir(dir) != "/maildir" {
			t.Fatalf("folderDir(%q) = %q, want a direct child of the user's Maildir", name, dir)
		}
		back, err := folderName(filepath.Base(dir))
		if err != nil || back != name {
			t.Fatalf("folderName(folderDir(%q)) = %q, %v", name, back, err)
		}
	})
}

// TestExpungeReleasesArray: a mailbox emptied by EXPUNGE does not keep
// the array it needed when it was full (seen after the soak, issue 12).
func TestExpungeReleasesArray(t *testing.T) {
	s, err := Open(Options{})
	if err != nil {
		t.Fatal(err)
	}
	u, err := s.AddUser("alice@example.test", "alice", "x")
	if err != nil {
		t.Fatal(err)
	}
	mb, err := u.Mailbox(Inbox)
	if err != nil {
		t.Fatal(err)
	}
	var uids []uint32
	for range 5000 {
		uid, err := mb.Append([]byte("Subject: x\r\n\r\nx\r\n"), nil, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		uids = append(uids, uid)
	}
	tests := []struct {
		name    string
		expunge []uint32
		left    int
		maxCap  int
	}{
		{"a few", uids[:10], 4990, 8192},
		{"all but 90", uids[10:4910], 90, 180},
		{"the rest", uids[4910:], 0, 0},
	}
	for _, tt := range tests {
		if _, err := mb.Expunge(tt.expunge); err != nil {
			t.Fatal(err)
		}
		mb.mu.Lock()
		n, c := len(mb.msgs), cap(mb.msgs)
		mb.mu.Unlock()
		if n != tt.left || c > tt.maxCap {
			t.Errorf("%s expunged: %d messages in an array of %d, want %d in at most %d", tt.name, n, c, tt.left, tt.maxCap)
		}
	}
}
