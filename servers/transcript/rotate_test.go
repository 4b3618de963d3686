package transcript

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestRotatingFile(t *testing.T) {
	tests := []struct {
		name      string
		maxBytes  int64
		keep      int
		lines     int
		wantFiles []string // names in the directory after writing
	}{
		{"under the limit", 1000, 2, 10, []string{"lab.log"}},
		{"rotates and keeps two", 100, 2, 40, []string{"lab.log", "lab.log.1", "lab.log.2"}},
		{"keep none", 100, 0, 40, []string{"lab.log"}},
		{"never rotates", 0, 2, 40, []string{"lab.log"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			name := filepath.Join(dir, "lab.log")
			r, err := OpenRotating(name, tt.maxBytes, tt.keep)
			if err != nil {
				t.Fatal(err)
			}
			sink := NewTextSink(r)
			for i := 0; i < tt.lines; i++ {
				sink.Record(Entry{Time: time.Unix(0, 0).UTC(), Service: "smtp", Session: 1, Dir: Client, Text: fmt.Sprintf("line %03d", i)})
			}
			if err := r.Close(); err != nil {
				t.Fatal(err)
			}
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			total := 0
			for _, e := range entries {
				got = append(got, e.Name())
				data, err := os.ReadFile(filepath.Join(dir, e.Name()))
				if err != nil {
					t.Fatal(err)
				}
				if tt.maxBytes > 0 && int64(len(data)) > tt.maxBytes {
					t.Errorf("%s holds %d bytes, over the %d limit", e.Name(), len(data), tt.maxBytes)
				}
				if len(data) > 0 && !strings.HasSuffix(string(data), "\n") {
					t.Errorf("%s ends inside a line: %q", e.Name(), data)
				}
				total += strings.Count(string(data), "\n")
			}
			if !slices.Equal(got, tt.wantFiles) {
				t.Errorf("files %v, want %v", got, tt.wantFiles)
			}
			// The newest line is always in lab.log.
			data, _ := os.ReadFile(name)
			if want := fmt.Sprintf("line %03d", tt.lines-1); !strings.Contains(string(data), want) {
				t.Errorf("lab.log lacks the last line %q:\n%s", want, data)
			}
			if tt.maxBytes <= 0 || tt.lines*31 <= int(tt.maxBytes) {
				if total != tt.lines {
					t.Errorf("%d lines kept, want all %d", total, tt.lines)
				}
			}
		})
	}
}

// TestRotatingFileOrder checks that name.1 holds newer lines than name.2.
func TestRotatingFileOrder(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "lab.log")
	r, err := OpenRotating(name, 10, 3)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		fmt.Fprintf(r, "%08d\n", i) // 9 bytes: one line per file
	}
	r.Close()
	for file, want := range map[string]string{"lab.log": "00000004\n", "lab.log.1": "00000003\n", "lab.log.2": "00000002\n", "lab.log.3": "00000001\n"} {
		data, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil || string(data) != want {
			t.Errorf("%s = %q, %v; want %q", file, data, err, want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "lab.log.4")); err == nil {
		t.Errorf("lab.log.4 exists; keep is 3")
	}
	// Reopening appends to what is there and counts its size.
	r, err = OpenRotating(name, 10, 3)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(r, "%08d\n", 5)
	r.Close()
	if data, _ := os.ReadFile(filepath.Join(dir, "lab.log.1")); string(data) != "00000004\n" {
		t.Errorf("after reopening, lab.log.1 = %q, want the line written before", data)
	}
}
