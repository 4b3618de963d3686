//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// hiddenToolEnv marks a run of this test binary by
// TestMissingToolSkipsNotFails, with one tool removed from PATH.
const hiddenToolEnv = "MAILLAB_E2E_HIDDEN_TOOL"

// toolRuns are the tests each hidden-tool run executes: every client
// program of the package, and the tests where one step depends on another
// (readers of what the senders delivered).
var toolRuns = [][]string{
	{"-test.run", "^(TestLabMailFlow|TestLabOpenSSLVerifiesChain|TestLabDNS)$"},
	{"-test.run", "^TestScenarios$/^(healthy|expired-cert|smtp-host-typo)$"},
}

// TestMissingToolSkipsNotFails runs the tests of real clients again, in
// a child process whose PATH lacks one client at a time, and checks the
// README's promise: a test that needs the missing client skips with a
// one-line reason naming it, and nothing fails. With CI=true the same
// absence must fail.
func TestMissingToolSkipsNotFails(t *testing.T) {
	if os.Getenv(hiddenToolEnv) != "" {
		t.Skip("already a hidden-tool run")
	}
	tools := []string{"curl", "openssl", "swaks", "msmtp", "fetchmail", "dig"}
	for _, tool := range tools {
		t.Run("without-"+tool, func(t *testing.T) {
			path := pathWithout(t, tool)
			named := false
			for _, args := range toolRuns {
				out, err := runSelf(t, path, tool, false, args...)
				if err != nil || strings.Contains(out, "--- FAIL") {
					t.Errorf("without %s, %s: %v; want every test to pass or skip:\n%s", tool, strings.Join(args, " "), err, failures(out))
				}
				named = named || strings.Contains(out, tool+" not installed")
			}
			if !named && allInstalled(tools) {
				t.Errorf("without %s: no test skipped with \"%s not installed\"", tool, tool)
			}
		})
	}
	t.Run("CI=true-fails", func(t *testing.T) {
		out, err := runSelf(t, pathWithout(t, "msmtp"), "msmtp", true, "-test.run", "^TestLabMailFlow$/^msmtp-submission-starttls$")
		var exitErr *exec.ExitError
		if !errors.As(err, &exitErr) || !strings.Contains(out, "not installed") || !strings.Contains(out, "CI=true requires every client") {
			t.Errorf("with CI=true and no msmtp: %v, want a failure naming msmtp:\n%s", err, out)
		}
	})
}

// allInstalled reports whether every tool is on PATH: only then must a
// run without one of them skip naming that one (otherwise another
// missing tool may be the first a test checks).
func allInstalled(tools []string) bool {
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			return false
		}
	}
	return true
}

// failures returns the lines of a verbose test output around its FAILs:
// the FAIL lines and every message of a test (a line naming a _test.go
// file) with its continuation lines, which go test indents deeper than
// the message's first line; a client's output in a failure message is
// such a continuation.
func failures(out string) string {
	var keep []string
	msgIndent := -1 // indentation of the message being kept; -1: none
	for _, line := range strings.Split(out, "\n") {
		indent := len(line) - len(strings.TrimLeft(line, " \t"))
		switch {
		case strings.Contains(line, "FAIL") || strings.Contains(line, "_test.go:"):
			keep = append(keep, line)
			msgIndent = -1
			if strings.Contains(line, "_test.go:") {
				msgIndent = indent
			}
		case msgIndent >= 0 && indent > msgIndent:
			keep = append(keep, line)
		default:
			msgIndent = -1
		}
	}
	return strings.Join(keep, "\n")
}

// runSelf runs this test binary with args, PATH set to path, and CI set
// or cleared, and returns its verbose output.
func runSelf(t *testing.T, path, tool string, ci bool, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], append([]string{"-test.v", "-test.count=1"}, args...)...)
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "PATH=") || strings.HasPrefix(kv, "CI=")
	})
	env = append(env, "PATH="+path, hiddenToolEnv+"="+tool)
	if ci {
		env = append(env, "CI=true")
	}
	cmd.Env = env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// pathWithout returns a directory usable as PATH that holds a link to
// every program of the current PATH except tool.
func pathWithout(t *testing.T, tool string) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range filepath.SplitList(os.Getenv("PATH")) {
		entries, err := os.ReadDir(d)
		if err != nil {
			continue
		}
		for _, e := range entries {
			name := e.Name()
			if name == tool {
				continue
			}
			link := filepath.Join(dir, name)
			if _, err := os.Lstat(link); err == nil {
				continue // an earlier PATH entry wins, as in the shell
			}
			if err := os.Symlink(filepath.Join(d, name), link); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := os.Lstat(filepath.Join(dir, tool)); err == nil {
		t.Fatalf("%s still on the reduced PATH", tool)
	}
	return dir
}
