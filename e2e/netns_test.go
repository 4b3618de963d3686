//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/maillab/maillab/settings"
)

// The drop and reject faults in their two mechanisms, run the way a
// trainer runs them: the maillab binary with a custom scenario file.
//
//   - mode nftables (root): a real nft rule in the lab's network namespace.
//     The test makes a namespace of its own (ip netns add), so the rules
//     never touch the host's traffic, and runs the lab and every client
//     inside it.
//   - mode listener (default, no privileges): an accept queue kept full,
//     so SYNs are dropped by the kernel. The test runs the binary as an
//     unprivileged user to show it needs nothing else.

// buildMaillab builds cmd/maillab into dir.
func buildMaillab(t *testing.T, dir string) string {
	t.Helper()
	goTool := need(t, "go")
	bin := filepath.Join(dir, "maillab")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goTool, "build", "-o", bin, "github.com/maillab/maillab/cmd/maillab")
	cmd.Dir = ".." // the module root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build cmd/maillab: %v\n%s", err, out)
	}
	return bin
}

// writeScenario writes a custom scenario file with one network fault on
// the submission port.
func writeScenario(t *testing.T, dir, fault, mode, rootCause string) string {
	t.Helper()
	modeLine := ""
	if mode != "" {
		modeLine = "\n    mode: " + mode
	}
	name := "e2e-" + fault + "-" + orDefault(mode, "listener")
	yaml := fmt.Sprintf(`# e2e: %[2]s on the submission port, mode %[3]s
name: %[1]s
title: submission port %[2]s (e2e)
root_cause: %[4]s
story: The customer cannot send mail; receiving works.
fix: Open the submission port in the firewall.
faults:
  - type: %[2]s
    services: [submission]%[5]s
`, name, fault, orDefault(mode, "listener (default)"), rootCause, modeLine)
	path := filepath.Join(dir, name+".yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// lockedBuffer collects a process's output while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// labProcess is a running `maillab scenario run`.
type labProcess struct {
	cmd      *exec.Cmd
	out      *lockedBuffer
	done     chan struct{}
	waitErr  error
	settings *settings.Settings
}

// startScenarioProcess runs argv (ending in the maillab command line) in
// the background and waits until it has written its settings file.
func startScenarioProcess(t *testing.T, argv []string, settingsPath string, cred *syscall.Credential, env []string) *labProcess {
	t.Helper()
	p := &labProcess{out: &lockedBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(argv[0], argv[1:]...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.cmd.Env = append(os.Environ(), env...)
	if cred != nil {
		p.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", strings.Join(argv, " "), err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() { p.stop(t) })
	deadline := time.After(30 * time.Second)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if s, err := settings.Load(settingsPath); err == nil {
			p.settings = s
			return p
		}
		select {
		case <-p.done:
			t.Fatalf("%s exited before writing its settings: %v\n%s", strings.Join(argv, " "), p.waitErr, p.out)
		case <-deadline:
			t.Fatalf("%s wrote no settings within 30s\n%s", strings.Join(argv, " "), p.out)
		case <-tick.C:
		}
	}
}

// stop sends SIGTERM (the lab shuts down and removes its rules) and waits
// for the exit; a process that does not stop in 15 s is killed and the
// test fails.
func (p *labProcess) stop(t *testing.T) {
	t.Helper()
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		var exitErr *exec.ExitError
		if p.waitErr != nil && !errors.As(p.waitErr, &exitErr) {
			t.Errorf("maillab: %v", p.waitErr)
		} else if p.waitErr != nil {
			t.Errorf("maillab exited with %v after SIGTERM\n%s", p.waitErr, p.out)
		}
	case <-time.After(15 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
		t.Errorf("maillab did not stop within 15s of SIGTERM\n%s", p.out)
	}
}

// newNetns makes a network namespace with its loopback up and deletes it
// when the test ends.
func newNetns(t *testing.T) (name string, prefix []string) {
	t.Helper()
	ip := need(t, "ip")
	name = fmt.Sprintf("maillab-e2e-%d", os.Getpid())
	ipRun := func(args ...string) result {
		return run(t, command{client: "ip", args: args, limit: 10 * time.Second})
	}
	if r := ipRun("netns", "add", name); r.exit != 0 {
		t.Fatalf("ip netns add %s: exit %d\n%s", name, r.exit, r.out)
	}
	t.Cleanup(func() {
		if r := ipRun("netns", "delete", name); r.exit != 0 {
			t.Errorf("ip netns delete %s: exit %d\n%s", name, r.exit, r.out)
		}
	})
	prefix = []string{ip, "netns", "exec", name}
	if r := ipRun("netns", "exec", name, ip, "link", "set", "lo", "up"); r.exit != 0 {
		t.Fatalf("ip link set lo up in %s: exit %d\n%s", name, r.exit, r.out)
	}
	return name, prefix
}

// maillabTables lists the nft tables maillab made in a namespace.
func maillabTables(t *testing.T, prefix []string) []string {
	t.Helper()
	r := run(t, command{client: "nft", prefix: prefix, args: []string{"list", "tables"}, limit: 10 * time.Second})
	if r.exit != 0 {
		t.Fatalf("nft list tables: exit %d\n%s", r.exit, r.out)
	}
	var ours []string
	for _, tb := range parseNFTTables(r.out) {
		if strings.HasPrefix(tb, "inet maillab_") {
			ours = append(ours, tb)
		}
	}
	return ours
}

// TestPacketFilterNftables: drop and reject as real nftables rules in a
// network namespace of the test's own. curl in the same namespace times
// out (drop: exit 28, never "refused") or is refused (reject: exit 7) on
// the submission port while IMAPS works; the lab's table exists while the
// lab runs and is gone after SIGTERM.
func TestPacketFilterNftables(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: nftables rules in a network namespace of its own (mode listener covers unprivileged runs)")
	}
	need(t, "nft")
	need(t, "curl")
	need(t, "openssl")
	dir := t.TempDir()
	bin := buildMaillab(t, dir)
	ns, prefix := newNetns(t)
	tests := []struct {
		fault     string
		rootCause string
		expect    expectation
	}{
		{"drop", "TCP_TIMEOUT", expectation{exit: 28, want: []string{curlConnTimeout}, avoid: []string{curlRefused}}},
		{"reject", "TCP_REFUSED", expectation{exit: 7, want: []string{curlRefused}}},
	}
	for _, tc := range tests {
		t.Run(tc.fault, func(t *testing.T) {
			file := writeScenario(t, dir, tc.fault, "nftables", tc.rootCause)
			out := filepath.Join(dir, tc.fault+"-settings.json")
			argv := append(append([]string(nil), prefix...), bin, "scenario", "run", "-f", file, "--settings-out", out, "-q")
			p := startScenarioProcess(t, argv, out, nil, nil)
			tables := maillabTables(t, prefix)
			if len(tables) != 1 {
				t.Fatalf("nft list tables in %s while the lab runs: maillab tables %q, want one\n%s", ns, tables, p.out)
			}
			t.Logf("mechanism: nftables rule (table %s) in network namespace %s", tables[0], ns)

			sub := p.settings.Services["submission"]
			// Behind the rule the submission server still listens: the
			// packet filter, not the socket, makes the failure.
			ss := run(t, command{client: "ss", prefix: prefix, args: []string{"-Htln", fmt.Sprintf("sport = :%d", sub.Port)}, limit: 10 * time.Second})
			if ss.exit != 0 || !strings.Contains(ss.out, "LISTEN") {
				t.Errorf("ss in %s: nothing listens on submission port %d behind the rule\n%s", ns, sub.Port, ss)
			}
			r := run(t, command{client: "curl", prefix: prefix, args: []string{"-sS", "-v", "--connect-timeout", "3",
				fmt.Sprintf("smtp://127.0.0.1:%d/", sub.Port)}})
			tc.expect.check(t, "e2e-"+tc.fault+"-nftables", r)

			imaps := p.settings.Services["imaps"]
			r = run(t, command{client: "openssl", prefix: prefix, stdin: []byte{}, limit: 20 * time.Second, args: []string{
				"s_client", "-connect", fmt.Sprintf("127.0.0.1:%d", imaps.Port), "-servername", imaps.Host,
				"-verify_hostname", imaps.Host, "-verify_return_error", "-CAfile", p.settings.CAFile}})
			expectation{exit: 0, want: []string{opensslVerifyOK}}.check(t, "e2e-"+tc.fault+"-nftables (imaps)", r)

			p.stop(t)
			if tables := maillabTables(t, prefix); len(tables) != 0 {
				t.Errorf("nft list tables in %s after SIGTERM: %q left behind", ns, tables)
			}
		})
	}
}

// TestDropListenerModeUnprivileged: the default drop mechanism (an accept
// queue kept full) needs no privileges: the binary runs as nobody
// (uid 65534) when the test is root, and curl's connect still times out
// (exit 28, not refused) while IMAPS works.
func TestDropListenerModeUnprivileged(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the accept-queue drop relies on Linux dropping SYNs for a full queue")
	}
	need(t, "curl")
	need(t, "openssl")
	// A directory the unprivileged user can read (binary, scenario) and
	// write (settings, lab directory) in.
	dir, err := os.MkdirTemp("", "maillab-e2e-unpriv-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	bin := buildMaillab(t, dir)
	file := writeScenario(t, dir, "drop", "", "TCP_TIMEOUT")
	out := filepath.Join(dir, "settings.json")

	var cred *syscall.Credential
	who := fmt.Sprintf("uid %d", os.Geteuid())
	if os.Geteuid() == 0 {
		cred = &syscall.Credential{Uid: 65534, Gid: 65534, NoSetGroups: true}
		who = "uid 65534 (nobody)"
	}
	p := startScenarioProcess(t, []string{bin, "scenario", "run", "-f", file, "--settings-out", out, "-q"}, out, cred, []string{"TMPDIR=" + dir})
	if cred != nil {
		status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(status), "\nUid:\t65534\t65534\t65534\t65534\n") {
			t.Fatalf("maillab does not run as uid 65534:\n%s", status)
		}
	}
	t.Logf("mechanism: listener mode (accept queue kept full), maillab running as %s", who)

	c := newMailClient(t, "e2e-drop-listener", p.settings)
	tc := expectation{exit: 28, want: []string{curlConnTimeout}, avoid: []string{curlRefused}}
	tc.check(t, "e2e-drop-listener", c.curlSend("submission", ""))
	expectation{exit: 0, want: []string{opensslVerifyOK}}.check(t, "e2e-drop-listener (imaps)", c.openssl("imaps"))
}
