package mailstore

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// Standard IMAP system flags (RFC 3501 §2.3.2).
const (
	FlagSeen     = `\Seen`
	FlagAnswered = `\Answered`
	FlagFlagged  = `\Flagged`
	FlagDeleted  = `\Deleted`
	FlagDraft    = `\Draft`
)

// Message is a snapshot of one stored message. Data must not be modified.
type Message struct {
	UID          uint32
	Flags        []string // sorted, no duplicates
	InternalDate time.Time
	Data         []byte

	file string // Maildir base name without the ":2," info; "" in memory
	rel  string // the file's current path in the folder ("new/x", "cur/x:2,S")
	keep string // info letters of other programs (e.g. Dovecot keywords), kept
}

// Size returns the message size in octets.
func (m *Message) Size() int64 { return int64(len(m.Data)) }

// EventKind says what changed in a mailbox.
type EventKind int

// Kinds of Event.
const (
	// EventAppended: a message was added at the end (SeqNum = its number).
	EventAppended EventKind = iota + 1
	// EventExpunged: the message at SeqNum was removed; later ones moved down.
	EventExpunged
	// EventFlags: the flags of the message at SeqNum changed.
	EventFlags
	// EventDeleted: the mailbox itself was deleted.
	EventDeleted
)

// Event describes one change, so that IMAP sessions that have the mailbox
// selected can send EXISTS, EXPUNGE and FETCH FLAGS updates.
type Event struct {
	Kind        EventKind
	UID         uint32
	SeqNum      uint32   // 1-based, valid at the time of the event
	NumMessages uint32   // messages in the mailbox after the event
	Flags       []string // for EventFlags and EventAppended
}

// Mailbox is one folder of an account. Its own lock guards its messages,
// so work on one mailbox (a delivery's fsync, a STORE) never waits for
// another mailbox. Lock order: Store.mu before Mailbox.mu; no code holds
// two mailbox locks except RenameMailbox of INBOX, which locks INBOX and
// then the new mailbox nobody else can see yet.
type Mailbox struct {
	mu          sync.Mutex
	user        *User
	name        string
	dir         string // Maildir folder; "" in memory
	uidValidity uint32
	uidNext     uint32
	msgs        []*Message // in UID order, i.e. sequence order
	// keywords counts, per lower-case keyword, the messages that have it:
	// the mailbox's keyword set, bounded by Limits.KeywordsPerMailbox.
	keywords  map[string]int
	watchers  map[int]func(Event)
	nextWatch int
	deleted   bool
	// journaled counts the uidlist records appended since the last
	// compaction (see maildir.go).
	journaled int
}

// Name returns the mailbox name.
func (mb *Mailbox) Name() string {
	mb.mu.Lock()
	defer mb.mu.Unlock()
	return mb.name
}

// Status is a summary of a mailbox (RFC 3501 §6.3.10).
type Status struct {
	Messages    uint32
	Recent      uint32
	Unseen      uint32
	UIDNext     uint32
	UIDValidity uint32
	Size        int64
	Deleted     uint32
	// FirstUnseen is the sequence number of the first message without
	// \Seen; 0 if every message is seen.
	FirstUnseen uint32
}

// Status returns counts and UID data.
func (mb *Mailbox) Status() Status {
	mb.mu.Lock()
	defer mb.mu.Unlock()
	st := Status{Messages: uint32(len(mb.msgs)), UIDNext: mb.uidNext, UIDValidity: mb.uidValidity}
	for i, m := range mb.msgs {
		st.Size += int64(len(m.Data))
		if !slices.Contains(m.Flags, FlagSeen) {
			st.Unseen++
			if st.FirstUnseen == 0 {
				st.FirstUnseen = uint32(i + 1)
			}
		}
		if slices.Contains(m.Flags, FlagDeleted) {
			st.Deleted++
		}
	}
	return st
}

// Keywords returns the keywords in use in the mailbox, sorted, each in the
// spelling of one message that has it.
func (mb *Mailbox) Keywords() []string {
	mb.mu.Lock()
	defer mb.mu.Unlock()
	seen := make(map[string]string, len(mb.keywords))
	for _, m := range mb.msgs {
		for _, f := range m.Flags {
			if isKeyword(f) {
				if _, ok := seen[strings.ToLower(f)]; !ok {
					seen[strings.ToLower(f)] = f
				}
			}
		}
	}
	out := make([]string, 0, len(seen))
	for _, f := range seen {
		out = append(out, f)
	}
	sort.Strings(out)
	return out
}

