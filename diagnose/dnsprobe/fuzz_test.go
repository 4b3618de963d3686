package dnsprobe

import (
	"strings"
	"testing"
)

func FuzzParseHosts(f *testing.F) {
	f.Add([]byte("127.0.0.1\tlocalhost\n::1 localhost ip6-localhost ip6-loopback\n# comment\n10.0.0.5 mail.example.com mail\n"))
	f.Add([]byte("fe80::1%lo0 x\n300.1.1.1 bad\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		h := ParseHosts(data)
		for name := range h.byName {
			if name != strings.ToLower(name) {
				t.Fatalf("key %q not lower-cased", name)
			}
			h.Lookup(name)
		}
	})
}
