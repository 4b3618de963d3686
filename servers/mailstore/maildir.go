package mailstore

// Maildir persistence (https://cr.yp.to/proto/maildir.html, with the
// Maildir++ folder layout): each account is a directory; INBOX is its
// cur/new/tmp, other mailboxes are "."-prefixed sub-directories. Messages
// are written to tmp/ and renamed into new/ (no flags) or cur/ with the
// ":2,<flags>" suffix. IMAP UIDs and keywords, which Maildir does not keep,
// live in a small "maillab-uidlist" file per folder, in the spirit of
// Dovecot's dovecot-uidlist: a snapshot followed by a journal of records
// appended since, compacted into a new snapshot when the store opens and
// closes and whenever the journal outgrows the snapshot.
//
// Durability of a delivery (what a 250 after DATA promises): the message
// is written to tmp/ and fsynced, renamed into new/ (or cur/), the
// directory is fsynced, then the uidlist record is appended and fsynced.
// A crash at any point loses no message file: a file without a uidlist
// record gets a new UID at the next start.

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

const (
	uidListName = "maillab-uidlist"
	lockName    = "maillab.lock"
	// maxUIDListLine bounds one uidlist line as read; the keyword limits
	// keep lines written now far below it. A longer line (left by an
	// older maillab) keeps its UID and loses its keywords.
	maxUIDListLine = 1 << 20
	// compactSlack is how many journal records beyond the number of
	// messages trigger a compaction: with it, compaction costs O(1)
	// amortized per record.
	compactSlack = 1024
)

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

// lockDir takes an exclusive flock on the store directory's lock file and
// writes this process's pid into it. When another Store holds it, the
// error names the pid written there.
func lockDir(dir string) (*os.File, error) {
	path := filepath.Join(dir, lockName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("store lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder, _ := io.ReadAll(io.LimitReader(f, 64))
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			pid := strings.TrimSpace(string(holder))
			if pid == "" {
				pid = "unknown"
			}
			return nil, fmt.Errorf("store directory %s is in use by process %s (lock %s): stop that lab or use another --store: %w", dir, pid, path, ErrStoreLocked)
		}
		return nil, fmt.Errorf("store lock %s: %w", path, err)
	}
	// The pid is for the message a second lab shows; the lock holds
	// without it.
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return f, nil
}

// syncDir fsyncs a directory, making the renames and creations in it
// durable (rename(2) alone survives a crash only once the directory is
// on disk).
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
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
	if err := syncDir(filepath.Dir(filepath.Join(mb.dir, m.rel))); err != nil {
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

// saveUIDListLocked writes a compacted uidlist (a snapshot without
// journal) durably: a temporary file, fsync, rename, fsync of the folder.
// Format, one record a line:
//
//	1 V<uidvalidity> N<uidnext>
//	<uid> <file> [keyword ...]
//
// Journal records appended later have the second form; for a file, the
// last record wins.
func (mb *Mailbox) saveUIDListLocked() error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "1 V%d N%d\n", mb.uidValidity, mb.uidNext)
	for _, m := range mb.msgs {
		writeRecord(&b, m)
	}
	path := filepath.Join(mb.dir, uidListName)
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("maildir uidlist: %w", err)
	}
	_, err = f.Write(b.Bytes())
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err == nil {
		err = syncDir(mb.dir)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("maildir uidlist: %w", err)
	}
	mb.journaled = 0
	return nil
}

func writeRecord(b *bytes.Buffer, m *Message) {
	fmt.Fprintf(b, "%d %s", m.UID, m.file)
	for _, kw := range keywords(m.Flags) {
		b.WriteByte(' ')
		b.WriteString(kw)
	}
	b.WriteByte('\n')
}