// Messages returns a snapshot of every message in sequence order. The
// slices are copies; Data is shared and read-only.
func (mb *Mailbox) Messages() []Message {
	mb.mu.Lock()
	defer mb.mu.Unlock()
	out := make([]Message, len(mb.msgs))
	for i, m := range mb.msgs {
		out[i] = *m
		out[i].Flags = slices.Clone(m.Flags)
	}
	return out
}

// Message returns the message with uid.
func (mb *Mailbox) Message(uid uint32) (Message, error) {
	mb.mu.Lock()
	defer mb.mu.Unlock()
	i, ok := mb.indexLocked(uid)
	if !ok {
		return Message{}, fmt.Errorf("uid %d: %w", uid, ErrNoSuchMessage)
	}
	m := *mb.msgs[i]
	m.Flags = slices.Clone(m.Flags)
	return m, nil
}

func (mb *Mailbox) indexLocked(uid uint32) (int, bool) {
	return sort.Find(len(mb.msgs), func(i int) int {
		switch {
		case uid < mb.msgs[i].UID:
			return -1
		case uid > mb.msgs[i].UID:
			return 1
		}
		return 0
	})
}

// Append stores a copy of a message with flags and internal date (zero
// means now) and returns its UID. It fails with ErrOverQuota when the
// account's quota would be exceeded and with ErrKeywordLimit when the
// flags break a keyword limit.
func (mb *Mailbox) Append(data []byte, flags []string, date time.Time) (uint32, error) {
	return mb.AppendOwned(slices.Clone(data), flags, date)
}

// AppendOwned is Append without the copy: the store keeps data itself, so
// the caller must never modify it afterwards. The same data may be handed
// to several mailboxes (one SMTP message to several recipients).
func (mb *Mailbox) AppendOwned(data []byte, flags []string, date time.Time) (uint32, error) {
	mb.mu.Lock()
	defer mb.mu.Unlock()
	if mb.deleted {
		return 0, fmt.Errorf("%s: %w", mb.name, ErrNoSuchMailbox)
	}
	flags = normalizeFlags(flags)
	if err := mb.checkKeywordsLocked(flags, keywords(flags)); err != nil {
		return 0, err
	}
	u := mb.user
	if !u.reserve(int64(len(data))) {
		return 0, ErrOverQuota
	}
	uid, err := mb.appendLocked(data, flags, date)
	if err != nil {
		u.used.Add(-int64(len(data)))
	}
	return uid, err
}

// appendLocked stores data (owned by the mailbox from now on) with
// normalized flags. The caller has counted its size in the user's usage.
func (mb *Mailbox) appendLocked(data []byte, flags []string, date time.Time) (uint32, error) {
	if date.IsZero() {
		date = mb.user.store.now()
	}
	m := &Message{
		UID:          mb.uidNext,
		Flags:        flags,
		InternalDate: date,
		Data:         data,
	}
	if mb.dir != "" {
		if err := mb.writeMessageLocked(m); err != nil {
			return 0, err
		}
	}
	mb.uidNext++
	mb.msgs = append(mb.msgs, m)
	mb.countKeywordsLocked(m.Flags, 1)
	if mb.dir != "" {
		if err := mb.journalLocked(m); err != nil {
			return 0, err
		}
	}
	mb.notifyLocked(Event{Kind: EventAppended, UID: m.UID, SeqNum: uint32(len(mb.msgs)), Flags: slices.Clone(m.Flags)})
	return m.UID, nil
}

// FlagOp says how StoreFlags changes flags (RFC 3501 §6.4.6).
type FlagOp int

// Flag operations.
const (
	FlagsSet FlagOp = iota
	FlagsAdd
	FlagsRemove
)

