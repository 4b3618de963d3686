package imapd

import (
	"io"
	"slices"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/maillab/maillab/servers/mailstore"
)

// errExpungeIssued answers a command that names messages another session
// has expunged and this client has not been told yet (RFC 2180 §4.1.2,
// RFC 5530 EXPUNGEISSUED).
var errExpungeIssued = &imap.Error{Type: imap.StatusResponseTypeNo, Code: "EXPUNGEISSUED",
	Text: "Some of the requested messages no longer exist"}

// systemFlags are the flags every mailbox accepts (RFC 3501 §2.3.2).
var systemFlags = []imap.Flag{imap.FlagAnswered, imap.FlagFlagged, imap.FlagDeleted, imap.FlagSeen, imap.FlagDraft}

// Select implements imapserver.Session for SELECT and EXAMINE (RFC 3501
// §6.3.1, §6.3.2).
func (s *session) Select(name string, opts *imap.SelectOptions) (*imap.SelectData, error) {
	mb, err := s.mailbox(name, asSource)
	if err != nil {
		return nil, err
	}
	v, msgs := openView(mb, opts.ReadOnly)
	if old := s.setSelected(v); old != nil { // go-imap unselects first
		old.close()
	}
	st := mb.Status()
	data := &imap.SelectData{
		Flags:       flagsInUse(msgs),
		NumMessages: uint32(len(msgs)),
		UIDNext:     imap.UID(st.UIDNext),
		UIDValidity: st.UIDValidity,
	}
	if len(msgs) > 0 && uint32(data.UIDNext) <= msgs[len(msgs)-1].UID {
		data.UIDNext = imap.UID(msgs[len(msgs)-1].UID + 1)
	}
	for i, m := range msgs {
		if !slices.Contains(m.Flags, mailstore.FlagSeen) {
			data.FirstUnseenSeqNum = uint32(i + 1)
			break
		}
	}
	if opts.ReadOnly {
		// EXAMINE: nothing can be changed (RFC 3501 §6.3.2).
		data.PermanentFlags = []imap.Flag{}
	} else {
		data.PermanentFlags = append(slices.Clone(systemFlags), imap.FlagWildcard)
	}
	return data, nil
}

// Unselect implements imapserver.Session for CLOSE and UNSELECT.
func (s *session) Unselect() error {
	if old := s.setSelected(nil); old != nil {
		old.close()
	}
	return nil
}

// messagesByUID returns the store's messages of the targets; missing
// reports targets the store no longer has.
func (s *session) messagesByUID(v *view, targets []target) (msgs map[uint32]*mailstore.Message, missing bool) {
	all := v.mb.Messages()
	msgs = make(map[uint32]*mailstore.Message, len(targets))
	for _, t := range targets {
		i, ok := slices.BinarySearchFunc(all, t.uid, func(m mailstore.Message, uid uint32) int {
			return cmpUint32(m.UID, uid)
		})
		if !ok {
			missing = true
			continue
		}
		msgs[t.uid] = &all[i]
	}
	return msgs, missing
}

func cmpUint32(a, b uint32) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Fetch implements imapserver.Session (RFC 3501 §6.4.5, RFC 3516 BINARY).
// A body section fetched without PEEK sets \Seen, and the response then
// carries the new FLAGS.
func (s *session) Fetch(w *imapserver.FetchWriter, set imap.NumSet, opts *imap.FetchOptions) error {
	v := s.selected()
	targets := v.resolve(set)
	if len(targets) == 0 {
		return nil
	}
	msgs, missing := s.messagesByUID(v, targets)

	seen := map[uint32]bool{} // flags changed by this FETCH
	if !v.readOnly && setsSeen(opts) {
		var uids []uint32
		for _, t := range targets {
			if m := msgs[t.uid]; m != nil && !slices.Contains(m.Flags, mailstore.FlagSeen) {
				uids = append(uids, t.uid)
			}
		}
		if len(uids) > 0 {
			changed, err := v.mb.StoreFlags(uids, mailstore.FlagsAdd, []string{mailstore.FlagSeen})
			if err != nil {
				return s.fail("set \\Seen", err, asSource)
			}
			for uid, flags := range changed {
				msgs[uid].Flags = flags
				seen[uid] = true
			}
			v.setKnown(changed)
		}
	}

	for _, t := range targets {
		m := msgs[t.uid]
		if m == nil {
			continue
		}
		if err := writeFetch(w, t.seq, m, opts, seen[t.uid]); err != nil {
			return err
		}
	}
	if missing {
		return errExpungeIssued
	}
	return nil
}

