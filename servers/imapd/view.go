package imapd

import (
	"slices"
	"sort"
	"sync"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/maillab/maillab/servers/mailstore"
)

// view is one session's picture of its selected mailbox: the messages the
// client knows, numbered as the client numbers them, and the changes made
// since by anyone (this session, other IMAP sessions, SMTP delivery, POP3
// deletion) that the client has not been told yet (RFC 3501 §7.3.1
// EXISTS, §7.4.1 EXPUNGE, §7.4.2 FETCH).
//
// The mailstore reports every change through Mailbox.Watch, in the order
// it happened, by UID. The view queues them and turns them into responses
// when go-imap polls (after a command, or during IDLE). Keeping the
// client's numbering here, rather than in imapserver.MailboxTracker, is
// what makes three things exact: a watcher registered just before the
// snapshot of SELECT may see changes the snapshot already holds (events
// carry UIDs, so replaying them is idempotent); a session must not be
// told its own flag changes again after STORE (.SILENT included, RFC 3501
// §6.4.6) or after FETCH set \Seen, which the store's events cannot mark
// (so the view compares flags with what the client already knows); and
// several deliveries between two polls announce one EXISTS.
//
// Lock order: the store calls onEvent with its lock held, so v.mu must
// never be held while calling the store or writing to the network.
type view struct {
	mb       *mailstore.Mailbox
	readOnly bool
	cancel   func()        // stops watching
	wake     chan struct{} // signalled (without blocking) on every change

	mu      sync.Mutex
	ready   bool                // the SELECT snapshot is in place
	early   []mailstore.Event   // events seen before ready
	uids    []uint32            // the client's view: sequence number n is uids[n-1]
	maxUID  uint32              // highest UID appended to the view or queued
	known   map[uint32][]string // flags the client knows (or can fetch) per UID
	latest  map[uint32][]string // newest flags from events, until flushed
	pending []change
}

// change is one queued mailbox event.
type change struct {
	kind  mailstore.EventKind
	uid   uint32
	flags []string // for EventAppended
}

// openView selects mb: it starts watching, then takes the snapshot.
func openView(mb *mailstore.Mailbox, readOnly bool) (*view, []mailstore.Message) {
	v := &view{
		mb:       mb,
		readOnly: readOnly,
		wake:     make(chan struct{}, 1),
		known:    make(map[uint32][]string),
		latest:   make(map[uint32][]string),
	}
	v.cancel = mb.Watch(v.onEvent)
	msgs := mb.Messages()
	v.mu.Lock()
	defer v.mu.Unlock()
	v.uids = make([]uint32, len(msgs))
	for i, m := range msgs {
		v.uids[i] = m.UID
		v.known[m.UID] = m.Flags
		v.maxUID = max(v.maxUID, m.UID)
	}
	v.ready = true
	for _, ev := range v.early {
		v.queueLocked(ev)
	}
	v.early = nil
	return v, msgs
}

func (v *view) close() { v.cancel() }

// onEvent is the mailstore watcher. It runs with the store locked: it
// only queues.
func (v *view) onEvent(ev mailstore.Event) {
	v.mu.Lock()
	if !v.ready {
		v.early = append(v.early, ev)
	} else {
		v.queueLocked(ev)
	}
	v.mu.Unlock()
	select {
	case v.wake <- struct{}{}:
	default:
	}
}

func (v *view) queueLocked(ev mailstore.Event) {
	switch ev.Kind {
	case mailstore.EventAppended:
		if ev.UID <= v.maxUID {
			return // already in the snapshot
		}
		v.maxUID = ev.UID
		v.pending = append(v.pending, change{kind: ev.Kind, uid: ev.UID, flags: slices.Clone(ev.Flags)})
	case mailstore.EventFlags:
		v.latest[ev.UID] = slices.Clone(ev.Flags)
		v.pending = append(v.pending, change{kind: ev.Kind, uid: ev.UID})
	case mailstore.EventExpunged, mailstore.EventDeleted:
		v.pending = append(v.pending, change{kind: ev.Kind, uid: ev.UID})
	}
}