// StoreFlags changes the flags of the messages with the given UIDs and
// returns their new flags by UID. Unknown UIDs are ignored (they may have
// been expunged by another session). When the change would break a
// keyword limit nothing changes and the error wraps ErrKeywordLimit.
func (mb *Mailbox) StoreFlags(uids []uint32, op FlagOp, flags []string) (map[uint32][]string, error) {
	mb.mu.Lock()
	defer mb.mu.Unlock()
	flags = normalizeFlags(flags)
	type change struct {
		i    int
		next []string
	}
	changes := make([]change, 0, len(uids))
	var drop map[string]bool
	if op == FlagsRemove {
		drop = make(map[string]bool, len(flags))
		for _, f := range flags {
			drop[strings.ToLower(f)] = true
		}
	}
	for _, uid := range uids {
		i, ok := mb.indexLocked(uid)
		if !ok {
			continue
		}
		m := mb.msgs[i]
		var next []string
		switch op {
		case FlagsSet:
			next = slices.Clone(flags)
		case FlagsAdd:
			next = mergeFlags(m.Flags, flags)
		case FlagsRemove:
			next = slices.DeleteFunc(slices.Clone(m.Flags), func(f string) bool { return drop[strings.ToLower(f)] })
		}
		changes = append(changes, change{i, next})
	}
	// Check every limit before changing anything, so a refused STORE
	// leaves the mailbox as it was.
	if op != FlagsRemove {
		added := keywords(flags)
		for _, c := range changes {
			if err := mb.checkKeywordsLocked(c.next, added); err != nil {
				return nil, err
			}
		}
	}
	out := make(map[uint32][]string, len(changes))
	for _, c := range changes {
		m := mb.msgs[c.i]
		changed := !slices.Equal(c.next, m.Flags)
		if changed && mb.dir != "" {
			if err := mb.renameForFlagsLocked(m, c.next); err != nil {
				return out, err
			}
		}
		kwChanged := changed && !slices.Equal(keywords(c.next), keywords(m.Flags))
		if changed {
			mb.countKeywordsLocked(m.Flags, -1)
			mb.countKeywordsLocked(c.next, 1)
		}
		m.Flags = c.next
		out[m.UID] = slices.Clone(c.next)
		if kwChanged && mb.dir != "" {
			// System flags live in the file name; only keywords need
			// a uidlist record.
			if err := mb.journalLocked(m); err != nil {
				return out, err
			}
		}
		if changed {
			mb.notifyLocked(Event{Kind: EventFlags, UID: m.UID, SeqNum: uint32(c.i + 1), Flags: slices.Clone(c.next)})
		}
	}
	return out, nil
}

// Expunge removes the messages with the given UIDs and returns the UIDs
// actually removed, in ascending order.
func (mb *Mailbox) Expunge(uids []uint32) ([]uint32, error) {
	mb.mu.Lock()
	defer mb.mu.Unlock()
	return mb.expungeLocked(uids)
}

// shrunk returns msgs in a smaller array when it uses under a quarter of
// its capacity: a mailbox that held 20,000 messages and was emptied would
// otherwise keep the array of 20,000 pointers for good.
func shrunk(msgs []*Message) []*Message {
	if cap(msgs) <= 64 || len(msgs) >= cap(msgs)/4 {
		return msgs
	}
	if len(msgs) == 0 {
		return nil
	}
	return append(make([]*Message, 0, 2*len(msgs)), msgs...)
}

func (mb *Mailbox) expungeLocked(uids []uint32) ([]uint32, error) {
	uids = slices.Clone(uids)
	slices.Sort(uids)
	uids = slices.Compact(uids)
	var removed []uint32
	gone := make(map[*Message]bool)
	var err error
	// Walk from the end so that the sequence numbers sent in events stay
	// valid for clients applying them in order (RFC 3501 §7.4.1); the
	// slice is compacted once at the end, not once per message.
	for k := len(uids) - 1; k >= 0; k-- {
		i, ok := mb.indexLocked(uids[k])
		if !ok {
			continue
		}
		m := mb.msgs[i]
		if mb.dir != "" {
			if err = mb.removeFileLocked(m); err != nil {
				break
			}
		}
		gone[m] = true
		mb.countKeywordsLocked(m.Flags, -1)
		mb.user.used.Add(-int64(len(m.Data)))
		removed = append(removed, m.UID)
		mb.notifyLocked(Event{Kind: EventExpunged, UID: m.UID, SeqNum: uint32(i + 1), NumMessages: uint32(len(mb.msgs) - len(gone))})
	}
	if len(gone) > 0 {
		mb.msgs = slices.DeleteFunc(mb.msgs, func(m *Message) bool { return gone[m] })
		mb.msgs = shrunk(mb.msgs)
	}
	slices.Sort(removed)
	return removed, err
}

// UIDValidity returns the mailbox's UIDVALIDITY (RFC 3501 §2.3.1.1).
func (mb *Mailbox) UIDValidity() uint32 {
	mb.mu.Lock()
	defer mb.mu.Unlock()
	return mb.uidValidity
}

