package mailstore_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/maillab/maillab/servers/mailstore"
)

// keywordsN returns n distinct keywords with prefix p.
func keywordsN(p string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%d", p, i)
	}
	return out
}

func TestKeywordLimits(t *testing.T) {
	limits := mailstore.Limits{KeywordsPerMessage: 3, KeywordsPerMailbox: 5, KeywordLength: 10}
	tests := []struct {
		name string
		// run acts on a mailbox holding messages 1 and 2, 1 with the
		// keywords a and b.
		run     func(mb *mailstore.Mailbox) error
		wantErr bool
		// wantFlags1 are message 1's flags afterwards.
		wantFlags1 string
	}{
		{"add up to the message limit", func(mb *mailstore.Mailbox) error {
			_, err := mb.StoreFlags([]uint32{1}, mailstore.FlagsAdd, []string{"c", `\Seen`})
			return err
		}, false, "[\\Seen a b c]"},
		{"add past the message limit", func(mb *mailstore.Mailbox) error {
			_, err := mb.StoreFlags([]uint32{1}, mailstore.FlagsAdd, []string{"c", "d"})
			return err
		}, true, "[a b]"},
		{"system flags do not count", func(mb *mailstore.Mailbox) error {
			_, err := mb.StoreFlags([]uint32{1}, mailstore.FlagsAdd, []string{`\Seen`, `\Flagged`, `\Answered`, `\Draft`, "c"})
			return err
		}, false, "[\\Answered \\Draft \\Flagged \\Seen a b c]"},
		{"duplicates in any case count once", func(mb *mailstore.Mailbox) error {
			_, err := mb.StoreFlags([]uint32{1}, mailstore.FlagsAdd, []string{"A", "B", "c", "C"})
			return err
		}, false, "[a b c]"},
		{"set replaces, then counts", func(mb *mailstore.Mailbox) error {
			_, err := mb.StoreFlags([]uint32{1}, mailstore.FlagsSet, []string{"x", "y", "z", "w"})
			return err
		}, true, "[a b]"},
		{"a refused STORE changes no message", func(mb *mailstore.Mailbox) error {
			_, err := mb.StoreFlags([]uint32{2, 1}, mailstore.FlagsAdd, []string{"c", "d"})
			return err
		}, true, "[a b]"},
		{"mailbox limit counts distinct keywords", func(mb *mailstore.Mailbox) error {
			if _, err := mb.StoreFlags([]uint32{2}, mailstore.FlagsAdd, []string{"c", "d", "e"}); err != nil {
				return fmt.Errorf("up to the limit: %w", err)
			}
			_, err := mb.StoreFlags([]uint32{1}, mailstore.FlagsAdd, []string{"f"})
			return err
		}, true, "[a b]"},
		{"keywords in use may be added at the mailbox limit", func(mb *mailstore.Mailbox) error {
			if _, err := mb.StoreFlags([]uint32{2}, mailstore.FlagsAdd, []string{"c", "d", "e"}); err != nil {
				return err
			}
			_, err := mb.StoreFlags([]uint32{1}, mailstore.FlagsAdd, []string{"e"})
			return err
		}, false, "[a b e]"},
		{"expunge frees mailbox keywords", func(mb *mailstore.Mailbox) error {
			if _, err := mb.StoreFlags([]uint32{2}, mailstore.FlagsAdd, []string{"c", "d", "e"}); err != nil {
				return err
			}
			if _, err := mb.Expunge([]uint32{2}); err != nil {
				return err
			}
			_, err := mb.StoreFlags([]uint32{1}, mailstore.FlagsAdd, []string{"f"})
			return err
		}, false, "[a b f]"},
		{"removing is always allowed", func(mb *mailstore.Mailbox) error {
			_, err := mb.StoreFlags([]uint32{1}, mailstore.FlagsRemove, []string{"a", "zz"})
			return err
		}, false, "[b]"},
		{"keyword too long", func(mb *mailstore.Mailbox) error {
			_, err := mb.StoreFlags([]uint32{1}, mailstore.FlagsAdd, []string{strings.Repeat("k", 11)})
			return err
		}, true, "[a b]"},
		{"append with too many keywords", func(mb *mailstore.Mailbox) error {
			_, err := mb.Append([]byte("x"), []string{"a", "b", "c", "d"}, time.Time{})
			return err
		}, true, "[a b]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := mailstore.Open(mailstore.Options{Limits: limits})
			if err != nil {
				t.Fatal(err)
			}
			mb := mailbox(t, addUser(t, s, "a@example.test", "a"), mailstore.Inbox)
			appendMsg(t, mb, "one", "a", "b")
			appendMsg(t, mb, "two")
			before := mb.Status().Messages
			err = tt.run(mb)
			if tt.wantErr != (err != nil) || (err != nil && !errors.Is(err, mailstore.ErrKeywordLimit)) {
				t.Errorf("err = %v, want ErrKeywordLimit: %v", err, tt.wantErr)
			}
			m, merr := mb.Message(1)
			if merr != nil {
				t.Fatal(merr)
			}
			if got := fmt.Sprint(m.Flags); got != tt.wantFlags1 {
				t.Errorf("flags of message 1 = %s, want %s", got, tt.wantFlags1)
			}
			if tt.name == "append with too many keywords" && mb.Status().Messages != before {
				t.Errorf("a refused Append stored a message")
			}
		})
	}
}

