package serve

import (
	"testing"

	"github.com/maillab/maillab/servers/mailstore"
)

// TestSummarizeDecodesEncodedWords: the mailbox list shows From, To and
// Subject as a reader would, encoded words (RFC 2047) decoded, whatever
// they decode to (the console escapes it); a word that does not decode
// stays as sent.
func TestSummarizeDecodesEncodedWords(t *testing.T) {
	for _, tc := range []struct {
		name, header              string
		wantFrom, wantTo, wantSub string
	}{
		{"plain", "From: Ann <ann@example.test>\r\nTo: bob@example.test\r\nSubject: hi\r\n",
			"Ann <ann@example.test>", "bob@example.test", "hi"},
		{"utf-8 q name", "From: =?utf-8?q?J=C3=BCrgen?= <j@example.test>\r\nTo: =?utf-8?b?QsO2?= <b@example.test>\r\nSubject: =?utf-8?q?caf=C3=A9?=\r\n",
			"Jürgen <j@example.test>", "Bö <b@example.test>", "café"},
		{"markup once decoded", "From: =?utf-8?b?PGltZyBzcmM9eCBvbmVycm9yPXdpbmRvdy5wd25lZD0xPg==?= <a@example.test>\r\nSubject: =?utf-8?b?Ij48c2NyaXB0PndpbmRvdy5wd25lZD0yPC9zY3JpcHQ+?=\r\n",
			"<img src=x onerror=window.pwned=1> <a@example.test>", "", `"><script>window.pwned=2</script>`},
		{"unknown charset kept", "From: =?x-nope?q?abc?= <a@example.test>\r\n",
			"=?x-nope?q?abc?= <a@example.test>", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := summarize("a@example.test", "INBOX", mailstore.Message{UID: 1, Data: []byte(tc.header + "\r\nbody\r\n")})
			if s.From != tc.wantFrom || s.To != tc.wantTo || s.Subject != tc.wantSub {
				t.Errorf("from %q to %q subject %q, want %q %q %q", s.From, s.To, s.Subject, tc.wantFrom, tc.wantTo, tc.wantSub)
			}
		})
	}
}
