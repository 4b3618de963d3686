package mailstore_test

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/maillab/maillab/servers/mailstore"
)

// holdLockEnv makes the test binary, run as a child, open the store in
// the named directory, say "locked" and wait for its stdin to close.
const holdLockEnv = "MAILSTORE_TEST_HOLD_LOCK"

func TestMain(m *testing.M) {
	if dir := os.Getenv(holdLockEnv); dir != "" {
		s, err := mailstore.Open(mailstore.Options{Dir: dir})
		if err != nil {
			fmt.Println("open:", err)
			os.Exit(1)
		}
		fmt.Println("locked")
		bufio.NewReader(os.Stdin).ReadString('\n')
		s.Close()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestStoreLockedByAnotherProcess: while one lab (here a child process)
// has a store open, a second one is refused and told the pid of the
// first; once the first is gone, even killed with SIGKILL, the store opens.
func TestStoreLockedByAnotherProcess(t *testing.T) {
	dir := t.TempDir()
	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), holdLockEnv+"="+dir)
	stdin, err := child.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "locked\n" {
		child.Process.Kill()
		t.Fatalf("child said %q, %v; want locked", line, err)
	}

	s, err := mailstore.Open(mailstore.Options{Dir: dir})
	if err == nil {
		s.Close()
		t.Fatalf("Open of a store another process has open = nil error, want ErrStoreLocked")
	}
	pid := fmt.Sprintf("process %d ", child.Process.Pid)
	if !errors.Is(err, mailstore.ErrStoreLocked) || !strings.Contains(err.Error(), pid) || !strings.Contains(err.Error(), dir) {
		t.Errorf("Open of a locked store = %v, want ErrStoreLocked naming %q and %s", err, pid, dir)
	}

	// A crashed lab leaves no stale lock: the kernel drops a flock with
	// its process.
	child.Process.Kill()
	child.Wait()
	s, err = mailstore.Open(mailstore.Options{Dir: dir})
	if err != nil {
		t.Fatalf("Open after the holder died = %v", err)
	}
	defer s.Close()
}

// TestStoreLockInProcess: two Stores of one process on one directory
// exclude each other too (two labs in one test binary), until Close.
func TestStoreLockInProcess(t *testing.T) {
	dir := t.TempDir()
	first, err := mailstore.Open(mailstore.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if second, err := mailstore.Open(mailstore.Options{Dir: dir}); !errors.Is(err, mailstore.ErrStoreLocked) {
		if second != nil {
			second.Close()
		}
		t.Fatalf("second Open = %v, want ErrStoreLocked", err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := mailstore.Open(mailstore.Options{Dir: dir})
	if err != nil {
		t.Fatalf("Open after Close = %v", err)
	}
	again.Close()
}
