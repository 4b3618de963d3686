package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// startPOP3 serves a minimal POP3 greeting and CAPA on 127.0.0.1.
func startPOP3(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.Write([]byte("+OK ready\r\n"))
				r := bufio.NewReader(c)
				for {
					l, err := r.ReadString('\n')
					if err != nil {
						return
					}
					switch strings.ToUpper(strings.TrimSpace(l)) {
					case "CAPA":
						c.Write([]byte("+OK\r\nUSER\r\nUIDL\r\n.\r\n"))
					case "QUIT":
						c.Write([]byte("+OK bye\r\n"))
						return
					default:
						c.Write([]byte("-ERR unknown\r\n"))
					}
				}
			}()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}

// closedPort returns a port where nothing listens.
func closedPort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return port
}

func TestDiagnoseCommand(t *testing.T) {
	t.Setenv("MAILLAB_PASSWORD", "")
	dir := t.TempDir()
	badJSON := filepath.Join(dir, "bad.json")
	os.WriteFile(badJSON, []byte("{\n  \"services\": {\n    \"imap\": {\"host\": \"x\", \"port\": \"143\"}\n  }\n}\n"), 0o600)
	badXML := filepath.Join(dir, "bad.xml")
	os.WriteFile(badXML, []byte("<clientConfig>\n<emailProvider>\n<incomingServer type=\"imap\">\n<port>x</port>\n"), 0o600)
	pop := strconv.Itoa(startPOP3(t))
	closed := strconv.Itoa(closedPort(t))
	tests := []struct {
		name     string
		args     []string
		code     int
		stdout   string
		stderr   string
		rootJSON string
	}{
		{name: "nothing to do", args: nil, code: exitUsage, stderr: "nothing to diagnose"},
		{name: "missing settings file", args: []string{"--settings", filepath.Join(dir, "nope.json")}, code: exitUsage, stderr: "--settings " + filepath.Join(dir, "nope.json") + ": no such file"},
		{name: "malformed settings", args: []string{"--settings", badJSON}, code: exitUsage, stderr: badJSON + ":3:"},
		{name: "malformed autoconfig", args: []string{"--autoconfig", badXML}, code: exitUsage, stderr: badXML + ":"},
		{name: "security without server", args: []string{"--imap-security", "tls"}, code: exitUsage, stderr: "--imap-security needs --imap"},
		{name: "bad security", args: []string{"--imap", "h", "--imap-security", "ssl"}, code: exitUsage, stderr: "--imap-security"},
		{name: "bad TLS version", args: []string{"--imap", "h", "--client-max-tls", "1.4"}, code: exitUsage, stderr: "--client-max-tls"},
		{name: "bad host", args: []string{"--smtp", "a b:25"}, code: exitUsage, stderr: "--smtp"},
		{name: "zero reply timeout", args: []string{"--imap", "h", "--reply-timeout", "0s"}, code: exitUsage, stderr: "--reply-timeout must be positive"},
		{name: "negative connect timeout", args: []string{"--imap", "h", "--connect-timeout", "-1s"}, code: exitUsage, stderr: "--connect-timeout must be positive"},
		{name: "stray argument", args: []string{"--imap", "h", "extra"}, code: exitUsage, stderr: "no arguments"},
		{name: "healthy", args: []string{"--pop3", "127.0.0.1:" + pop, "--pop3-security", "none", "--timeout", "2s"}, code: exitOK, stdout: "Root cause: HEALTHY"},
		{name: "refused, JSON", args: []string{"--imap", "127.0.0.1:" + closed, "--imap-security", "tls", "--timeout", "300ms", "--json"}, code: exitFinding, rootJSON: "TCP_REFUSED"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(append([]string{"maillab", "diagnose"}, tt.args...), &stdout, &stderr)
			if code != tt.code {
				t.Fatalf("maillab diagnose %v = exit %d, want %d\nstdout: %s\nstderr: %s", tt.args, code, tt.code, stdout.String(), stderr.String())
			}
			if tt.stderr != "" && !strings.Contains(stderr.String(), tt.stderr) {
				t.Errorf("stderr = %q, want it to contain %q", stderr.String(), tt.stderr)
			}
			if tt.code == exitUsage && strings.Count(strings.TrimSpace(stderr.String()), "\n") > 0 {
				t.Errorf("usage error is not one line: %q", stderr.String())
			}
			if tt.stdout != "" && !strings.Contains(stdout.String(), tt.stdout) {
				t.Errorf("stdout lacks %q:\n%s", tt.stdout, stdout.String())
			}
			if tt.rootJSON != "" {
				var r struct {
					RootCause string `json:"root_cause"`
				}
				if err := json.Unmarshal(stdout.Bytes(), &r); err != nil || r.RootCause != tt.rootJSON {
					t.Errorf("JSON root_cause = %q (%v), want %s\n%s", r.RootCause, err, tt.rootJSON, stdout.String())
				}
			}
		})
	}
}

