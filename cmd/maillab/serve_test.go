package main

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestServeBadInput: bad flags give one line naming the flag and exit 2.
func TestServeBadInput(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	notDir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	data := t.TempDir()
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"non-loopback without --expose", []string{"--listen", "0.0.0.0:0"}, []string{"--listen", "--expose"}},
		{"non-loopback labs without --expose", []string{"--listen", "127.0.0.1:0", "--lab-address", "0.0.0.0"}, []string{"--lab-address", "--expose"}},
		{"listen without port", []string{"--listen", "8025"}, []string{"--listen", "HOST:PORT"}},
		{"listen on a name", []string{"--listen", "mail.example.test:8025"}, []string{"--listen", "IP address"}},
		{"listen port in use", []string{"--listen", busy.Addr().String()}, []string{"--listen", "address already in use"}},
		{"bad lab address", []string{"--listen", "127.0.0.1:0", "--lab-address", "x"}, []string{"--lab-address", "not an IP address"}},
		{"no labs allowed", []string{"--listen", "127.0.0.1:0", "--max-labs", "0"}, []string{"--max-labs", "at least 1"}},
		{"data is a file", []string{"--listen", "127.0.0.1:0", "--data", filepath.Join(notDir, "x")}, []string{"--data", "not a directory"}},
		{"bad log level", []string{"--log-level", "loud"}, []string{"--log-level"}},
		{"argument", []string{"now"}, []string{"serve takes no arguments"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"maillab", "serve"}, tt.args...)
			if !strings.Contains(strings.Join(tt.args, " "), "--data") {
				args = append(args, "--data", data)
			}
			var stdout, stderr bytes.Buffer
			if code := run(args, &stdout, &stderr); code != exitUsage {
				t.Errorf("exit code %d, want %d; stderr: %s", code, exitUsage, stderr.String())
			}
			msg := strings.TrimSpace(stderr.String())
			if strings.Count(msg, "\n") != 0 {
				t.Errorf("want one line on stderr, got:\n%s", msg)
			}
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("stderr %q lacks %q", msg, w)
				}
			}
		})
	}
}