// Watch registers fn to be told of every change until cancel is called.
// fn runs with the mailbox locked: it must be quick and must not call back
// into the store.
func (mb *Mailbox) Watch(fn func(Event)) (cancel func()) {
	mb.mu.Lock()
	defer mb.mu.Unlock()
	if mb.watchers == nil {
		mb.watchers = make(map[int]func(Event))
	}
	id := mb.nextWatch
	mb.nextWatch++
	mb.watchers[id] = fn
	return func() {
		mb.mu.Lock()
		defer mb.mu.Unlock()
		delete(mb.watchers, id)
	}
}

// notifyLocked tells the watchers of ev. NumMessages is the current
// number of messages, except for EventExpunged, whose sender sets it
// (expungeLocked removes messages from the slice after the events).
func (mb *Mailbox) notifyLocked(ev Event) {
	if ev.Kind != EventExpunged {
		ev.NumMessages = uint32(len(mb.msgs))
	}
	ids := make([]int, 0, len(mb.watchers))
	for id := range mb.watchers {
		ids = append(ids, id)
	}
	sort.Ints(ids)
	for _, id := range ids {
		mb.watchers[id](ev)
	}
}

// checkKeywordsLocked refuses flags for one message when they hold more
// keywords than a message may have, a keyword longer than allowed, or
// when added (keywords being set) would bring new keywords into a
// mailbox that has its fill. RFC 9051 §2.3.2 lets a server refuse new
// keywords; the IMAP server answers NO [LIMIT] (RFC 5530 §3).
func (mb *Mailbox) checkKeywordsLocked(flags, added []string) error {
	lim := mb.user.store.limits
	n := 0
	for _, f := range flags {
		if !isKeyword(f) {
			continue
		}
		n++
		if lim.KeywordLength > 0 && len(f) > lim.KeywordLength {
			return fmt.Errorf("%w: a keyword is %d bytes long, the limit is %d", ErrKeywordLimit, len(f), lim.KeywordLength)
		}
	}
	if lim.KeywordsPerMessage > 0 && n > lim.KeywordsPerMessage {
		return fmt.Errorf("%w: a message would have %d keywords, the limit is %d", ErrKeywordLimit, n, lim.KeywordsPerMessage)
	}
	if lim.KeywordsPerMailbox > 0 {
		fresh := 0
		for _, f := range added {
			if mb.keywords[strings.ToLower(f)] == 0 {
				fresh++
			}
		}
		if fresh > 0 && len(mb.keywords)+fresh > lim.KeywordsPerMailbox {
			return fmt.Errorf("%w: the mailbox would have %d keywords, the limit is %d", ErrKeywordLimit, len(mb.keywords)+fresh, lim.KeywordsPerMailbox)
		}
	}
	return nil
}

// countKeywordsLocked adds delta to the count of each keyword in flags.
func (mb *Mailbox) countKeywordsLocked(flags []string, delta int) {
	for _, f := range flags {
		if !isKeyword(f) {
			continue
		}
		if mb.keywords == nil {
			mb.keywords = make(map[string]int)
		}
		k := strings.ToLower(f)
		if mb.keywords[k] += delta; mb.keywords[k] <= 0 {
			delete(mb.keywords, k)
		}
	}
}

func isKeyword(f string) bool { return !strings.HasPrefix(f, `\`) }

// mergeFlags returns the normalized union of two normalized flag lists in
// O(n log n).
func mergeFlags(have, add []string) []string {
	return normalizeFlags(append(slices.Clone(have), add...))
}

// normalizeFlags sorts flags, removes duplicates (flags compare
// case-insensitively, RFC 3501 §2.3.2) and spells system flags
// canonically. It is O(n log n): a set, not a scan per flag.
func normalizeFlags(flags []string) []string {
	out := make([]string, 0, len(flags))
	seen := make(map[string]bool, len(flags))
	for _, f := range flags {
		f = canonicalFlag(f)
		if f == "" || seen[strings.ToLower(f)] {
			continue
		}
		seen[strings.ToLower(f)] = true
		out = append(out, f)
	}
	sort.Strings(out)
	return out
}

func canonicalFlag(f string) string {
	for _, sys := range []string{FlagSeen, FlagAnswered, FlagFlagged, FlagDeleted, FlagDraft, `\Recent`} {
		if strings.EqualFold(f, sys) {
			if sys == `\Recent` {
				return "" // \Recent cannot be stored by clients
			}
			return sys
		}
	}
	return f
}

func containsFold(list []string, s string) bool {
	return slices.ContainsFunc(list, func(x string) bool { return strings.EqualFold(x, s) })
}