func TestDiagnoseHelp(t *testing.T) {
	var stdout, stderr bytes.Buffer
	run([]string{"maillab", "diagnose", "--help"}, &stdout, &stderr)
	for _, want := range []string{"EXAMPLES", "EXIT CODES", "one login attempt per service", "--allow-plaintext", "MAILLAB_PASSWORD"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("--help lacks %q", want)
		}
	}
}

// silentPort accepts connections and never greets; accepted receives a
// value for each connection (dropped when nobody waits).
func silentPort(t *testing.T, accepted chan<- struct{}) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	var mu sync.Mutex
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			select {
			case accepted <- struct{}{}:
			default:
			}
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestDiagnoseInterrupt runs maillab diagnose as a child process against a
// server that never greets, sends it SIGINT while it waits, and checks
// that it exits 130 with the steps so far and no root cause or finding.
func TestDiagnoseInterrupt(t *testing.T) {
	accepted := make(chan struct{})
	port := strconv.Itoa(silentPort(t, accepted))
	for _, asJSON := range []bool{false, true} {
		t.Run(map[bool]string{false: "text", true: "json"}[asJSON], func(t *testing.T) {
			args := []string{"diagnose", "--pop3", "127.0.0.1:" + port, "--pop3-security", "none", "--connect-timeout", "100ms", "--reply-timeout", "1m"}
			if asJSON {
				args = append(args, "--json")
			}
			cmd := exec.Command(os.Args[0], args...)
			cmd.Env = append(os.Environ(), "MAILLAB_TEST_MAIN=1", "MAILLAB_PASSWORD=")
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			// Interrupt once the child has reached the server: the
			// silent server accepted its connection, so its signal handler
			// is in place (it is set before the probes start).
			select {
			case <-accepted:
			case err := <-done:
				t.Fatalf("maillab diagnose ended before connecting: %v\n%s", err, stderr.String())
			case <-time.After(time.Minute):
				cmd.Process.Kill()
				t.Fatal("maillab diagnose did not connect within a minute")
			}
			cmd.Process.Signal(os.Interrupt)
			var err error
			select {
			case err = <-done:
			case <-time.After(30 * time.Second):
				cmd.Process.Kill()
				t.Fatalf("maillab diagnose did not end after SIGINT; stdout:\n%s", stdout.String())
			}
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != exitInterrupted {
				t.Fatalf("maillab diagnose after SIGINT: %v, want exit %d\nstdout: %s\nstderr: %s", err, exitInterrupted, stdout.String(), stderr.String())
			}
			out := stdout.String()
			if !asJSON {
				for _, want := range []string{"✓ dns", "interrupted", "no root cause"} {
					if !strings.Contains(out, want) {
						t.Errorf("text output lacks %q:\n%s", want, out)
					}
				}
				if strings.Contains(out, "SERVER_SLOW") || strings.Contains(out, "Root cause:") {
					t.Errorf("an interrupted run named a root cause:\n%s", out)
				}
				return
			}
			var r struct {
				RootCause   string            `json:"root_cause"`
				Interrupted bool              `json:"interrupted"`
				Findings    []json.RawMessage `json:"findings"`
				Services    []struct {
					Steps []struct {
						Step string `json:"step"`
						OK   bool   `json:"ok"`
						Code string `json:"code"`
					} `json:"steps"`
				} `json:"services"`
			}
			if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
				t.Fatalf("output is not JSON: %v\n%s", err, out)
			}
			if !r.Interrupted || r.RootCause != "" || len(r.Findings) != 0 || len(r.Services) != 1 {
				t.Fatalf("interrupted JSON = %+v", r)
			}
			for _, st := range r.Services[0].Steps {
				if st.Code != "" {
					t.Errorf("step %s has code %s after an interrupt", st.Step, st.Code)
				}
			}
		})
	}
}
