package mailstore

import (
	"fmt"
	"slices"
	"sort"
	"strings"
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

// Mailbox is one folder of an account.
type Mailbox struct {
	user        *User
	name        string
	dir         string // Maildir folder; "" in memory
	uidValidity uint32
	uidNext     uint32
	msgs        []*Message // in UID order, i.e. sequence order
	watchers    map[int]func(Event)
	nextWatch   int
	deleted     bool
}

// Name returns the mailbox name.
func (mb *Mailbox) Name() string {
	mb.user.store.mu.Lock()
	defer mb.user.store.mu.Unlock()
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
	mb.user.store.mu.Lock()
	defer mb.user.store.mu.Unlock()
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

// Messages returns a snapshot of every message in sequence order. The
// slices are copies; Data is shared and read-only.
func (mb *Mailbox) Messages() []Message {
	mb.user.store.mu.Lock()
	defer mb.user.store.mu.Unlock()
	out := make([]Message, len(mb.msgs))
	for i, m := range mb.msgs {
		out[i] = *m
		out[i].Flags = slices.Clone(m.Flags)
	}
	return out
}

// Message returns the message with uid.
func (mb *Mailbox) Message(uid uint32) (Message, error) {
	mb.user.store.mu.Lock()
	defer mb.user.store.mu.Unlock()
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

// Append stores a message with flags and internal date (zero means now)
// and returns its UID. It fails with ErrOverQuota when the account's quota
// would be exceeded.
func (mb *Mailbox) Append(data []byte, flags []string, date time.Time) (uint32, error) {
	mb.user.store.mu.Lock()
	defer mb.user.store.mu.Unlock()
	if mb.deleted {
		return 0, fmt.Errorf("%s: %w", mb.name, ErrNoSuchMailbox)
	}
	u := mb.user
	if u.quota > 0 && u.usageLocked()+int64(len(data)) > u.quota {
		return 0, ErrOverQuota
	}
	return mb.appendLocked(data, flags, date)
}

func (mb *Mailbox) appendLocked(data []byte, flags []string, date time.Time) (uint32, error) {
	if date.IsZero() {
		date = mb.user.store.now()
	}
	m := &Message{
		UID:          mb.uidNext,
		Flags:        normalizeFlags(flags),
		InternalDate: date,
		Data:         slices.Clone(data),
	}
	if mb.dir != "" {
		if err := mb.writeMessageLocked(m); err != nil {
			return 0, err
		}
	}
	mb.uidNext++
	mb.msgs = append(mb.msgs, m)
	if mb.dir != "" {
		if err := mb.saveUIDListLocked(); err != nil {
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
// been expunged by another session).
func (mb *Mailbox) StoreFlags(uids []uint32, op FlagOp, flags []string) (map[uint32][]string, error) {
	mb.user.store.mu.Lock()
	defer mb.user.store.mu.Unlock()
	flags = normalizeFlags(flags)
	out := make(map[uint32][]string, len(uids))
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
			next = normalizeFlags(append(slices.Clone(m.Flags), flags...))
		case FlagsRemove:
			next = slices.DeleteFunc(slices.Clone(m.Flags), func(f string) bool { return containsFold(flags, f) })
		}
		changed := !slices.Equal(next, m.Flags)
		if changed && mb.dir != "" {
			if err := mb.renameForFlagsLocked(m, next); err != nil {
				return out, err
			}
		}
		m.Flags = next
		out[uid] = slices.Clone(next)
		if changed {
			mb.notifyLocked(Event{Kind: EventFlags, UID: uid, SeqNum: uint32(i + 1), Flags: slices.Clone(next)})
		}
	}
	if mb.dir != "" {
		if err := mb.saveUIDListLocked(); err != nil {
			return out, err
		}
	}
	return out, nil
}

// Expunge removes the messages with the given UIDs and returns the UIDs
// actually removed, in ascending order.
func (mb *Mailbox) Expunge(uids []uint32) ([]uint32, error) {
	mb.user.store.mu.Lock()
	defer mb.user.store.mu.Unlock()
	return mb.expungeLocked(uids)
}

func (mb *Mailbox) expungeLocked(uids []uint32) ([]uint32, error) {
	uids = slices.Clone(uids)
	slices.Sort(uids)
	uids = slices.Compact(uids)
	var removed []uint32
	// Walk from the end so that the sequence numbers sent in events stay
	// valid for clients applying them in order (RFC 3501 §7.4.1).
	for k := len(uids) - 1; k >= 0; k-- {
		i, ok := mb.indexLocked(uids[k])
		if !ok {
			continue
		}
		m := mb.msgs[i]
		if mb.dir != "" {
			if err := mb.removeFileLocked(m); err != nil {
				return removed, err
			}
		}
		mb.msgs = slices.Delete(mb.msgs, i, i+1)
		removed = append(removed, m.UID)
		mb.notifyLocked(Event{Kind: EventExpunged, UID: m.UID, SeqNum: uint32(i + 1)})
	}
	if mb.dir != "" && len(removed) > 0 {
		if err := mb.saveUIDListLocked(); err != nil {
			return removed, err
		}
	}
	slices.Sort(removed)
	return removed, nil
}

// UIDValidity returns the mailbox's UIDVALIDITY (RFC 3501 §2.3.1.1).
func (mb *Mailbox) UIDValidity() uint32 {
	mb.user.store.mu.Lock()
	defer mb.user.store.mu.Unlock()
	return mb.uidValidity
}

// Watch registers fn to be told of every change until cancel is called.
// fn runs with the store locked: it must be quick and must not call back
// into the store.
func (mb *Mailbox) Watch(fn func(Event)) (cancel func()) {
	mb.user.store.mu.Lock()
	defer mb.user.store.mu.Unlock()
	if mb.watchers == nil {
		mb.watchers = make(map[int]func(Event))
	}
	id := mb.nextWatch
	mb.nextWatch++
	mb.watchers[id] = fn
	return func() {
		mb.user.store.mu.Lock()
		defer mb.user.store.mu.Unlock()
		delete(mb.watchers, id)
	}
}

func (mb *Mailbox) notifyLocked(ev Event) {
	ev.NumMessages = uint32(len(mb.msgs))
	ids := make([]int, 0, len(mb.watchers))
	for id := range mb.watchers {
		ids = append(ids, id)
	}
	sort.Ints(ids)
	for _, id := range ids {
		mb.watchers[id](ev)
	}
}

// normalizeFlags sorts flags, removes duplicates (system flags compare
// case-insensitively, RFC 3501 §2.3.2) and spells system flags canonically.
func normalizeFlags(flags []string) []string {
	out := make([]string, 0, len(flags))
	for _, f := range flags {
		f = canonicalFlag(f)
		if f == "" || containsFold(out, f) {
			continue
		}
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
