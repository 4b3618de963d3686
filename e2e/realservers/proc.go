//go:build e2e

package realservers

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// stopGrace is how long a server gets to exit after SIGTERM before its
// process group is killed.
const stopGrace = 10 * time.Second

// process is a server daemon that leads its own process group, so that
// stopping it also stops the children it forked.
type process struct {
	name string
	cmd  *exec.Cmd
	// logs are the files the daemon writes: its standard output and
	// error first, then any log file of its own configuration.
	logs []string
	done chan struct{}
	err  error // valid after done is closed

	// reaper kills the process group if this test binary dies without
	// stopping it; reaperPipe is the write end of its standard input.
	reaper     *exec.Cmd
	reaperPipe *os.File
}

// startProcess starts argv with its output appended to logPath.
//
// ownGroup puts the process in a new process group; a daemon that calls
// setsid(2) itself (Postfix's master) must not be made a group leader
// first, or its setsid fails. Either way the daemon's pid is its process
// group id.
//
// Should the test binary die without running its cleanups (a test
// timeout panics past them), a reaper kills the group: Pdeathsig alone
// is not enough, since Linux clears it when a process changes its
// effective user ID, as Postfix's master does, and a dead Dovecot master
// leaves children behind for a while.
func startProcess(name, logPath string, ownGroup bool, argv ...string) (*process, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: ownGroup, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	logf.Close() // the child holds its own descriptor
	p := &process{name: name, cmd: cmd, logs: []string{logPath}, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	if err := p.startReaper(); err != nil {
		p.stop()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	return p, nil
}

// startReaper starts a shell that waits for the end of its standard
// input, a pipe whose write end only this process holds (os.Pipe sets
// close-on-exec), and then kills the daemon's process group. It leads a
// process group of its own, so that a signal to the test's group does not
// end it before the daemon.
func (p *process) startReaper() error {
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("reaper: %w", err)
	}
	defer r.Close()
	cmd := exec.Command("/bin/sh", "-c", `read _; kill -TERM -"$1" 2>/dev/null; sleep 3; kill -KILL -"$1" 2>/dev/null`,
		"maillab-reaper", strconv.Itoa(p.cmd.Process.Pid))
	cmd.Stdin = r
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		w.Close()
		return fmt.Errorf("reaper: %w", err)
	}
	p.reaper, p.reaperPipe = cmd, w
	return nil
}

// disarmReaper ends the reaper without letting it kill anything: once the
// daemon is stopped, its process group id may be reused.
func (p *process) disarmReaper() {
	if p.reaper == nil {
		return
	}
	p.reaper.Process.Kill()
	p.reaper.Wait()
	p.reaperPipe.Close()
	p.reaper = nil
}

// exited reports whether the process has ended.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM to the process group, waits up to stopGrace, then
// kills the group. It is safe to call more than once.
func (p *process) stop() error {
	defer p.disarmReaper()
	pgid := p.cmd.Process.Pid
	if !p.exited() {
		if err := syscall.Kill(-pgid, syscall.SIGTERM); err != nil {
			// Not a group leader yet (Postfix's master before setsid).
			p.cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	select {
	case <-p.done:
	case <-time.After(stopGrace):
		syscall.Kill(-pgid, syscall.SIGKILL)
		p.cmd.Process.Kill()
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
			return fmt.Errorf("stop %s: pid %d survived SIGKILL", p.name, pgid)
		}
	}
	// Children that outlived their master (a Postfix daemon finishing a
	// request) are still in the group.
	syscall.Kill(-pgid, syscall.SIGKILL)
	return nil
}

// logTail returns the last n lines of each of the process's logs.
func (p *process) logTail(n int) string {
	var b strings.Builder
	for _, path := range p.logs {
		data, err := os.ReadFile(path)
		if err != nil {
			fmt.Fprintf(&b, "==> %s: %v\n", path, err)
			continue
		}
		lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		if len(lines) > n {
			lines = lines[len(lines)-n:]
		}
		fmt.Fprintf(&b, "==> %s\n%s\n", path, strings.Join(lines, "\n"))
	}
	return b.String()
}

// logContains reports whether one of the process's logs contains s.
func (p *process) logContains(s string) bool {
	for _, path := range p.logs {
		if data, err := os.ReadFile(path); err == nil && bytes.Contains(data, []byte(s)) {
			return true
		}
	}
	return false
}

// cleanupProcess stops p when the test ends and prints its log tail if
// the test failed.
func cleanupProcess(t testing.TB, p *process) {
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s logs:\n%s", p.name, p.logTail(40))
		}
		if err := p.stop(); err != nil {
			t.Error(err)
		}
	})
}

// waitFor polls done every interval until it reports true or an error,
// the process died (the error says it ended before what: "listening on
// ADDR"), or ctx ends.
func waitFor(ctx context.Context, p *process, what string, interval time.Duration, done func() (bool, error)) error {
	for {
		ok, err := done()
		if ok || err != nil {
			return err
		}
		if p.exited() {
			return fmt.Errorf("%s exited before %s: %v", p.name, what, p.err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: not %s: %w", p.name, what, ctx.Err())
		case <-time.After(interval):
		}
	}
}

// waitReady waits until every address accepts TCP connections, the
// process died, or ctx ends.
func waitReady(ctx context.Context, p *process, addrs ...string) error {
	for _, addr := range addrs {
		err := waitFor(ctx, p, "listening on "+addr, 50*time.Millisecond, func() (bool, error) {
			var d net.Dialer
			dctx, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			c, err := d.DialContext(dctx, "tcp", addr)
			if err != nil {
				return false, nil
			}
			c.Close()
			return true, nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// waitLog waits until one of the process's logs contains s, the process
// died, or ctx ends.
func waitLog(ctx context.Context, p *process, s string) error {
	return waitFor(ctx, p, fmt.Sprintf("logging %q", s), 50*time.Millisecond, func() (bool, error) {
		return p.logContains(s), nil
	})
}

// waitFile waits until path exists, the process died, or ctx ends.
func waitFile(ctx context.Context, p *process, path string) error {
	return waitFor(ctx, p, "creating "+path, 50*time.Millisecond, func() (bool, error) {
		_, err := os.Stat(path)
		if errors.Is(err, os.ErrNotExist) {
			return false, nil
		}
		return err == nil, err
	})
}

// takenAddrs returns those of addrs (host:port) that another socket
// holds: a listen on them fails with EADDRINUSE. It is called after a
// server that was to bind them has exited.
func takenAddrs(addrs map[string]string) []string {
	var taken []string
	for _, addr := range addrs {
		ln, err := net.Listen("tcp", addr)
		if err == nil {
			ln.Close()
			continue
		}
		if errors.Is(err, syscall.EADDRINUSE) {
			taken = append(taken, addr)
		}
	}
	sort.Strings(taken)
	return taken
}

// freePorts reserves n distinct free TCP ports on 127.0.0.1. The ports are
// released before they are returned, so a server started right after can
// bind them; a lost race shows up as a bind error at start.
func freePorts(n int) ([]int, error) {
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("reserve a port: %w", err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