func setsSeen(opts *imap.FetchOptions) bool {
	for _, bs := range opts.BodySection {
		if !bs.Peek {
			return true
		}
	}
	for _, bs := range opts.BinarySection {
		if !bs.Peek {
			return true
		}
	}
	return false
}

// writeFetch writes the FETCH response of one message. Everything that
// can fail is computed before the response starts.
func writeFetch(w *imapserver.FetchWriter, seq uint32, m *mailstore.Message, opts *imap.FetchOptions, flagsChanged bool) error {
	binaries := make([][]byte, len(opts.BinarySection))
	for i, bs := range opts.BinarySection {
		b, err := binarySection(m.Data, bs.Part, bs.Partial)
		if err != nil {
			return err
		}
		binaries[i] = b
	}
	sizes := make([]uint32, len(opts.BinarySectionSize))
	for i, bs := range opts.BinarySectionSize {
		n, err := binarySize(m.Data, bs.Part)
		if err != nil {
			return err
		}
		sizes[i] = n
	}

	rw := w.CreateMessage(seq) // holds the connection's writer until Close
	if opts.UID {
		rw.WriteUID(imap.UID(m.UID))
	}
	if opts.Flags || flagsChanged {
		rw.WriteFlags(imapFlags(m.Flags))
	}
	if opts.InternalDate {
		rw.WriteInternalDate(m.InternalDate)
	}
	if opts.RFC822Size {
		rw.WriteRFC822Size(m.Size())
	}
	if opts.Envelope {
		rw.WriteEnvelope(envelope(m.Data))
	}
	if opts.BodyStructure != nil {
		rw.WriteBodyStructure(bodyStructure(m.Data))
	}
	for _, bs := range opts.BodySection {
		b := bodySection(m.Data, bs)
		if err := writeLiteral(rw.WriteBodySection(bs, int64(len(b))), b); err != nil {
			rw.Close()
			return err
		}
	}
	for i, bs := range opts.BinarySection {
		if err := writeLiteral(rw.WriteBinarySection(bs, int64(len(binaries[i]))), binaries[i]); err != nil {
			rw.Close()
			return err
		}
	}
	for i, bs := range opts.BinarySectionSize {
		rw.WriteBinarySectionSize(bs, sizes[i])
	}
	return rw.Close()
}

// writeLiteral writes b to a literal writer and closes it.
func writeLiteral(wc io.WriteCloser, b []byte) error {
	_, werr := wc.Write(b)
	cerr := wc.Close()
	if werr != nil {
		return werr
	}
	return cerr
}

// Store implements imapserver.Session (RFC 3501 §6.4.6). Without .SILENT
// the new flags come back as FETCH responses, with the UID for UID STORE.
func (s *session) Store(w *imapserver.FetchWriter, set imap.NumSet, flags *imap.StoreFlags, _ *imap.StoreOptions) error {
	v := s.selected()
	if v.readOnly {
		return errReadOnly
	}
	targets := v.resolve(set)
	if len(targets) == 0 {
		return nil
	}
	uids := make([]uint32, len(targets))
	for i, t := range targets {
		uids[i] = t.uid
	}
	op := mailstore.FlagsSet
	switch flags.Op {
	case imap.StoreFlagsAdd:
		op = mailstore.FlagsAdd
	case imap.StoreFlagsDel:
		op = mailstore.FlagsRemove
	}
	result, err := v.mb.StoreFlags(uids, op, storableFlags(flags.Flags))
	if err != nil {
		return s.fail("store", err, asSource)
	}
	v.setKnown(result)
	_, byUID := set.(imap.UIDSet)
	missing := false
	for _, t := range targets {
		f, ok := result[t.uid]
		if !ok {
			missing = true
			continue
		}
		if flags.Silent {
			continue
		}
		rw := w.CreateMessage(t.seq)
		if byUID {
			rw.WriteUID(imap.UID(t.uid))
		}
		rw.WriteFlags(imapFlags(f))
		if err := rw.Close(); err != nil {
			return err
		}
	}
	if missing {
		return errExpungeIssued
	}
	return nil
}

