package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestVerifyDiagnoserCannotStart checks that a --diagnoser command that
// cannot start is one usage line and exit 2 before any scenario runs
// (nothing on stdout, where each scenario's PASS/FAIL line would be).
func TestVerifyDiagnoserCannotStart(t *testing.T) {
	dir := t.TempDir()
	notExec := filepath.Join(dir, "diag.sh")
	if err := os.WriteFile(notExec, []byte("#!/bin/sh\necho '{\"root_cause\":\"HEALTHY\"}'\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		line string
		want []string
	}{
		{"missing path", filepath.Join(dir, "nope.sh") + " --json", []string{"nope.sh", "cannot start", "no such file or directory"}},
		{"not executable", notExec, []string{"diag.sh", "not executable"}},
		{"directory", dir, []string{"is a directory"}},
		{"not on PATH", "maillab-no-such-diagnoser --json", []string{"maillab-no-such-diagnoser", "not found on PATH"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run([]string{"maillab", "verify", "--run", "^healthy$", "--no-progress", "--diagnoser", tt.line}, &stdout, &stderr)
			if code != exitUsage {
				t.Errorf("exit %d, want %d", code, exitUsage)
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout %q, want nothing (no scenario may run)", stdout.String())
			}
			msg := stderr.String()
			if strings.Count(msg, "\n") != 1 || !strings.Contains(msg, "--diagnoser") {
				t.Errorf("want one line naming --diagnoser, got:\n%s", msg)
			}
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("stderr %q lacks %q", msg, w)
				}
			}
		})
	}
}

func TestCheckCanStartAccepts(t *testing.T) {
	for _, line := range []string{
		"sh -c 'exit 0'",
		"/bin/sh ./x",
		"exec ./whatever",
		"MAILLAB_X=1 ./whatever",
		"$HOME/bin/tool --json",
	} {
		if err := checkCanStart(line); err != nil {
			t.Errorf("checkCanStart(%q) = %v, want nil", line, err)
		}
	}
}
