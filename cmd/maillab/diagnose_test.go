package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
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
