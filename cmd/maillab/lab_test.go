package main

import (
	"bytes"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/maillab/maillab/rootcause"
	"github.com/maillab/maillab/scenarios"
)

// TestLabBadInput checks that every kind of bad input gives one line that
// names the problem and exit code 2, never a panic or a stack trace.
func TestLabBadInput(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyPort := busy.Addr().(*net.TCPAddr).Port
	notDir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want []string // substrings of the one error line
	}{
		{"port in use", []string{"lab", "--port", "imaps=" + strconv.Itoa(busyPort)}, []string{"imaps", strconv.Itoa(busyPort), "address already in use"}},
		{"unwritable store", []string{"lab", "--store", filepath.Join(notDir, "mail")}, []string{"store directory", "not a directory"}},
		{"unwritable lab dir", []string{"lab", "--dir", filepath.Join(notDir, "lab")}, []string{"lab directory", "not a directory"}},
		{"unknown flag", []string{"lab", "--bogus"}, []string{"unknown flag --bogus", "nearest valid flag"}},
		{"unknown service", []string{"lab", "--port", "imap4=1143"}, []string{"--port", "unknown service \"imap4\"", "valid:"}},
		{"bad port", []string{"lab", "--port", "imaps=99999"}, []string{"--port", "not a port number"}},
		{"bad port syntax", []string{"lab", "--port", "imaps"}, []string{"--port", "SERVICE=PORT"}},
		{"non-loopback without --expose", []string{"lab", "--address", "0.0.0.0"}, []string{"--address", "--expose"}},
		{"bad address", []string{"lab", "--address", "mail.example.test"}, []string{"--address", "not an IP address"}},
		{"bad log level", []string{"lab", "--log-level", "loud"}, []string{"--log-level", "debug, info, warn or error"}},
		{"zero connections per client", []string{"lab", "--max-connections-per-client", "0"}, []string{"--max-connections-per-client 0", "-1 for no limit"}},
		{"negative total connections", []string{"lab", "--max-connections", "-5"}, []string{"--max-connections -5", "positive"}},
		{"zero SMTP timeout", []string{"lab", "--smtp-timeout", "0s"}, []string{"--smtp-timeout 0s", "positive duration"}},
		{"negative IMAP idle timeout", []string{"lab", "--imap-idle-timeout", "-1m"}, []string{"--imap-idle-timeout -1m0s", "positive duration"}},
		{"bad POP3 timeout", []string{"lab", "--pop3-timeout", "ten"}, []string{"pop3-timeout"}},
		{"unknown command", []string{"labb"}, []string{"labb"}},
		{"unknown scenario", []string{"scenario", "expird-cert"}, []string{"unknown scenario", "expired-cert"}},
		{"scenario file missing", []string{"scenario", "run", "-f", filepath.Join(notDir, "x.yaml")}, []string{"x.yaml"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(append([]string{"maillab"}, tt.args...), &stdout, &stderr)
			if code != exitUsage {
				t.Errorf("exit code %d, want %d; stderr: %s", code, exitUsage, stderr.String())
			}
			msg := strings.TrimSpace(stderr.String())
			if strings.Count(msg, "\n") != 0 {
				t.Errorf("want one line on stderr, got:\n%s", msg)
			}
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("stderr %q lacks %q", msg, w)
				}
			}
			if strings.Contains(msg, "goroutine") || strings.Contains(msg, "panic") {
				t.Errorf("stack trace on stderr: %s", msg)
			}
		})
	}
}

// TestVerifyCommand runs `maillab verify` on two scenarios with the wrong
// example diagnoser: one passes, one fails, exit 1, and the miss is
// explained.
func TestVerifyCommand(t *testing.T) {
	script, err := filepath.Abs("../../examples/external-diagnoser/always-auth-failed.sh")
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	junit := filepath.Join(t.TempDir(), "verify.xml")
	code := run([]string{"maillab", "verify", "--run", "^(healthy|wrong-password)$", "--diagnoser", script, "--junit", junit}, &stdout, &stderr)
	if code != exitFinding {
		t.Errorf("exit code %d, want %d; stderr: %s", code, exitFinding, stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{"PASS wrong-password", "FAIL healthy", "1 passed, 1 failed", "healthy: expected HEALTHY, diagnosed AUTH_FAILED", "story:"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if data, err := os.ReadFile(junit); err != nil || !strings.Contains(string(data), `failures="1"`) {
		t.Errorf("JUnit file: %v\n%s", err, data)
	}
	if code := run([]string{"maillab", "verify", "--run", "no-such-scenario"}, &stdout, &stderr); code != exitUsage {
		t.Errorf("verify --run matching nothing: exit %d, want %d", code, exitUsage)
	}
}

// TestScenarioListJSON: every catalog name with its code, in the JSON
// that scripts read.
func TestScenarioListJSON(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"maillab", "scenario", "list", "--json"}, &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	var list []struct {
		Name, Title, Section, Story, Fix string
		RootCause                        string `json:"root_cause"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &list); err != nil {
		t.Fatalf("scenario list --json: %v\n%s", err, stdout.String())
	}
	if names := scenarios.Names(); len(list) != len(names) {
		t.Errorf("scenario list --json has %d scenarios, want the catalog's %d", len(list), len(names))
	}
	want := map[string]string{"healthy": "HEALTHY", "expired-cert": "TLS_CERT_EXPIRED", "firewall-drop": "TCP_TIMEOUT", "packet-loss-handshake": "INTERMITTENT"}
	for _, s := range list {
		if s.Name == "" || s.Title == "" || s.Story == "" || s.Fix == "" || !rootcause.Valid(s.RootCause) {
			t.Errorf("incomplete entry %+v", s)
		}
		if w, ok := want[s.Name]; ok && s.RootCause != w {
			t.Errorf("%s: root_cause %s, want %s", s.Name, s.RootCause, w)
		}
		delete(want, s.Name)
	}
	if len(want) > 0 {
		t.Errorf("missing scenarios: %v", want)
	}
}
