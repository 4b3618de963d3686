package mailstore

// Maildir persistence (https://cr.yp.to/proto/maildir.html, with the
// Maildir++ folder layout): each account is a directory; INBOX is its
// cur/new/tmp, other mailboxes are "."-prefixed sub-directories. Messages
// are written to tmp/ and renamed into new/ (no flags) or cur/ with the
// ":2,<flags>" suffix. IMAP UIDs and keywords, which Maildir does not keep,
// live in a small "maillab-uidlist" file per folder, in the spirit of
// Dovecot's dovecot-uidlist.

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

const uidListName = "maillab-uidlist"

var deliveryCounter atomic.Uint64

// maildirName turns a user name into a safe directory name.
func maildirName(username string) string {
	return escapeName(strings.ToLower(username))
}

// escapeName keeps letters, digits and "@-_+" and escapes every other byte
// as %XX, so any name maps to one safe path component.
func escapeName(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', strings.IndexByte("@-_+", c) >= 0:
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

func unescapeName(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b.WriteByte(s[i])
			continue
		}
		if i+2 >= len(s) {
			return "", fmt.Errorf("bad escape in %q", s)
		}
		v, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
		if err != nil {
			return "", fmt.Errorf("bad escape in %q", s)
		}
		b.WriteByte(byte(v))
		i += 2
	}
	return b.String(), nil
}

// folderDir maps a mailbox name to its Maildir++ directory: INBOX is the
// account root, "a/b" is ".a.b" with every other byte escaped.
func (u *User) folderDir(name string) string {
	if name == Inbox {
		return u.dir
	}
	parts := strings.Split(name, "/")
	for i, p := range parts {
		parts[i] = escapeName(p)
	}
	return filepath.Join(u.dir, "."+strings.Join(parts, "."))
}

func folderName(dirName string) (string, error) {
	parts := strings.Split(strings.TrimPrefix(dirName, "."), ".")
	for i, p := range parts {
		n, err := unescapeName(p)
		if err != nil {
			return "", err
		}
		parts[i] = n
	}
	return strings.Join(parts, "/"), nil
}

func (mb *Mailbox) initDirLocked() error {
	for _, sub := range []string{"tmp", "new", "cur"} {
		if err := os.MkdirAll(filepath.Join(mb.dir, sub), 0o700); err != nil {
			return fmt.Errorf("maildir %s: %w", mb.dir, err)
		}
	}
	return mb.saveUIDListLocked()
}

// Maildir info letters for IMAP system flags, in the ASCII order Maildir
// requires.
var flagLetters = []struct {
	letter byte
	flag   string
}{
	{'D', FlagDraft}, {'F', FlagFlagged}, {'R', FlagAnswered}, {'S', FlagSeen}, {'T', FlagDeleted},
}

// infoSuffix is the ":2," info for flags plus letters of other programs,
// in ASCII order as Maildir requires.
func infoSuffix(flags []string, keep string) string {
	letters := []byte(keep)
	for _, fl := range flagLetters {
		if containsFold(flags, fl.flag) {
			letters = append(letters, fl.letter)
		}
	}
	sort.Slice(letters, func(i, j int) bool { return letters[i] < letters[j] })
	return ":2," + string(letters)
}

