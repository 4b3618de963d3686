package imapd

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/maillab/maillab/servers/mailstore"
)

// keywordList returns "(p0 p1 ...)" with n keywords.
func keywordList(p string, n int) string {
	kws := make([]string, n)
	for i := range kws {
		kws[i] = fmt.Sprintf("%s%d", p, i)
	}
	return "(" + strings.Join(kws, " ") + ")"
}

// TestKeywordLimitReplies: a STORE or APPEND past a keyword limit gets
// NO [LIMIT] (RFC 5530 §3) and changes nothing; the old code took them all.
func TestKeywordLimitReplies(t *testing.T) {
	l := startLab(t)
	inbox, _ := l.user(alice).Mailbox("INBOX")
	appendMessage(t, inbox, message(bob, alice, "one", "x"), time.Time{})
	appendMessage(t, inbox, message(bob, alice, "two", "x"), time.Time{})
	r, _ := dialRaw(t, l.addr)
	r.expectOK("LOGIN alice@example.test alice-secret")
	r.expectOK("SELECT INBOX")

	tests := []struct {
		name, command, wantPrefix string
	}{
		{"per message", "STORE 1 +FLAGS.SILENT " + keywordList("k", mailstore.DefaultKeywordsPerMessage+1),
			fmt.Sprintf("NO [LIMIT] Too many keywords (a message would have %d keywords, the limit is %d)", mailstore.DefaultKeywordsPerMessage+1, mailstore.DefaultKeywordsPerMessage)},
		{"keyword length", "STORE 1 +FLAGS.SILENT (" + strings.Repeat("k", mailstore.DefaultKeywordLength+1) + ")", "NO [LIMIT] Too many keywords (a keyword is"},
		{"append", "APPEND INBOX " + keywordList("a", mailstore.DefaultKeywordsPerMessage+1) + " {5+}\r\nhello", "NO [LIMIT] Too many keywords"},
		{"up to the limit is fine", "STORE 1:2 +FLAGS.SILENT " + keywordList("k", mailstore.DefaultKeywordsPerMessage), "OK"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, done := r.cmd(tt.command); !strings.HasPrefix(done, tt.wantPrefix) {
				t.Errorf("%.60s... = %q, want %q", tt.command, done, tt.wantPrefix)
			}
		})
	}
	if st := inbox.Status(); st.Messages != 2 {
		t.Errorf("%d messages after a refused APPEND, want 2", st.Messages)
	}
	// The mailbox limit: fill messages 3.. with distinct keywords up to
	// 1024 in the mailbox, then ask a message with room for a new one.
	n := mailstore.DefaultKeywordsPerMailbox/mailstore.DefaultKeywordsPerMessage - 1 // messages 1:2 hold 128 between them
	for range n + 1 {
		appendMessage(t, inbox, message(bob, alice, "more", "x"), time.Time{})
	}
	r.expectOK("NOOP")
	for i := range n {
		r.expectOK(fmt.Sprintf("STORE %d FLAGS.SILENT %s", 3+i, keywordList(fmt.Sprintf("m%d-", i), mailstore.DefaultKeywordsPerMessage)))
	}
	if _, done := r.cmd(fmt.Sprintf("STORE %d +FLAGS.SILENT (OneTooMany)", 3+n)); !strings.HasPrefix(done, "NO [LIMIT] Too many keywords (the mailbox would have 1025 keywords, the limit is 1024)") {
		t.Errorf("STORE of a new keyword in a full mailbox = %q, want NO [LIMIT]", done)
	}
}

// TestSearchLimits: a SEARCH nested too deep, with too many keys or
// running past its budget gets NO [LIMIT] instead of the CPU; the old code
// matched 12,000 nested NOTs per message.
func TestSearchLimits(t *testing.T) {
	tests := []struct {
		name   string
		limits Limits
		search string
		want   string
	}{
		{"12,000 nested NOTs", Limits{}, strings.Repeat("NOT ", 12000) + "SEEN",
			fmt.Sprintf("NO [LIMIT] SEARCH nests NOT and OR deeper than %d levels", DefaultSearchDepth)},
		{"nested ORs", Limits{SearchDepth: 3}, "OR SEEN OR SEEN OR SEEN OR SEEN DELETED", "NO [LIMIT] SEARCH nests NOT and OR deeper than 3 levels"},
		{"at the depth limit", Limits{SearchDepth: 3}, "NOT NOT NOT SEEN", "OK"},
		{"too many keys", Limits{}, strings.Repeat("HEADER X-Key y ", DefaultSearchKeys+1), fmt.Sprintf("NO [LIMIT] SEARCH has more than %d keys", DefaultSearchKeys)},
		{"budget spent", Limits{SearchBudget: time.Nanosecond}, "BODY x", "NO [LIMIT] SEARCH ran longer than 1ns; narrow it"},
		{"limits off", Limits{SearchDepth: -1, SearchKeys: -1, SearchBudget: -1}, strings.Repeat("NOT ", 200) + "SEEN", "OK"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := startLab(t, withConfig(func(c *Config) { c.Limits = tt.limits }))
			inbox, _ := l.user(alice).Mailbox("INBOX")
			appendMessage(t, inbox, message(bob, alice, "one", "x"), time.Time{})
			r, _ := dialRaw(t, l.addr)
			r.expectOK("LOGIN alice@example.test alice-secret")
			r.expectOK("SELECT INBOX")
			if _, done := r.cmd("SEARCH " + tt.search); !strings.HasPrefix(done, tt.want) {
				t.Errorf("SEARCH %.40s... = %q, want %q", tt.search, done, tt.want)
			}
			r.expectOK("NOOP") // the session goes on
		})
	}
}

// TestAppendLimit: APPENDLIMIT is advertised with the store's message
// size limit (the SMTP one), and an APPEND over it is refused with
// NO [TOOBIG] before the literal is asked for: the old code had no limit
// below go-imap's 100 MiB and read the whole literal into memory.
func TestAppendLimit(t *testing.T) {
	l := startLab(t)
	r, _ := dialRaw(t, l.addr)
	r.expectOK("LOGIN alice@example.test alice-secret")
	caps := strings.Join(r.expectOK("CAPABILITY"), " ")
	if want := fmt.Sprintf(" APPENDLIMIT=%d", mailstore.DefaultMaxMessageSize); !strings.Contains(caps, want) {
		t.Errorf("CAPABILITY = %q, want %q", caps, want)
	}
	// A synchronizing literal: the server answers instead of "+ Ready".
	_, done := r.cmd(fmt.Sprintf("APPEND INBOX {%d}", 100<<20))
	if !strings.HasPrefix(done, "NO [TOOBIG]") {
		t.Errorf("APPEND of 100 MiB = %q, want NO [TOOBIG] before the literal", done)
	}
	if _, done := r.cmd("APPEND INBOX {5}\r\nhello"); strings.HasPrefix(done, "NO") || strings.HasPrefix(done, "BAD") {
		t.Errorf("APPEND under the limit = %q", done)
	}
}
