//go:build e2e

package e2e

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Tests of the harness itself: what a failure of a real client shows,
// and that parallel runs of one client do not lock each other out.

// errRecorder is a testing.TB that records Errorf instead of failing.
type errRecorder struct {
	testing.TB
	errs []string
}

func (r *errRecorder) Helper() {}
func (r *errRecorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func TestCheckShowsClientOutput(t *testing.T) {
	r := result{client: "fetchmail", args: []string{"-f", "rc"}, exit: 8,
		out: "\nfetchmail: another foreground fetchmail is running at 4242.\n\n", elapsed: 20 * time.Millisecond}
	tests := []struct {
		name string
		x    expectation
		want []string // in the one failure message; none: no failure
	}{
		{"matches", expectation{exit: 8, want: []string{"another foreground"}}, nil},
		{"exit and text", expectation{exit: 2, want: []string{"certificate has expired"}}, []string{
			"fetchmail on expired-cert: exit 8, want 2\n",
			"fetchmail on expired-cert: output lacks \"certificate has expired\"\n",
			"$ fetchmail -f rc\n(exit 8 after 20ms)\nfetchmail: another foreground fetchmail is running at 4242.",
		}},
		{"avoid", expectation{exit: 8, avoid: []string{"running at"}}, []string{
			"output has \"running at\", which it must not\n$ fetchmail",
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := &errRecorder{TB: t}
			tc.x.check(rec, "expired-cert", r)
			if len(tc.want) == 0 {
				if len(rec.errs) != 0 {
					t.Errorf("check failed a matching result: %q", rec.errs)
				}
				return
			}
			if len(rec.errs) != 1 {
				t.Fatalf("check reported %d failures, want one message: %q", len(rec.errs), rec.errs)
			}
			for _, w := range tc.want {
				if !strings.Contains(rec.errs[0], w) {
					t.Errorf("failure message lacks %q:\n%s", w, rec.errs[0])
				}
			}
			if strings.HasSuffix(rec.errs[0], "\n") {
				t.Errorf("failure message ends in blank space: %q", rec.errs[0])
			}
		})
	}
}

func TestTrimOutput(t *testing.T) {
	long := make([]string, maxOutputLines+50)
	for i := range long {
		long[i] = fmt.Sprintf("line %d", i)
	}
	tests := []struct {
		name, out string
		want      []string
		avoid     []string
	}{
		{"empty", " \n\t\n", []string{"(no output)"}, nil},
		{"blank space", "\n\n  a\n  b  \n\n", []string{"a\n  b"}, []string{"b ", "\n\n"}},
		{"long", strings.Join(long, "\n"), []string{"line 0\n", "line 99\n[... 50 lines left out ...]\nline 150\n", fmt.Sprintf("line %d", len(long)-1)}, []string{"line 100\n", "line 149\n"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := trimOutput(tc.out)
			if got != strings.TrimSpace(got) {
				t.Errorf("trimOutput kept blank space: %q", got)
			}
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("trimOutput = %q, lacks %q", got, w)
				}
			}
			for _, a := range tc.avoid {
				if strings.Contains(got, a) {
					t.Errorf("trimOutput = %q, has %q", got, a)
				}
			}
		})
	}
}

// childOutput is what `go test -v` prints of a failed test whose failure
// message holds a client's output over several lines.
const childOutput = `=== RUN   TestScenarios/expired-cert/fetchmail-imaps
    scenarios_test.go:610: fetchmail on expired-cert: exit 8, want 2
        $ fetchmail -f rc -v --nodetach
        (exit 8 after 20ms)
        fetchmail: another foreground fetchmail is running at 4242.
        
        more output
=== RUN   TestScenarios/expired-cert/openssl
    lab.go:1: not a test file
        indented, not kept
--- FAIL: TestScenarios/expired-cert/fetchmail-imaps (0.02s)
ok other line
`

func TestFailuresKeepsClientOutput(t *testing.T) {
	got := failures(childOutput)
	want := `    scenarios_test.go:610: fetchmail on expired-cert: exit 8, want 2
        $ fetchmail -f rc -v --nodetach
        (exit 8 after 20ms)
        fetchmail: another foreground fetchmail is running at 4242.
        
        more output
--- FAIL: TestScenarios/expired-cert/fetchmail-imaps (0.02s)`
	if got != want {
		t.Errorf("failures =\n%s\nwant\n%s", got, want)
	}
}

// FuzzFailures checks that failures keeps only lines of its input, in
// order, and every line that says FAIL.
func FuzzFailures(f *testing.F) {
	f.Add(childOutput)
	f.Add("")
	f.Add("  x_test.go:1: a\n\tb\n--- FAIL: T\n")
	f.Fuzz(func(t *testing.T, out string) {
		got := failures(out)
		in := strings.Split(out, "\n")
		var kept []string
		if got != "" {
			kept = strings.Split(got, "\n")
		}
		i := 0
		for _, line := range kept {
			for i < len(in) && in[i] != line {
				if strings.Contains(in[i], "FAIL") {
					t.Fatalf("failures dropped %q", in[i])
				}
				i++
			}
			if i == len(in) {
				t.Fatalf("failures returned %q, not a line of its input in order", line)
			}
			i++
		}
		for _, line := range in[i:] {
			if strings.Contains(line, "FAIL") {
				t.Fatalf("failures dropped %q", line)
			}
		}
	})
}

// TestFetchmailRunsInParallel runs two fetchmails at once against a
// server that accepts and never greets: each must time out (exit 2,
// SOCKET), and neither may be refused as a second fetchmail (exit 8,
// the lock error of a PID file shared by every root fetchmail).
func TestFetchmailRunsInParallel(t *testing.T) {
	need(t, "fetchmail")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var held sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	held.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	})
	t.Cleanup(func() {
		ln.Close()
		held.Wait()
		for _, c := range conns {
			c.Close()
		}
	})
	port := ln.Addr().(*net.TCPAddr).Port
	const n = 2
	results := make([]result, n)
	var wg sync.WaitGroup
	for i := range n {
		home := t.TempDir()
		rcFile := filepath.Join(home, "fetchmailrc")
		rc := fmt.Sprintf("set no syslog\npoll 127.0.0.1 protocol IMAP port %d timeout 3\n  user \"u\" password \"p\"\n", port)
		if err := os.WriteFile(rcFile, []byte(rc), 0o600); err != nil {
			t.Fatal(err)
		}
		wg.Go(func() { results[i] = run(t, fetchmailCommand(home, rcFile)) })
	}
	wg.Wait()
	for _, r := range results {
		expectation{exit: 2, want: []string{"timeout after 3 seconds"}, avoid: []string{"another foreground fetchmail"}}.check(t, "a silent server", r)
	}
}