// keywords returns the flags that are not system flags.
func keywords(flags []string) []string {
	var out []string
	for _, f := range flags {
		if !strings.HasPrefix(f, `\`) {
			out = append(out, f)
		}
	}
	return out
}

// target is where a message with flags belongs, relative to the folder:
// new/ for a fresh message nobody has flagged, cur/ with its info after.
func target(m *Message, flags []string) string {
	if len(flags) == 0 && m.keep == "" && (m.rel == "" || strings.HasPrefix(m.rel, "new/")) {
		return "new/" + m.file
	}
	return "cur/" + m.file + infoSuffix(flags, m.keep)
}

func uniqueName(now time.Time) string {
	host, _ := os.Hostname()
	host = strings.NewReplacer("/", "\\057", ":", "\\072").Replace(host)
	return fmt.Sprintf("%d.M%dP%dQ%d.%s", now.Unix(), now.Nanosecond()/1000, os.Getpid(), deliveryCounter.Add(1), host)
}

func (mb *Mailbox) writeMessageLocked(m *Message) error {
	m.file = uniqueName(mb.user.store.now())
	tmp := filepath.Join(mb.dir, "tmp", m.file)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("maildir write: %w", err)
	}
	_, err = f.Write(m.Data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chtimes(tmp, m.InternalDate, m.InternalDate)
	}
	if err == nil {
		m.rel = target(m, m.Flags)
		err = os.Rename(tmp, filepath.Join(mb.dir, m.rel))
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("maildir write: %w", err)
	}
	return nil
}

func (mb *Mailbox) renameForFlagsLocked(m *Message, next []string) error {
	to := target(m, next)
	if to == m.rel {
		return nil
	}
	if err := os.Rename(filepath.Join(mb.dir, m.rel), filepath.Join(mb.dir, to)); err != nil {
		return fmt.Errorf("maildir flags: %w", err)
	}
	m.rel = to
	return nil
}

func (mb *Mailbox) removeFileLocked(m *Message) error {
	if err := os.Remove(filepath.Join(mb.dir, m.rel)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("maildir expunge: %w", err)
	}
	return nil
}

// saveUIDListLocked rewrites the folder's uidlist atomically. Format:
//
//	1 V<uidvalidity> N<uidnext>
//	<uid> <file> [keyword ...]
func (mb *Mailbox) saveUIDListLocked() error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "1 V%d N%d\n", mb.uidValidity, mb.uidNext)
	for _, m := range mb.msgs {
		fmt.Fprintf(&b, "%d %s", m.UID, m.file)
		for _, kw := range keywords(m.Flags) {
			b.WriteByte(' ')
			b.WriteString(kw)
		}
		b.WriteByte('\n')
	}
	path := filepath.Join(mb.dir, uidListName)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b.Bytes(), 0o600); err != nil {
		return fmt.Errorf("maildir uidlist: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("maildir uidlist: %w", err)
	}
	return nil
}

// loadLocked reads the account's Maildir tree, creating it if needed.
func (u *User) loadLocked() error {
	if err := os.MkdirAll(u.dir, 0o700); err != nil {
		return fmt.Errorf("maildir %s: %w", u.dir, err)
	}
	names := []string{Inbox}
	entries, err := os.ReadDir(u.dir)
	if err != nil {
		return fmt.Errorf("maildir %s: %w", u.dir, err)
	}
	for _, e := range entries {
		if e.IsDir() && strings.HasPrefix(e.Name(), ".") && e.Name() != "." && e.Name() != ".." {
			name, err := folderName(e.Name())
			if err != nil {
				return fmt.Errorf("maildir %s: %w", filepath.Join(u.dir, e.Name()), err)
			}
			names = append(names, name)
		}
	}
	for _, name := range names {
		mb := &Mailbox{user: u, name: name, dir: u.folderDir(name), uidNext: 1}
		if err := mb.loadLocked(); err != nil {
			return err
		}
		u.mailboxes[name] = mb
	}
	return nil
}

type uidEntry struct {
	uid      uint32
	keywords []string
}

// loadLocked reads one folder: the uidlist gives UIDs to known files;
// files delivered by others get new UIDs in name order.
func (mb *Mailbox) loadLocked() error {
	for _, sub := range []string{"tmp", "new", "cur"} {
		if err := os.MkdirAll(filepath.Join(mb.dir, sub), 0o700); err != nil {
			return fmt.Errorf("maildir %s: %w", mb.dir, err)
		}
	}
	known := make(map[string]uidEntry)
	listPath := filepath.Join(mb.dir, uidListName)
	if data, err := os.ReadFile(listPath); err == nil {
		v, next, entries, perr := parseUIDList(data)
		if perr != nil {
			return fmt.Errorf("%s: %w", listPath, perr)
		}
		mb.uidValidity, mb.uidNext = v, next
		known = entries
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("maildir %s: %w", mb.dir, err)
	}
	if mb.uidValidity == 0 {
		mb.uidValidity = mb.user.store.nextValidityLocked()
	} else if mb.uidValidity > mb.user.store.lastValidity {
		mb.user.store.lastValidity = mb.uidValidity
	}
	type found struct {
		file  string
		rel   string
		flags []string
		keep  string
	}
	var files []found
	for _, sub := range []string{"new", "cur"} {
		entries, err := os.ReadDir(filepath.Join(mb.dir, sub))
		if err != nil {
			return fmt.Errorf("maildir %s: %w", mb.dir, err)
		}
		for _, e := range entries {
			if e.IsDir() || strings.HasPrefix(e.Name(), ".") {
				continue
			}
			base, info, _ := strings.Cut(e.Name(), ":")
			var flags []string
			var keep []byte
			if letters, ok := strings.CutPrefix(info, "2,"); ok {
				for i := 0; i < len(letters); i++ {
					known := false
					for _, fl := range flagLetters {
						if letters[i] == fl.letter {
							flags, known = append(flags, fl.flag), true
						}
					}
					if !known {
						keep = append(keep, letters[i])
					}
				}
			}
			files = append(files, found{base, sub + "/" + e.Name(), flags, string(keep)})
		}
	}
	sort.Slice(files, func(i, j int) bool { return files[i].file < files[j].file })
	var fresh []*Message
	for _, f := range files {
		path := filepath.Join(mb.dir, f.rel)
		data, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("maildir %s: %w", path, err)
		}
		info, statErr := os.Stat(path)
		date := mb.user.store.now()
		if statErr == nil {
			date = info.ModTime()
		}
		m := &Message{file: f.file, rel: f.rel, keep: f.keep, Data: data, InternalDate: date}
		if e, ok := known[f.file]; ok {
			m.UID = e.uid
			m.Flags = normalizeFlags(append(f.flags, e.keywords...))
			mb.msgs = append(mb.msgs, m)
			if m.UID >= mb.uidNext {
				mb.uidNext = m.UID + 1
			}
		} else {
			m.Flags = normalizeFlags(f.flags)
			fresh = append(fresh, m)
		}
	}
	sort.Slice(mb.msgs, func(i, j int) bool { return mb.msgs[i].UID < mb.msgs[j].UID })
	for _, m := range fresh {
		m.UID = mb.uidNext
		mb.uidNext++
		mb.msgs = append(mb.msgs, m)
	}
	return mb.saveUIDListLocked()
}

func parseUIDList(data []byte) (validity, next uint32, entries map[string]uidEntry, err error) {
	entries = make(map[string]uidEntry)
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	line := 0
	header := false
	for sc.Scan() {
		line++
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		if !header {
			header = true
			if len(fields) != 3 || fields[0] != "1" || !strings.HasPrefix(fields[1], "V") || !strings.HasPrefix(fields[2], "N") {
				return 0, 0, nil, fmt.Errorf("line %d: bad header %q", line, sc.Text())
			}
			v, err1 := strconv.ParseUint(fields[1][1:], 10, 32)
			n, err2 := strconv.ParseUint(fields[2][1:], 10, 32)
			if err1 != nil || err2 != nil || v == 0 || n == 0 {
				return 0, 0, nil, fmt.Errorf("line %d: bad header %q", line, sc.Text())
			}
			validity, next = uint32(v), uint32(n)
			continue
		}
		if len(fields) < 2 {
			return 0, 0, nil, fmt.Errorf("line %d: want \"<uid> <file>\"", line)
		}
		uid, perr := strconv.ParseUint(fields[0], 10, 32)
		if perr != nil || uid == 0 {
			return 0, 0, nil, fmt.Errorf("line %d: bad uid %q", line, fields[0])
		}
		entries[fields[1]] = uidEntry{uid: uint32(uid), keywords: fields[2:]}
	}
	if err := sc.Err(); err != nil {
		return 0, 0, nil, err
	}
	if !header {
		return 0, 0, nil, errors.New("empty uidlist")
	}
	return validity, next, entries, nil
}