func TestKeywordLimitsDefaultsAndOff(t *testing.T) {
	s, _ := openMemory(t)
	mb := mailbox(t, addUser(t, s, "a@example.test", "a"), mailstore.Inbox)
	appendMsg(t, mb, "one")
	if _, err := mb.StoreFlags([]uint32{1}, mailstore.FlagsAdd, keywordsN("k", mailstore.DefaultKeywordsPerMessage)); err != nil {
		t.Errorf("STORE of DefaultKeywordsPerMessage keywords = %v", err)
	}
	if _, err := mb.StoreFlags([]uint32{1}, mailstore.FlagsAdd, []string{"one-more"}); !errors.Is(err, mailstore.ErrKeywordLimit) {
		t.Errorf("STORE of one keyword more than the default = %v, want ErrKeywordLimit", err)
	}

	off, err := mailstore.Open(mailstore.Options{Limits: mailstore.Limits{KeywordsPerMessage: -1, KeywordsPerMailbox: -1, KeywordLength: -1}})
	if err != nil {
		t.Fatal(err)
	}
	mb = mailbox(t, addUser(t, off, "a@example.test", "a"), mailstore.Inbox)
	appendMsg(t, mb, "one")
	if _, err := mb.StoreFlags([]uint32{1}, mailstore.FlagsAdd, append(keywordsN("k", 5000), strings.Repeat("x", 5000))); err != nil {
		t.Errorf("STORE of 5000 keywords without limits = %v", err)
	}
}

// TestDefaultQuota: Options.DefaultQuota applies to every account, and
// the usage it is checked against follows appends, expunges and deleted
// mailboxes.
func TestDefaultQuota(t *testing.T) {
	s, err := mailstore.Open(mailstore.Options{DefaultQuota: 100})
	if err != nil {
		t.Fatal(err)
	}
	u := addUser(t, s, "a@example.test", "a")
	if limit, _ := u.Quota(); limit != 100 {
		t.Fatalf("Quota() of a new account = %d, want the default 100", limit)
	}
	if err := s.Deliver("a@example.test", make([]byte, 60)); err != nil {
		t.Fatal(err)
	}
	if err := s.Deliver("a@example.test", make([]byte, 60)); !errors.Is(err, mailstore.ErrOverQuota) {
		t.Fatalf("Deliver over the quota = %v, want ErrOverQuota", err)
	}
	inbox := mailbox(t, u, mailstore.Inbox)
	if _, err := inbox.Expunge([]uint32{1}); err != nil {
		t.Fatal(err)
	}
	if err := u.CreateMailbox("Big"); err != nil {
		t.Fatal(err)
	}
	big := mailbox(t, u, "Big")
	if _, err := big.Append(make([]byte, 90), nil, time.Time{}); err != nil {
		t.Fatalf("Append after the expunge freed the quota = %v", err)
	}
	if err := u.DeleteMailbox("Big"); err != nil {
		t.Fatal(err)
	}
	if _, used := u.Quota(); used != 0 {
		t.Errorf("usage after expunging and deleting everything = %d, want 0", used)
	}
}
