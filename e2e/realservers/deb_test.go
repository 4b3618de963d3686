//go:build e2e

package realservers

import (
	"strings"
	"testing"
)

func TestCacheDir(t *testing.T) {
	tests := []struct{ name, cache, xdg, want string }{
		{"default", "", "", "/var/cache/maillab-e2e"},
		{"XDG", "", "/home/ci/.cache", "/home/ci/.cache/maillab-e2e"},
		{"MAILLAB_E2E_CACHE wins", "/srv/e2e", "/home/ci/.cache", "/srv/e2e"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("MAILLAB_E2E_CACHE", tt.cache)
			t.Setenv("XDG_CACHE_HOME", tt.xdg)
			if got := CacheDir(); got != tt.want {
				t.Errorf("CacheDir() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestWithSystemUsers(t *testing.T) {
	passwd, group, err := withSystemUsers("/var/lib/opensmtpd/empty", "opensmtpd", "opensmtpq")
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{}
	for _, data := range []string{string(passwd), string(group)} {
		seen := map[string]bool{}
		for _, line := range strings.Split(strings.TrimRight(data, "\n"), "\n") {
			f := strings.Split(line, ":")
			if len(f) < 3 {
				t.Fatalf("malformed line %q", line)
			}
			if seen[f[2]] && (f[0] == "opensmtpd" || f[0] == "opensmtpq") {
				t.Errorf("%s has id %s, which another entry uses", f[0], f[2])
			}
			seen[f[2]] = true
			if f[0] == "opensmtpd" || f[0] == "opensmtpq" {
				ids[f[0]] = f[2]
			}
		}
	}
	if ids["opensmtpd"] == "" || ids["opensmtpq"] == "" || ids["opensmtpd"] == ids["opensmtpq"] {
		t.Errorf("users opensmtpd and opensmtpq with distinct ids: got %v", ids)
	}
}
