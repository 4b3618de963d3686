//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// Parsers of what the clients print. They read bytes from another process,
// so each has a fuzz target seeded with real output under testdata/.

// parseDigShort returns the answers of `dig +short`, one per line, without
// dig's comment lines (";; communications error ..." and the like).
func parseDigShort(out string) []string {
	var answers []string
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, ";") {
			continue
		}
		answers = append(answers, line)
	}
	return answers
}

// srvRecord is one SRV answer (RFC 2782).
type srvRecord struct {
	Priority, Weight, Port int
	Target                 string
}

// parseSRV parses one `dig +short SRV` answer: "priority weight port target".
func parseSRV(line string) (srvRecord, error) {
	f := strings.Fields(line)
	if len(f) != 4 {
		return srvRecord{}, fmt.Errorf("srv answer %q: want 4 fields, got %d", line, len(f))
	}
	var nums [3]int
	for i := range nums {
		n, err := strconv.ParseUint(f[i], 10, 16)
		if err != nil {
			return srvRecord{}, fmt.Errorf("srv answer %q: field %d: %w", line, i+1, err)
		}
		nums[i] = int(n)
	}
	return srvRecord{Priority: nums[0], Weight: nums[1], Port: nums[2], Target: f[3]}, nil
}

// parseNFTTables returns "family name" of each table in `nft list tables`.
func parseNFTTables(out string) []string {
	var tables []string
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && f[0] == "table" {
			tables = append(tables, f[1]+" "+f[2])
		}
	}
	return tables
}

func readSeed(t testing.TB, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "clients", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func TestParseDigShort(t *testing.T) {
	tests := []struct {
		file string
		want []string
	}{
		{"dig-short-a.txt", []string{"127.0.0.1"}},
		{"dig-short-srv.txt", []string{"0 1 38693 mail.example.test."}},
		{"dig-short-timeout.txt", nil},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			if got := parseDigShort(readSeed(t, tt.file)); !slices.Equal(got, tt.want) {
				t.Errorf("parseDigShort(%s) = %q, want %q", tt.file, got, tt.want)
			}
		})
	}
}

func TestParseSRV(t *testing.T) {
	tests := []struct {
		line    string
		want    srvRecord
		wantErr bool
	}{
		{"0 1 41097 mail.example.test.", srvRecord{0, 1, 41097, "mail.example.test."}, false},
		{"10 5 587 smtp.example.test.", srvRecord{10, 5, 587, "smtp.example.test."}, false},
		{"0 1 70000 mail.example.test.", srvRecord{}, true},
		{"0 1 mail.example.test.", srvRecord{}, true},
		{"-1 1 25 mail.example.test.", srvRecord{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			got, err := parseSRV(tt.line)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("parseSRV(%q) = %+v, %v; want %+v, error %v", tt.line, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestParseNFTTables(t *testing.T) {
	got := parseNFTTables(readSeed(t, "nft-list-tables.txt"))
	want := []string{"ip nat", "ip filter", "inet maillab_15703_1"}
	if !slices.Equal(got, want) {
		t.Errorf("parseNFTTables = %q, want %q", got, want)
	}
}

func FuzzParseDigShort(f *testing.F) {
	for _, name := range []string{"dig-short-a.txt", "dig-short-srv.txt", "dig-short-timeout.txt"} {
		f.Add(readSeed(f, name))
	}
	f.Fuzz(func(t *testing.T, out string) {
		for _, a := range parseDigShort(out) {
			if a == "" || strings.HasPrefix(a, ";") || strings.ContainsAny(a, "\n") {
				t.Fatalf("parseDigShort(%q) returned answer %q", out, a)
			}
			if r, err := parseSRV(a); err == nil && (r.Port > 65535 || r.Target == "") {
				t.Fatalf("parseSRV(%q) = %+v", a, r)
			}
		}
	})
}

func FuzzParseNFTTables(f *testing.F) {
	f.Add(readSeed(f, "nft-list-tables.txt"))
	f.Add("")
	f.Fuzz(func(t *testing.T, out string) {
		for _, tb := range parseNFTTables(out) {
			if len(strings.Fields(tb)) != 2 {
				t.Fatalf("parseNFTTables(%q) returned %q", out, tb)
			}
		}
	})
}
