package mailstore_test

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/maillab/maillab/servers/mailstore"
)

// BenchmarkStoreKeyword toggles one keyword on one message of a Maildir
// mailbox whose messages carry 90 keywords each, for mailboxes of growing
// size. With the uidlist rewritten on every change (before the journal)
// the cost grew with the keywords of the whole mailbox; now it must stay
// flat: compare ns/op across the sub-benchmarks.
func BenchmarkStoreKeyword(b *testing.B) {
	kws := keywordsN("$kw", 90)
	for _, msgs := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("keywords=%d", msgs*len(kws)), func(b *testing.B) {
			s, err := mailstore.Open(mailstore.Options{Dir: b.TempDir()})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			u, err := s.AddUser("a@example.test", "a", "x")
			if err != nil {
				b.Fatal(err)
			}
			mb, err := u.Mailbox(mailstore.Inbox)
			if err != nil {
				b.Fatal(err)
			}
			for range msgs {
				if _, err := mb.Append([]byte("Subject: x\r\n\r\nx\r\n"), kws, time.Time{}); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			for i := range b.N {
				op := mailstore.FlagsAdd
				if i%2 == 1 {
					op = mailstore.FlagsRemove
				}
				if _, err := mb.StoreFlags([]uint32{1}, op, []string{"Toggle"}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkIngest delivers MAILSTORE_INGEST_N messages (default 30,000)
// into one Maildir INBOX and reports the rate of the first and the last
// 1,000 and their ratio (1 = no slow-down as the mailbox grows). On a
// disk shared with other work the two windows see different contention,
// so the last 1,000 are delivered in blocks of 50 interleaved with blocks
// of 50 to a second account's nearly empty INBOX: last/empty_same_time
// compares the two in the same seconds. It runs the whole ingest once per
// iteration; use -benchtime=1x (scripts/store-ingest.sh does).
func BenchmarkIngest(b *testing.B) {
	n := 30000
	if v := os.Getenv("MAILSTORE_INGEST_N"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 2000 {
			b.Fatalf("MAILSTORE_INGEST_N=%q: want a number ≥ 2000", v)
		}
	}
	msg := []byte("From: bob@example.test\r\nTo: alice@example.test\r\nSubject: ingest\r\n\r\n" + strings.Repeat("line of a message body\r\n", 80))
	deliver := func(s *mailstore.Store, rcpt string, count int) time.Duration {
		start := time.Now()
		for range count {
			if err := s.Deliver(rcpt, msg); err != nil {
				b.Fatal(err)
			}
		}
		return time.Since(start)
	}
	for range b.N {
		s, err := mailstore.Open(mailstore.Options{Dir: b.TempDir()})
		if err != nil {
			b.Fatal(err)
		}
		for _, u := range []string{"alice", "carol"} {
			if _, err := s.AddUser(u+"@example.test", u, "x"); err != nil {
				b.Fatal(err)
			}
		}
		first := deliver(s, "alice@example.test", 1000)
		deliver(s, "alice@example.test", n-2000)
		var last, empty time.Duration
		for range 1000 / 50 {
			last += deliver(s, "alice@example.test", 50)
			empty += deliver(s, "carol@example.test", 50)
		}
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
		firstRate, lastRate, emptyRate := 1000/first.Seconds(), 1000/last.Seconds(), 1000/empty.Seconds()
		b.ReportMetric(firstRate, "first1k_msgs/s")
		b.ReportMetric(lastRate, "last1k_msgs/s")
		b.ReportMetric(lastRate/firstRate, "last/first")
		b.ReportMetric(lastRate/emptyRate, "last/empty_same_time")
	}
}
