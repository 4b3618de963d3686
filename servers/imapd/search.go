package imapd

import (
	"bytes"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	gomessage "github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"

	"github.com/maillab/maillab/servers/mailstore"
)

// Search implements imapserver.Session (RFC 3501 §6.4.4) over the messages
// of the client's view. go-imap writes SEARCH (or ESEARCH when asked) from
// the result.
func (s *session) Search(kind imapserver.NumKind, criteria *imap.SearchCriteria, _ *imap.SearchOptions) (*imap.SearchData, error) {
	v := s.selected()
	limits := s.c.srv.cfg.Limits.withDefaults()
	if err := checkSearch(criteria, limits); err != nil {
		return nil, err
	}
	targets := v.resolve(imap.SeqSet{imap.SeqRange{Start: 1, Stop: 0}})
	var lastSeq, lastUID uint32
	if n := len(targets); n > 0 {
		lastSeq, lastUID = targets[n-1].seq, targets[n-1].uid
	}
	key := compileSearch(criteria, lastSeq, lastUID)
	msgs, _ := s.messagesByUID(v, targets)

	data := &imap.SearchData{}
	var seqs imap.SeqSet
	var uids imap.UIDSet
	start := time.Now()
	for i, t := range targets {
		if limits.SearchBudget > 0 && i%64 == 0 && time.Since(start) > limits.SearchBudget {
			return nil, errLimit("SEARCH ran longer than %v; narrow it", limits.SearchBudget)
		}
		m := msgs[t.uid]
		if m == nil { // expunged, not announced yet: no longer matches
			continue
		}
		if !key.match(&searchMessage{m: m, seq: t.seq}) {
			continue
		}
		num := t.seq
		if kind == imapserver.NumKindUID {
			num = t.uid
		}
		seqs.AddNum(t.seq)
		uids.AddNum(imap.UID(t.uid))
		if data.Min == 0 || num < data.Min {
			data.Min = num
		}
		data.Max = max(data.Max, num)
		data.Count++
	}
	if kind == imapserver.NumKindUID {
		data.All = uids
	} else {
		data.All = seqs
	}
	return data, nil
}

// searchKey is a SEARCH criteria with "*" resolved in its sets.
type searchKey struct {
	c    *imap.SearchCriteria
	seqs [][][2]uint32
	uids [][][2]uint32
	not  []*searchKey
	or   [][2]*searchKey
}

func compileSearch(c *imap.SearchCriteria, lastSeq, lastUID uint32) *searchKey {
	k := &searchKey{c: c}
	for _, set := range c.SeqNum {
		k.seqs = append(k.seqs, staticRanges(seqRanges(set), lastSeq))
	}
	for _, set := range c.UID {
		if imap.IsSearchRes(set) { // "$" without SEARCHRES: matches nothing
			k.uids = append(k.uids, nil)
			continue
		}
		k.uids = append(k.uids, staticRanges(uidRanges(set), lastUID))
	}
	for i := range c.Not {
		k.not = append(k.not, compileSearch(&c.Not[i], lastSeq, lastUID))
	}
	for i := range c.Or {
		k.or = append(k.or, [2]*searchKey{
			compileSearch(&c.Or[i][0], lastSeq, lastUID),
			compileSearch(&c.Or[i][1], lastSeq, lastUID),
		})
	}
	return k
}

// searchMessage parses a message at most once per SEARCH.
type searchMessage struct {
	m      *mailstore.Message
	seq    uint32
	parsed bool
	header gomessage.Header
	body   []byte // decoded text parts, lower case
}

func (sm *searchMessage) parse() {
	if !sm.parsed {
		sm.parsed = true
		sm.header, sm.body = texts(sm.m.Data)
		sm.body = bytes.ToLower(sm.body)
	}
}

func (k *searchKey) match(sm *searchMessage) bool {
	c := k.c
	for _, r := range k.seqs {
		if !inRanges(r, sm.seq) {
			return false
		}
	}
	for _, r := range k.uids {
		if !inRanges(r, sm.m.UID) {
			return false
		}
	}
	for _, f := range c.Flag {
		if !hasFlag(sm.m.Flags, f) {
			return false
		}
	}
	for _, f := range c.NotFlag {
		if hasFlag(sm.m.Flags, f) {
			return false
		}
	}
	if c.Larger > 0 && sm.m.Size() <= c.Larger {
		return false
	}
	if c.Smaller > 0 && sm.m.Size() >= c.Smaller {
		return false
	}
	if !inDates(sm.m.InternalDate, c.Since, c.Before) {
		return false
	}
	if !c.SentSince.IsZero() || !c.SentBefore.IsZero() {
		sm.parse()
		mh := mail.Header{Header: sm.header}
		sent, err := mh.Date()
		if err != nil || sent.IsZero() || !inDates(sent, c.SentSince, c.SentBefore) {
			return false
		}
	}
	for _, hf := range c.Header {
		sm.parse()
		if !headerContains(sm.header, hf.Key, hf.Value) {
			return false
		}
	}
	for _, text := range c.Body {
		sm.parse()
		if !bytes.Contains(sm.body, []byte(strings.ToLower(text))) {
			return false
		}
	}
	for _, text := range c.Text {
		sm.parse()
		if !bytes.Contains(sm.body, []byte(strings.ToLower(text))) && !headerContains(sm.header, "", text) {
			return false
		}
	}
	for _, not := range k.not {
		if not.match(sm) {
			return false
		}
	}
	for _, or := range k.or {
		if !or[0].match(sm) && !or[1].match(sm) {
			return false
		}
	}
	return true
}

// hasFlag reports whether flags holds f. Flags compare case-insensitively
// (RFC 3501 §2.3.2); \Recent is never set, the lab keeps no such state.
func hasFlag(flags []string, f imap.Flag) bool {
	for _, have := range flags {
		if strings.EqualFold(have, string(f)) {
			return true
		}
	}
	return false
}

// inDates compares dates only, "disregarding time and timezone" (RFC 3501
// §6.4.4): t's calendar date in its own zone against the dates of since
// and before (go-imap parses those as midnight UTC).
func inDates(t, since, before time.Time) bool {
	d := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	if !since.IsZero() && d.Before(since) {
		return false
	}
	if !before.IsZero() && !d.Before(before) {
		return false
	}
	return true
}

// headerContains reports whether a field named key (any field if key is
// empty) contains value, case-insensitively, in its decoded text. An empty
// value matches any message that has the field (RFC 3501 §6.4.4 HEADER).
func headerContains(h gomessage.Header, key, value string) bool {
	value = strings.ToLower(value)
	fields := h.Fields()
	if key != "" {
		fields = h.FieldsByKey(key)
	}
	for fields.Next() {
		if value == "" {
			return true
		}
		text, err := fields.Text()
		if err != nil {
			text = fields.Value()
		}
		if strings.Contains(strings.ToLower(text), value) {
			return true
		}
	}
	return false
}
