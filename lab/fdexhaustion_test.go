package lab_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/maillab/maillab/lab"
	"github.com/maillab/maillab/settings"
)

// fdChildEnv makes the test binary run a lab under a lowered descriptor
// limit instead of the test (see TestListenersRecoverFromFDExhaustion).
const fdChildEnv = "MAILLAB_TEST_FD_CHILD"

// fdChildLimit is RLIMIT_NOFILE of the child lab: the lab itself needs a
// few dozen descriptors, so 300 connections exhaust it, as
// `prlimit --nofile=256:256 maillab lab` did in issue 12.
const fdChildLimit = 256

// TestListenersRecoverFromFDExhaustion runs a lab in a child process whose
// RLIMIT_NOFILE is 256, opens 300 connections spread over every port until
// the lab's accept calls fail with EMFILE, closes them, and checks that
// every listener accepts and greets again. Before the one accept loop,
// smtp, submission, submissions, imaps and pop3s never accepted again.
func TestListenersRecoverFromFDExhaustion(t *testing.T) {
	if os.Getenv(fdChildEnv) == "1" {
		runFDChild()
		return
	}
	if testing.Short() {
		t.Skip("starts a child lab and 300 connections")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestListenersRecoverFromFDExhaustion$")
	cmd.Env = append(os.Environ(), fdChildEnv+"=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start child lab: %v", err)
	}
	defer func() {
		stdin.Close() // the child closes its lab and exits
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("child lab stderr:\n%s", stderr.String())
		}
	}()
	sc := bufio.NewScanner(stdout)
	sc.Buffer(nil, 1<<20)
	var s settings.Settings
	for sc.Scan() {
		if line, ok := strings.CutPrefix(sc.Text(), "SETTINGS "); ok {
			if err := json.Unmarshal([]byte(line), &s); err != nil {
				t.Fatalf("child settings: %v", err)
			}
			break
		}
	}
	if len(s.Services) == 0 {
		t.Fatalf("child lab printed no settings (%v); stderr:\n%s", sc.Err(), stderr.String())
	}
	go io.Copy(io.Discard, stdout)

	services := []string{"smtp", "submission", "submissions", "imap", "imaps", "pop3", "pop3s"}
	for _, name := range services {
		if _, ok := s.Services[name]; !ok {
			t.Fatalf("child lab has no %s service", name)
		}
	}

	// Exhaust: 300 connections round-robin over the ports, from several
	// loopback source addresses (a per-client connection limit would
	// otherwise turn them away before the descriptors run out).
	var held []net.Conn
	for i := 0; i < 300; i++ {
		c, err := dialFrom(i/20, addr(s.Services[services[i%len(services)]]))
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		held = append(held, c)
	}
	// One more per port, so each accept loop meets EMFILE, then wait until
	// every port has logged a failed accept.
	for i, name := range services {
		c, err := dialFrom(100+i, addr(s.Services[name]))
		if err != nil {
			t.Fatalf("extra connection to %s: %v", name, err)
		}
		held = append(held, c)
	}
	deadline := time.Now().Add(30 * time.Second)
	for out := stderr.String(); !strings.Contains(out, "accept failed") && !strings.Contains(out, "server stopped"); out = stderr.String() {
		if time.Now().After(deadline) {
			t.Fatalf("the child lab never ran out of descriptors (no failed accept logged); the test no longer tests anything; stderr:\n%s", stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	for _, c := range held {
		c.Close()
	}

	// Recover: each port greets a new client within one bounded wait.
	deadline = time.Now().Add(30 * time.Second)
	for _, name := range services {
		svc := s.Services[name]
		var last error
		for {
			if last = greets(svc); last == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("%s never greeted again after the descriptors were released: %v", name, last)
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// runFDChild is the child side: a lab under RLIMIT_NOFILE fdChildLimit
// that prints its settings and runs until stdin closes.
func runFDChild() {
	lim := syscall.Rlimit{Cur: fdChildLimit, Max: fdChildLimit}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		fmt.Fprintln(os.Stderr, "setrlimit:", err)
		os.Exit(2)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	l, err := lab.Start(lab.Options{Logger: logger, HandshakeTimeout: 2 * time.Second})
	if err != nil {
		fmt.Fprintln(os.Stderr, "lab:", err)
		os.Exit(2)
	}
	data, _ := json.Marshal(l.Settings())
	fmt.Printf("SETTINGS %s\n", data)
	io.Copy(io.Discard, os.Stdin)
	l.Close()
	os.Exit(0)
}

// dialFrom connects to addr from the loopback address 127.0.1.<n+1>.
func dialFrom(n int, addr string) (net.Conn, error) {
	d := net.Dialer{
		Timeout:   5 * time.Second,
		LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 1, byte(n+1))},
	}
	return d.Dial("tcp", addr)
}

// greets connects to svc (with TLS on implicit-TLS ports) and reads the
// first line of the greeting.
func greets(svc settings.Service) error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	d := net.Dialer{}
	c, err := d.DialContext(ctx, "tcp", addr(svc))
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	if svc.Security == settings.SecurityTLS {
		tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true})
		if err := tc.Handshake(); err != nil {
			return fmt.Errorf("tls handshake: %w", err)
		}
		c = tc
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return fmt.Errorf("greeting: %w", err)
	}
	for _, ok := range []string{"220 ", "* OK", "+OK"} {
		if strings.HasPrefix(line, ok) {
			return nil
		}
	}
	return fmt.Errorf("greeting %q", strings.TrimSpace(line))
}

// lockedBuffer is a strings.Builder safe for a writer and a reader at
// once.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