// Expunge implements imapserver.Session for EXPUNGE, UID EXPUNGE (RFC
// 4315 §2.1) and the silent expunge of CLOSE: it removes the messages
// that have \Deleted now. The EXPUNGE responses come from the poll after
// the command. In a mailbox selected with EXAMINE it removes nothing: CLOSE
// must then succeed silently (RFC 3501 §6.4.2) and go-imap gives no way to
// tell CLOSE from EXPUNGE here.
func (s *session) Expunge(_ *imapserver.ExpungeWriter, uidSet *imap.UIDSet) error {
	v := s.selected()
	if v.readOnly {
		return nil
	}
	var ranges [][2]uint32
	if uidSet != nil {
		ranges = v.uidRangeSet(*uidSet)
	}
	var uids []uint32
	for _, m := range v.mb.Messages() {
		if !slices.Contains(m.Flags, mailstore.FlagDeleted) {
			continue
		}
		if uidSet != nil && !inRanges(ranges, m.UID) {
			continue
		}
		uids = append(uids, m.UID)
	}
	if len(uids) == 0 {
		return nil
	}
	if _, err := v.mb.Expunge(uids); err != nil {
		return s.fail("expunge", err, asSource)
	}
	return nil
}

// Copy implements imapserver.Session (RFC 3501 §6.4.7): flags and
// internal date are kept; COPYUID is returned (RFC 4315 §3). Either every
// message is copied or none.
func (s *session) Copy(set imap.NumSet, dest string) (*imap.CopyData, error) {
	return s.copy(set, dest)
}

// Move implements imapserver.SessionMove (RFC 6851): COPY, then expunge
// the originals. The untagged COPYUID comes first; the EXPUNGE responses
// follow from the poll after the command (RFC 6851 §4.3).
func (s *session) Move(w *imapserver.MoveWriter, set imap.NumSet, dest string) error {
	v := s.selected()
	if v.readOnly {
		return errReadOnly
	}
	if mb, err := s.user.Mailbox(canonicalName(dest)); err == nil && mb == v.mb {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot,
			Text: "Source and destination mailbox are the same"}
	}
	data, err := s.copy(set, dest)
	if err != nil || data == nil {
		return err
	}
	uids, _ := data.SourceUIDs.Nums()
	src := make([]uint32, len(uids))
	for i, u := range uids {
		src[i] = uint32(u)
	}
	if _, err := v.mb.Expunge(src); err != nil {
		return s.fail("move", err, asSource)
	}
	return w.WriteCopyData(data)
}

// copy copies the named messages to dest; nil data means there was
// nothing to copy.
func (s *session) copy(set imap.NumSet, dest string) (*imap.CopyData, error) {
	v := s.selected()
	dst, err := s.mailbox(dest, asDestination)
	if err != nil {
		return nil, err
	}
	targets := v.resolve(set)
	if len(targets) == 0 {
		return nil, nil
	}
	msgs, missing := s.messagesByUID(v, targets)
	if missing {
		return nil, errExpungeIssued
	}
	var total int64
	for _, m := range msgs {
		total += m.Size()
	}
	if s.user.OverQuota(total) {
		return nil, storeError(mailstore.ErrOverQuota, asDestination)
	}
	data := &imap.CopyData{UIDValidity: dst.UIDValidity()}
	var copied []uint32
	for _, t := range targets {
		m := msgs[t.uid]
		// Message data is read-only and shared: no copy per COPY.
		uid, err := dst.AppendOwned(m.Data, m.Flags, m.InternalDate)
		if err != nil {
			// RFC 3501 §6.4.7: a failed COPY leaves the destination
			// as it was.
			if _, rerr := dst.Expunge(copied); rerr != nil {
				s.log.Error("undo partial copy", "err", rerr)
			}
			return nil, s.fail("copy", err, asDestination)
		}
		copied = append(copied, uid)
		data.SourceUIDs.AddNum(imap.UID(t.uid))
		data.DestUIDs.AddNum(imap.UID(uid))
	}
	return data, nil
}