// journalLocked appends m's record to the uidlist and fsyncs it: O(1) per
// delivery or keyword change, where rewriting the list was O(messages).
// When the journal has grown past the snapshot it compacts the list.
func (mb *Mailbox) journalLocked(m *Message) error {
	if mb.journaled > len(mb.msgs)+compactSlack {
		return mb.saveUIDListLocked()
	}
	path := filepath.Join(mb.dir, uidListName)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return mb.saveUIDListLocked() // removed behind our back: write it whole
	}
	if err != nil {
		return fmt.Errorf("maildir uidlist: %w", err)
	}
	var b bytes.Buffer
	writeRecord(&b, m)
	_, err = f.Write(b.Bytes())
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("maildir uidlist: %w", err)
	}
	mb.journaled++
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
// files delivered by others get new UIDs in name order. A damaged uidlist
// is repaired, never a reason to refuse: every message file is loaded,
// and what was wrong is reported through the store's Repairs.
func (mb *Mailbox) loadLocked() error {
	for _, sub := range []string{"tmp", "new", "cur"} {
		if err := os.MkdirAll(filepath.Join(mb.dir, sub), 0o700); err != nil {
			return fmt.Errorf("maildir %s: %w", mb.dir, err)
		}
	}
	store := mb.user.store
	listPath := filepath.Join(mb.dir, uidListName)
	list := uidList{entries: map[string]uidEntry{}}
	switch f, err := os.Open(listPath); {
	case err == nil:
		list = parseUIDList(f)
		f.Close()
		for _, p := range list.problems {
			store.repairLocked(listPath, p)
		}
		if list.validity == 0 {
			store.repairLocked(listPath, "no valid header: the mailbox gets a new UIDVALIDITY, so clients resynchronize")
		}
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("maildir %s: %w", mb.dir, err)
	}
	mb.uidValidity, mb.uidNext = list.validity, max(list.next, 1)
	if mb.uidValidity == 0 {
		mb.uidValidity = store.nextValidityLocked()
	} else if mb.uidValidity > store.lastValidity {
		store.lastValidity = mb.uidValidity
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
	// Every UID a record names was handed out: none may be handed out
	// again (RFC 3501 §2.3.1.1), even if its file is gone.
	for _, e := range list.entries {
		if e.uid >= mb.uidNext && e.uid < ^uint32(0) {
			mb.uidNext = e.uid + 1
		}
	}
	taken := make(map[uint32]string)
	var fresh []*Message
	for _, f := range files {
		path := filepath.Join(mb.dir, f.rel)
		data, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("maildir %s: %w", path, err)
		}
		info, statErr := os.Stat(path)
		date := store.now()
		if statErr == nil {
			date = info.ModTime()
		}
		m := &Message{file: f.file, rel: f.rel, keep: f.keep, Data: data, InternalDate: date}
		mb.user.used.Add(int64(len(data)))
		e, ok := list.entries[f.file]
		if ok && taken[e.uid] != "" {
			store.repairLocked(listPath, fmt.Sprintf("UID %d is given to both %s and %s: %s gets a new UID", e.uid, taken[e.uid], f.file, f.file))
			ok = false
		}
		if ok {
			taken[e.uid] = f.file
			m.UID = e.uid
			m.Flags = normalizeFlags(append(f.flags, e.keywords...))
			mb.msgs = append(mb.msgs, m)
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
	for _, m := range mb.msgs {
		mb.countKeywordsLocked(m.Flags, 1)
	}
	return mb.saveUIDListLocked()
}

// uidList is a parsed uidlist file.
type uidList struct {
	validity, next uint32 // 0 when the header is missing or damaged
	entries        map[string]uidEntry
	// records counts the entry lines read, journal included.
	records int
	// problems says what was wrong, one line each: damaged lines are
	// skipped (or, when over-long, kept without their keywords), an
	// interrupted last record is dropped.
	problems []string
}

// parseUIDList reads a uidlist leniently: it never fails, it reports. The
// last record of a file wins (the journal appends records). A last line
// without its newline is the record a crash interrupted: it is dropped.
func parseUIDList(r io.Reader) uidList {
	l := uidList{entries: make(map[string]uidEntry)}
	br := bufio.NewReaderSize(r, 64<<10)
	bad := func(line int, format string, args ...any) {
		l.problems = append(l.problems, fmt.Sprintf("line %d: ", line)+fmt.Sprintf(format, args...))
	}
	header := false
	for line := 1; ; line++ {
		text, long, complete, err := readLine(br, maxUIDListLine)
		if err != nil && len(text) == 0 && !long {
			if err != io.EOF {
				bad(line, "read: %v; the rest is ignored", err)
			}
			break
		}
		if !complete {
			bad(line, "interrupted record %.40q dropped", text)
			break
		}
		fields := strings.Fields(string(text))
		if !header {
			header = true
			if v, n, ok := parseHeader(fields); ok && !long {
				l.validity, l.next = v, n
				continue
			}
			bad(line, "bad header %.60q", text)
			if len(fields) < 2 || !isUID(fields[0]) || strings.HasPrefix(fields[1], "V") || strings.HasPrefix(fields[1], "N") {
				continue // a damaged header, not a record
			}
			// Not a header but perhaps a record: fall through.
		}
		if len(fields) == 0 {
			continue
		}
		if len(fields) < 2 {
			bad(line, "want \"<uid> <file>\", got %.60q; skipped", text)
			continue
		}
		uid, perr := strconv.ParseUint(fields[0], 10, 32)
		if perr != nil || uid == 0 {
			bad(line, "bad uid %.20q; skipped", fields[0])
			continue
		}
		e := uidEntry{uid: uint32(uid)}
		if long {
			bad(line, "longer than %d bytes: UID %d of %s kept, its keywords dropped", maxUIDListLine, uid, fields[1])
		} else if len(fields) > 2 {
			e.keywords = fields[2:]
		}
		l.entries[fields[1]] = e
		l.records++
	}
	if !header {
		l.problems = append(l.problems, "empty uidlist")
	}
	return l
}

func parseHeader(fields []string) (validity, next uint32, ok bool) {
	if len(fields) != 3 || fields[0] != "1" || !strings.HasPrefix(fields[1], "V") || !strings.HasPrefix(fields[2], "N") {
		return 0, 0, false
	}
	v, err1 := strconv.ParseUint(fields[1][1:], 10, 32)
	n, err2 := strconv.ParseUint(fields[2][1:], 10, 32)
	if err1 != nil || err2 != nil || v == 0 || n == 0 {
		return 0, 0, false
	}
	return uint32(v), uint32(n), true
}

func isUID(s string) bool {
	n, err := strconv.ParseUint(s, 10, 32)
	return err == nil && n > 0
}

// readLine returns the next line without its line end. A line longer than
// limit comes back cut at limit with long set (the rest is read and
// thrown away, so memory stays bounded). complete is false when the input
// ended before the newline.
func readLine(br *bufio.Reader, limit int) (line []byte, long, complete bool, err error) {
	for {
		chunk, err := br.ReadSlice('\n')
		content := bytes.TrimSuffix(chunk, []byte("\n"))
		room := max(limit-len(line), 0)
		if len(content) > room {
			long = true
			content = content[:room]
		}
		line = append(line, content...)
		switch {
		case err == nil:
			line = bytes.TrimRight(line, "\r\n")
			return line, long, true, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		default:
			return line, long, false, err
		}
	}
}
