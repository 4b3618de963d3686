package imapd

import (
	"sort"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/maillab/maillab/servers/mailstore"
)

// List implements imapserver.Session for LIST (RFC 3501 §6.3.8) and LSUB
// (§6.3.9; go-imap passes it as SelectSubscribed). Mailboxes come with
// \HasChildren or \HasNoChildren (RFC 3348); a level of the hierarchy that
// is not a mailbox itself (its parent was deleted, or it was never
// created) is listed as \Noselect.
func (s *session) List(w *imapserver.ListWriter, ref string, patterns []string, opts *imap.ListOptions) error {
	if len(patterns) == 0 {
		// RFC 3501 §6.3.8: an empty pattern asks for the hierarchy
		// delimiter and the root name of the reference.
		root := ""
		if i := strings.IndexRune(ref, delim); i >= 0 {
			root = ref[:i+1]
		}
		return w.WriteList(&imap.ListData{Attrs: []imap.MailboxAttr{imap.MailboxAttrNoSelect}, Delim: delim, Mailbox: root})
	}
	// RFC 3501 §6.3.8 leaves a reference that does not end in the
	// delimiter to the server; like Dovecot, the reference and the
	// pattern are joined, so "INBOX" "*" lists INBOX and what is below it
	// (what `curl imap://host/INBOX` asks). A pattern starting with the
	// delimiter ignores the reference.
	full := make([]string, len(patterns))
	for i, p := range patterns {
		if !strings.HasPrefix(p, string(delim)) {
			p = ref + p
		}
		full[i] = canonicalPattern(strings.TrimPrefix(p, string(delim)))
	}
	patterns = full

	existing := s.user.Mailboxes()
	exists := make(map[string]bool, len(existing))
	for _, name := range existing {
		exists[name] = true
	}
	subscribed := func(name string) bool { return exists[name] && s.user.Subscribed(name) }

	// Candidates: every mailbox and every level above one. For LSUB, the
	// subscribed mailboxes and the levels above them; those levels are
	// shown only where a pattern ends in "%" (RFC 3501 §6.3.9).
	candidates := make(map[string]bool) // name → selectable
	for _, name := range existing {
		if opts.SelectSubscribed && !subscribed(name) {
			continue
		}
		candidates[name] = true
		for i, r := range name {
			if r == delim {
				if _, ok := candidates[name[:i]]; !ok {
					candidates[name[:i]] = false
				}
			}
		}
	}
	names := make([]string, 0, len(candidates))
	for name := range candidates {
		names = append(names, name)
	}
	sort.Slice(names, func(i, j int) bool {
		if (names[i] == mailstore.Inbox) != (names[j] == mailstore.Inbox) {
			return names[i] == mailstore.Inbox
		}
		return names[i] < names[j]
	})

	for _, name := range names {
		levelOnly := opts.SelectSubscribed && !subscribed(name)
		if !matchAny(name, patterns, levelOnly) {
			continue
		}
		data := &imap.ListData{Delim: delim, Mailbox: name}
		if !exists[name] || levelOnly {
			data.Attrs = append(data.Attrs, imap.MailboxAttrNoSelect)
		}
		if hasChildren(existing, name) {
			data.Attrs = append(data.Attrs, imap.MailboxAttrHasChildren)
		} else {
			data.Attrs = append(data.Attrs, imap.MailboxAttrHasNoChildren)
		}
		if opts.ReturnSubscribed && subscribed(name) {
			data.Attrs = append(data.Attrs, imap.MailboxAttrSubscribed)
		}
		if opts.ReturnStatus != nil && exists[name] {
			if mb, err := s.user.Mailbox(name); err == nil {
				data.Status = statusData(name, mb, opts.ReturnStatus)
			}
		}
		if err := w.WriteList(data); err != nil {
			return err
		}
	}
	return nil
}

// matchAny reports whether name matches one of the patterns. With
// levelOnly, only patterns ending in "%" count.
func matchAny(name string, patterns []string, levelOnly bool) bool {
	for _, p := range patterns {
		if levelOnly && !strings.HasSuffix(p, "%") {
			continue
		}
		if imapserver.MatchList(name, delim, "", p) {
			return true
		}
	}
	return false
}

// canonicalPattern spells a leading INBOX of a reference or pattern in
// upper case, so that "inbox" and "Inbox/%" match (RFC 3501 §5.1).
func canonicalPattern(p string) string {
	if len(p) >= 5 && strings.EqualFold(p[:5], mailstore.Inbox) &&
		(len(p) == 5 || p[5] == delim || p[5] == '*' || p[5] == '%') {
		return mailstore.Inbox + p[5:]
	}
	return p
}

// hasChildren reports whether a name in names lies below parent.
func hasChildren(names []string, parent string) bool {
	prefix := parent + string(delim)
	for _, name := range names {
		if strings.HasPrefix(name, prefix) {
			return true
		}
	}
	return false
}
