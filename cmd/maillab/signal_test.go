package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestLabStopsCleanlyOnSignal runs `maillab lab` as a child process, sends
// it each stop signal and checks that it exits 0 and removes the lab
// directory it created (issue 12, defect 7: SIGHUP left it behind).
func TestLabStopsCleanlyOnSignal(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Skipf("no test executable: %v", err)
	}
	for _, sig := range []syscall.Signal{syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, exe, "lab", "--json", "--quiet")
			cmd.Env = append(os.Environ(), "MAILLAB_TEST_MAIN=1")
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			var s struct {
				CAFile string `json:"ca_file"`
			}
			if err := json.NewDecoder(stdout).Decode(&s); err != nil {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("read the lab's settings: %v", err)
			}
			dir := filepath.Dir(s.CAFile)
			if _, err := os.Stat(filepath.Join(dir, "lab.log")); err != nil {
				t.Fatalf("lab directory %s: %v", dir, err)
			}
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			if err := cmd.Wait(); err != nil {
				t.Errorf("after %v: %v, want exit 0", sig, err)
			}
			if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
				os.RemoveAll(dir)
				t.Errorf("after %v the lab directory %s is still there (stat: %v)", sig, dir, err)
			}
		})
	}
}

func TestLabLogFlagsBadInput(t *testing.T) {
	for _, args := range [][]string{{"lab", "--log-max-size", "-1"}, {"lab", "--log-keep", "-2"}} {
		var stdout, stderr bytes.Buffer
		code := run(append([]string{"maillab"}, args...), &stdout, &stderr)
		msg := strings.TrimSpace(stderr.String())
		if code != exitUsage || strings.Count(msg, "\n") != 0 || !strings.Contains(msg, args[1]) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d and one line naming %s", args, code, msg, exitUsage, args[1])
		}
	}
}