// update is one response a flush writes.
type update struct {
	exists  uint32 // EXISTS with this count, if > 0 ...
	expunge uint32 // ... or EXPUNGE of this sequence number, if > 0 ...
	seq     uint32 // ... or FETCH (UID FLAGS) of this message
	uid     uint32
	flags   []string
}

// flush tells the client the queued changes, in the order they happened.
// With allowExpunge false (during FETCH, STORE and SEARCH, RFC 3501
// §7.4.1) expunges stay queued and the client keeps its numbering; other
// changes still go out.
func (v *view) flush(w *imapserver.UpdateWriter, allowExpunge bool) error {
	for _, u := range v.takeUpdates(allowExpunge) {
		var err error
		switch {
		case u.exists > 0:
			err = w.WriteNumMessages(u.exists)
		case u.expunge > 0:
			err = w.WriteExpunge(u.expunge)
		default:
			err = w.WriteMessageFlags(u.seq, imap.UID(u.uid), imapFlags(u.flags))
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// takeUpdates applies the queue to the client's view and returns the
// responses that tell the client so.
func (v *view) takeUpdates(allowExpunge bool) []update {
	v.mu.Lock()
	defer v.mu.Unlock()
	var (
		out     []update
		kept    []change
		grown   bool // messages appended to the view but not announced yet
		flushEx = func() {
			if grown {
				out = append(out, update{exists: uint32(len(v.uids))})
				grown = false
			}
		}
	)
	doomed := make(map[uint32]bool) // flags of these do not matter any more
	for _, ch := range v.pending {
		if ch.kind == mailstore.EventExpunged {
			doomed[ch.uid] = true
		}
	}
	for _, ch := range v.pending {
		switch ch.kind {
		case mailstore.EventAppended:
			v.uids = append(v.uids, ch.uid)
			v.known[ch.uid] = ch.flags
			grown = true
		case mailstore.EventFlags:
			i, ok := v.indexLocked(ch.uid)
			flags, changed := v.latest[ch.uid]
			delete(v.latest, ch.uid)
			if !ok || !changed || doomed[ch.uid] || slices.Equal(flags, v.known[ch.uid]) {
				continue
			}
			flushEx() // the client must know the message first
			v.known[ch.uid] = flags
			out = append(out, update{seq: uint32(i + 1), uid: ch.uid, flags: flags})
		case mailstore.EventExpunged:
			if !allowExpunge {
				kept = append(kept, ch)
				continue
			}
			i, ok := v.indexLocked(ch.uid)
			if !ok {
				continue
			}
			flushEx()
			out = append(out, update{expunge: uint32(i + 1)})
			v.uids = slices.Delete(v.uids, i, i+1)
			delete(v.known, ch.uid)
		case mailstore.EventDeleted:
			// Another session deleted the selected mailbox: to this
			// client every message is gone.
			if !allowExpunge {
				kept = append(kept, ch)
				continue
			}
			flushEx()
			for i := len(v.uids); i > 0; i-- {
				out = append(out, update{expunge: uint32(i)})
			}
			v.uids = nil
			clear(v.known)
		}
	}
	flushEx()
	v.pending = kept
	return out
}

func (v *view) indexLocked(uid uint32) (int, bool) {
	return slices.BinarySearch(v.uids, uid)
}

// target is a message a command names, as the client numbers it.
type target struct {
	seq uint32
	uid uint32
}

// resolve turns a sequence set or UID set into the messages of the
// client's view it names, in ascending order. A message the client has
// not been told about yet (no EXISTS) is not named even by its UID: its
// FETCH response would carry a sequence number the client does not know. "*" is the last message of
// the view (RFC 3501 §6.4.8, §9 seq-number); numbers beyond the view name
// nothing. The SEARCHRES marker "$" names nothing: SEARCHRES is not
// offered.
func (v *view) resolve(set imap.NumSet) []target {
	v.mu.Lock()
	defer v.mu.Unlock()
	var out []target
	switch set := set.(type) {
	case imap.SeqSet:
		n := uint32(len(v.uids))
		static := staticRanges(seqRanges(set), n)
		for i, uid := range v.uids {
			if inRanges(static, uint32(i+1)) {
				out = append(out, target{seq: uint32(i + 1), uid: uid})
			}
		}
	case imap.UIDSet:
		if imap.IsSearchRes(set) {
			return nil
		}
		var last uint32
		if len(v.uids) > 0 {
			last = v.uids[len(v.uids)-1]
		}
		static := staticRanges(uidRanges(set), last)
		for i, uid := range v.uids {
			if inRanges(static, uid) {
				out = append(out, target{seq: uint32(i + 1), uid: uid})
			}
		}
	}
	return out
}

// uidRangeSet returns the ranges of a UID set with "*" replaced by the
// view's last UID, for UID EXPUNGE.
func (v *view) uidRangeSet(set imap.UIDSet) [][2]uint32 {
	v.mu.Lock()
	defer v.mu.Unlock()
	var last uint32
	if len(v.uids) > 0 {
		last = v.uids[len(v.uids)-1]
	}
	return staticRanges(uidRanges(set), last)
}

// setKnown records flags the client has just been told (or has asked
// for with STORE .SILENT), so the store's echo of the change is not sent
// again.
func (v *view) setKnown(flags map[uint32][]string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	for uid, f := range flags {
		if _, ok := v.indexLocked(uid); ok {
			v.known[uid] = f
		}
	}
}

// flagsInUse returns the system flags and every keyword of msgs, for the
// FLAGS response of SELECT (RFC 3501 §7.2.6).
func flagsInUse(msgs []mailstore.Message) []imap.Flag {
	set := map[string]bool{}
	for _, f := range []string{mailstore.FlagAnswered, mailstore.FlagFlagged, mailstore.FlagDeleted, mailstore.FlagSeen, mailstore.FlagDraft} {
		set[f] = true
	}
	for _, m := range msgs {
		for _, f := range m.Flags {
			set[f] = true
		}
	}
	out := make([]string, 0, len(set))
	for f := range set {
		out = append(out, f)
	}
	sort.Strings(out)
	return imapFlags(out)
}

func imapFlags(flags []string) []imap.Flag {
	out := make([]imap.Flag, len(flags))
	for i, f := range flags {
		out[i] = imap.Flag(f)
	}
	return out
}

func seqRanges(set imap.SeqSet) [][2]uint32 {
	out := make([][2]uint32, len(set))
	for i, r := range set {
		out[i] = [2]uint32{r.Start, r.Stop}
	}
	return out
}

func uidRanges(set imap.UIDSet) [][2]uint32 {
	out := make([][2]uint32, len(set))
	for i, r := range set {
		out[i] = [2]uint32{uint32(r.Start), uint32(r.Stop)}
	}
	return out
}

// staticRanges replaces "*" (0 in go-imap's sets) by last and orders each
// range: "559:*" includes the last message even when 559 is beyond it
// (RFC 3501 §6.4.8).
func staticRanges(ranges [][2]uint32, last uint32) [][2]uint32 {
	out := make([][2]uint32, len(ranges))
	for i, r := range ranges {
		if r[0] == 0 {
			r[0] = last
		}
		if r[1] == 0 {
			r[1] = last
		}
		if r[0] > r[1] {
			r[0], r[1] = r[1], r[0]
		}
		out[i] = r
	}
	return out
}

func inRanges(ranges [][2]uint32, n uint32) bool {
	for _, r := range ranges {
		if n >= r[0] && n <= r[1] {
			return true
		}
	}
	return false
}
