//go:build e2e

// Package e2e drives real mail clients from Debian packages (curl,
// openssl s_client, swaks, msmtp, fetchmail, dig) against maillab: the
// plain lab must work for all of them (issue 2), and every scenario of the
// failure catalog must make them fail the way shared/catalog.md describes,
// asserted on each client's own exit code and error text (issue 3). The
// packet-filter tests run the maillab binary in a network namespace of
// their own with real nftables rules.
//
// Run: go test -race -tags e2e ./e2e/...
//
// A missing client skips the tests that need it with a one-line reason,
// except when CI=true, where it fails them: CI installs every client.
// Golden files under testdata/ are rewritten with -update.
package e2e

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// Debian packages of the clients, for skip messages and .ci/run.
var clientPackages = map[string]string{
	"curl":      "curl",
	"openssl":   "openssl",
	"swaks":     "swaks",
	"msmtp":     "msmtp",
	"fetchmail": "fetchmail",
	"dig":       "bind9-dnsutils",
	"nft":       "nftables",
	"ip":        "iproute2",
	"ss":        "iproute2",
	"go":        "golang (the Go toolchain)",
}

// clientFeatures checks what a client needs beyond being installed; the
// message names the missing Debian package.
var clientFeatures = map[string]func(path string) string{
	// swaks speaks TLS only with Net::SSLeay, which Debian lists as a
	// Recommends (lost with --no-install-recommends).
	"swaks": func(path string) string {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		out, _ := exec.CommandContext(ctx, path, "--support").CombinedOutput()
		if !strings.Contains(string(out), "=== TLS supported") {
			return "swaks has no TLS support (Debian package libnet-ssleay-perl)"
		}
		return ""
	},
}

type clientInfo struct {
	path    string
	problem string // why it cannot be used; empty if it can
}

var (
	clientMu sync.Mutex
	clients  = map[string]clientInfo{}
)

// need returns the path of a client program. A missing client skips the
// test, or fails it when CI=true (CI installs every client, so a missing
// one there is a broken install step, not a reason to pass).
func need(t testing.TB, name string) string {
	t.Helper()
	clientMu.Lock()
	info, ok := clients[name]
	if !ok {
		info.path, _ = exec.LookPath(name)
		if info.path == "" {
			info.problem = fmt.Sprintf("%s not installed (Debian package %s)", name, clientPackages[name])
		} else if check := clientFeatures[name]; check != nil {
			info.problem = check(info.path)
		}
		clients[name] = info
	}
	clientMu.Unlock()
	if info.problem == "" {
		return info.path
	}
	msg := info.problem
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + "; CI=true requires every client")
	}
	t.Skip(msg)
	return ""
}

// defaultLimit bounds every client run; the clients' own timeouts
// (--connect-timeout, --max-time, --timeout, +time) are far shorter, so
// reaching it means a client hung and the test fails.
const defaultLimit = 45 * time.Second

// result is what one run of a client produced.
type result struct {
	client  string
	args    []string
	exit    int // -1 when the process was killed at its deadline
	out     string
	elapsed time.Duration
}

// String shows the command and its output (stdout and stderr, trimmed),
// for failure messages.
func (r result) String() string {
	return fmt.Sprintf("$ %s %s\n(exit %d after %s)\n%s", r.client, strings.Join(r.args, " "), r.exit, r.elapsed.Round(time.Millisecond), trimOutput(r.out))
}

// maxOutputLines bounds a client's output in a failure message: the
// first and last half of it are kept, which hold the connection, the
// handshake and the client's final error.
const maxOutputLines = 200

// trimOutput trims a client's output for a failure message: surrounding
// blank space, and the middle of an output longer than maxOutputLines
// (saying how many lines were left out); an empty output says so.
func trimOutput(out string) string {
	out = strings.TrimSpace(out)
	if out == "" {
		return "(no output)"
	}
	lines := strings.Split(out, "\n")
	if len(lines) <= maxOutputLines {
		return out
	}
	half := maxOutputLines / 2
	kept := append(slices.Clip(lines[:half]), fmt.Sprintf("[... %d lines left out ...]", len(lines)-2*half))
	return strings.Join(append(kept, lines[len(lines)-half:]...), "\n")
}

// command describes one client run.
type command struct {
	client string
	args   []string
	stdin  []byte
	env    []string // added to the environment
	limit  time.Duration
	// prefix runs the client through another program (ip netns exec NS).
	prefix []string
}

// run starts the client, waits for it within its limit and returns its
// exit code and combined output. It fails the test only when the client
// cannot be started at all.
func run(t testing.TB, c command) result {
	t.Helper()
	path := need(t, c.client)
	limit := c.limit
	if limit == 0 {
		limit = defaultLimit
	}
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	argv := append(append([]string(nil), c.prefix...), path)
	argv = append(argv, c.args...)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.WaitDelay = 2 * time.Second
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if c.stdin != nil {
		cmd.Stdin = bytes.NewReader(c.stdin)
	}
	cmd.Env = append(os.Environ(), c.env...)
	start := time.Now()
	err := cmd.Run()
	r := result{client: c.client, args: c.args, out: out.String(), elapsed: time.Since(start)}
	var exitErr *exec.ExitError
	switch {
	case err == nil:
	case ctx.Err() != nil:
		r.exit = -1
		r.out += fmt.Sprintf("\n[killed: no exit within %s]", limit)
	case errors.As(err, &exitErr):
		r.exit = exitErr.ExitCode()
	default:
		t.Fatalf("%s: %v", c.client, err)
	}
	return r
}

// expectation is what a client run must show: its exit code and text its
// output must contain (want) or must not (avoid).
type expectation struct {
	exit  int
	want  []string
	avoid []string
}

// check compares a client's result with what the scenario must show. A
// mismatch fails the test with one message that names every problem and
// holds the client's command line and output, so the failure reads whole
// from a CI log (and from the excerpt TestMissingToolSkipsNotFails shows
// of a child run). First line: "curl on expired-cert: exit 0, want 60".
func (x expectation) check(t testing.TB, scenario string, r result) {
	t.Helper()
	var problems []string
	if r.exit != x.exit {
		problems = append(problems, fmt.Sprintf("%s on %s: exit %d, want %d", r.client, scenario, r.exit, x.exit))
	}
	for _, w := range x.want {
		if !strings.Contains(r.out, w) {
			problems = append(problems, fmt.Sprintf("%s on %s: output lacks %q", r.client, scenario, w))
		}
	}
	for _, a := range x.avoid {
		if strings.Contains(r.out, a) {
			problems = append(problems, fmt.Sprintf("%s on %s: output has %q, which it must not", r.client, scenario, a))
		}
	}
	if len(problems) > 0 {
		t.Errorf("%s\n%s", strings.Join(problems, "\n"), r)
	}
}
