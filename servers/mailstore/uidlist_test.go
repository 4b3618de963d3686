package mailstore

import (
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
	tests := []struct {
		name     string
		in       string
		validity uint32
		next     uint32
		entries  map[string]uidEntry
		wantErr  bool
		bug      string
	}{
		{name: "header only", in: "1 V1709280000 N1\n", validity: 1709280000, next: 1, entries: map[string]uidEntry{}},
		{name: "entries with keywords", in: "1 V42 N7\n1 1709280000.M1P2Q3.host\n4 1709280001.M5P2Q4.host $Label1 NonJunk\n",
			validity: 42, next: 7, entries: map[string]uidEntry{
				"1709280000.M1P2Q3.host": {uid: 1},
				"1709280001.M5P2Q4.host": {uid: 4, keywords: []string{"$Label1", "NonJunk"}},
			}},
		{name: "no final newline and blank lines", in: "1 V3 N9\n\n8 f\n\n", validity: 3, next: 9,
			entries: map[string]uidEntry{"f": {uid: 8}}},
		{name: "CRLF", in: "1 V3 N9\r\n8 f\r\n", validity: 3, next: 9, entries: map[string]uidEntry{"f": {uid: 8}}},
		{name: "max uint32", in: "1 V4294967295 N4294967295\n4294967295 f\n", validity: 4294967295, next: 4294967295,
			entries: map[string]uidEntry{"f": {uid: 4294967295}}},
		{name: "empty", in: "", wantErr: true},
		{name: "unknown version", in: "2 V1 N1\n", wantErr: true},
		{name: "header fields missing", in: "1 V1\n", wantErr: true},
		{name: "header extra field", in: "1 V1 N1 X\n", wantErr: true},
		{name: "validity zero", in: "1 V0 N1\n", wantErr: true},
		{name: "next zero", in: "1 V1 N0\n", wantErr: true},
		{name: "validity not a number", in: "1 Vx N1\n", wantErr: true},
		{name: "validity over 32 bits", in: "1 V4294967296 N1\n", wantErr: true},
		{name: "letters swapped", in: "1 N1 V1\n", wantErr: true},
		{name: "uid without file", in: "1 V1 N2\n1\n", wantErr: true},
		{name: "uid zero", in: "1 V1 N2\n0 f\n", wantErr: true},
		{name: "negative uid", in: "1 V1 N2\n-1 f\n", wantErr: true},
		{name: "line too long", in: "1 V1 N2\n1 " + strings.Repeat("x", 1<<20) + "\n", wantErr: true},
		{name: "blank first line", in: "\n1 f\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.bug != "" {
				t.Skip("bug: " + tt.bug)
			}
			v, n, entries, err := parseUIDList([]byte(tt.in))
			if tt.wantErr {
				if err == nil {
					t.Errorf("parseUIDList(%.60q) = %d, %d, %v, want an error", tt.in, v, n, entries)
				}
				return
			}
			if err != nil || v != tt.validity || n != tt.next || !equalEntries(entries, tt.entries) {
				t.Errorf("parseUIDList(%q) = %d, %d, %+v, %v, want %d, %d, %+v", tt.in, v, n, entries, err, tt.validity, tt.next, tt.entries)
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
	v, n, entries, err := parseUIDList(data)
	want := map[string]uidEntry{
		"1709280000.M1P1Q1.host": {uid: 3},
		"1709280001.M1P1Q2.host": {uid: 11, keywords: []string{"$Label1", "NonJunk"}},
	}
	if err != nil || v != 1709280000 || n != 12 || !equalEntries(entries, want) {
		t.Errorf("parseUIDList(save(...)) = %d, %d, %+v, %v, want 1709280000, 12, %+v", v, n, entries, err, want)
	}
	if _, err := os.Stat(filepath.Join(dir, uidListName+".tmp")); err == nil {
		t.Errorf("saveUIDListLocked left its temporary file behind")
	}
}

// FuzzParseUIDList feeds the uidlist parser arbitrary file contents. It
// must not panic; entries it accepts have non-zero UIDs and survive being
// written back in the same format.
func FuzzParseUIDList(f *testing.F) {
	for _, s := range []string{
		"1 V1709280000 N1\n",
		"1 V42 N7\n1 1709280000.M1P2Q3.host\n4 1709280001.M5P2Q4.host $Label1 NonJunk\n",
		"1 V3 N9\r\n\r\n8 f\r\n",
		"1 V1 N2\n0 f\n",
		"\n1 f\n",
		"2 V1 N1\n",
		"1 V4294967295 N4294967295\n4294967295 f $Forwarded\n",
		// As written by saveUIDListLocked after a Maildir restart.
		"1 V1709280000 N6\n1 1709280000.M0P123Q1.lab\n2 1709280000.M0P123Q2.lab $Label1\n3 1700000001.M1P1.otherhost\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, n, entries, err := parseUIDList(data)
		if err != nil {
			return
		}
		for file, e := range entries {
			if e.uid == 0 {
				t.Fatalf("parseUIDList(%q) accepted UID 0 for %q", data, file)
			}
			if file == "" || strings.ContainsAny(file, " \t\r\n") {
				t.Fatalf("parseUIDList(%q) returned file name %q", data, file)
			}
		}
		if v == 0 || n == 0 {
			t.Fatalf("parseUIDList(%q) = validity %d, next %d without an error", data, v, n)
		}
		v2, n2, entries2, err := parseUIDList(formatUIDList(v, n, entries))
		if err != nil || v2 != v || n2 != n || !equalEntries(entries2, entries) {
			t.Fatalf("parseUIDList(format(parseUIDList(%q))) = %d, %d, %+v, %v, want %d, %d, %+v", data, v2, n2, entries2, err, v, n, entries)
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
