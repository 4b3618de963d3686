package golden

import (
	"os"
	"path/filepath"
	"testing"
)

// recorder is a testing.TB that records failures instead of stopping.
type recorder struct {
	testing.TB
	failed bool
}

func (r *recorder) Helper()                           {}
func (r *recorder) Errorf(format string, args ...any) { r.failed = true }
func (r *recorder) Fatalf(format string, args ...any) { r.failed = true }
func (r *recorder) Fatal(args ...any)                 { r.failed = true }

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "out.golden")
	tests := []struct {
		name       string
		got        string
		update     bool
		wantFailed bool
	}{
		{"missing file", "a\n", false, true},
		{"update creates it", "a\n", true, false},
		{"same", "a\n", false, false},
		{"different", "b\n", false, true},
		{"update rewrites it", "b\n", true, false},
		{"same after rewrite", "b\n", false, false},
	}
	for _, tt := range tests {
		r := &recorder{TB: t}
		Check(r, path, []byte(tt.got), tt.update)
		if r.failed != tt.wantFailed {
			t.Errorf("%s: failed = %v, want %v", tt.name, r.failed, tt.wantFailed)
		}
	}
	if data, _ := os.ReadFile(path); string(data) != "b\n" {
		t.Errorf("file holds %q, want %q", data, "b\n")
	}
}
