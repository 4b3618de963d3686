package verify_test

import (
	"bytes"
	"context"
	"encoding/xml"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/maillab/maillab/scenarios"
	"github.com/maillab/maillab/settings"
	"github.com/maillab/maillab/verify"
)

// TestBundledDiagnoserPassesCatalog is the shipped check: every catalog
// scenario, maillab's own diagnoser, the expected root cause.
func TestBundledDiagnoserPassesCatalog(t *testing.T) {
	sum, err := verify.Run(context.Background(), verify.Options{Diagnoser: verify.Bundled{Timeout: time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	if names := scenarios.Names(); len(sum.Outcomes) != len(names) {
		t.Errorf("ran %d scenarios, want the catalog's %d", len(sum.Outcomes), len(names))
	}
	// How the bundled diagnoser meets each compound scenario's secondary
	// cause. The login behind an untrusted certificate stays unverifiable:
	// the diagnoser never sends the password without verification.
	secondary := map[string]string{
		"expired-cert-wrong-password":  "AUTH_FAILED " + verify.SecondaryUnverifiable,
		"lockout-old-password":         "AUTH_FAILED " + verify.SecondaryUnverifiable,
		"size-limit-slow-link":         "LINK_SLOW " + verify.SecondaryUnverifiable,
		"wrong-port-starttls-stripped": "STARTTLS_STRIPPED " + verify.SecondaryFound,
		"dns-poisoned-impostor-cert":   "TLS_CERT_HOSTNAME_MISMATCH " + verify.SecondaryFound,
		"port587-blocked-old-password": "AUTH_FAILED " + verify.SecondaryFound,
	}
	for _, o := range sum.Outcomes {
		if !o.Pass {
			var b bytes.Buffer
			o.WriteMiss(&b)
			t.Errorf("Diagnose(%s) = %s, want %s%s", o.Scenario, o.Diagnosed, o.Expected, b.String())
		}
		if want, ok := secondary[o.Scenario]; ok {
			if len(o.Secondary) != 1 || o.Secondary[0].Code+" "+o.Secondary[0].Status != want {
				t.Errorf("%s: secondary %+v, want %s", o.Scenario, o.Secondary, want)
			}
		}
	}
}

func script(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "diagnoser.sh")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func pick(t *testing.T, names ...string) []*scenarios.Scenario {
	t.Helper()
	var out []*scenarios.Scenario
	for _, n := range names {
		sc, err := scenarios.Lookup(n)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, sc)
	}
	return out
}

// TestExternalDiagnosers: a wrong diagnoser is reported with the right
// passes and failures; one that crashes, hangs or prints garbage is a FAIL
// with the reason, never a hang of verify.
func TestExternalDiagnosers(t *testing.T) {
	wrong, err := filepath.Abs("../examples/external-diagnoser/always-auth-failed.sh")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		line      string
		timeout   time.Duration
		wantPass  []string
		wantError string // substring of every failure's reason
	}{
		{"always AUTH_FAILED", wrong, 0, []string{"wrong-password", "wrong-username-case"}, ""},
		{"reads MAILLAB_SETTINGS", script(t, `grep -q '"expected_root_cause": "HEALTHY"' "$MAILLAB_SETTINGS" && echo '{"root_cause":"HEALTHY"}' && exit 0; echo '{"root_cause":"AUTH_FAILED"}'; exit 1`), 0,
			[]string{"healthy", "wrong-password", "wrong-username-case"}, ""},
		{"crashes", script(t, `echo 'panic: runtime error' >&2; exit 3`), 0, nil, "exited with exit status 3; stderr: panic: runtime error"},
		{"hangs", script(t, `sleep 600`), 300 * time.Millisecond, nil, "timed out after 300ms"},
		{"prints garbage", script(t, `echo 'all good!'`), 0, nil, "not diagnose JSON"},
		{"no root cause", script(t, `echo '{"summary":"x"}'`), 0, nil, "no root_cause"},
		{"missing command", "/nonexistent/diagnoser", 0, nil, "exited with exit status 127"},
	}
	list := pick(t, "healthy", "wrong-password", "wrong-username-case", "expired-cert")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			sum, err := verify.Run(context.Background(), verify.Options{
				Scenarios: list,
				Diagnoser: verify.Command{Line: tt.line, Timeout: tt.timeout},
			})
			if err != nil {
				t.Fatal(err)
			}
			if tt.timeout > 0 && time.Since(start) > 30*time.Second {
				t.Errorf("verify took %s with a hanging diagnoser", time.Since(start))
			}
			var passed []string
			for _, o := range sum.Outcomes {
				if o.Pass {
					passed = append(passed, o.Scenario)
				} else if tt.wantError != "" && !strings.Contains(o.Error, tt.wantError) {
					t.Errorf("%s: error %q, want it to contain %q", o.Scenario, o.Error, tt.wantError)
				}
			}
			sort.Strings(passed)
			if strings.Join(passed, ",") != strings.Join(tt.wantPass, ",") {
				t.Errorf("passed %v, want %v", passed, tt.wantPass)
			}
			if sum.Passed != len(tt.wantPass) || sum.Failed != len(list)-len(tt.wantPass) {
				t.Errorf("summary %d passed, %d failed; want %d, %d", sum.Passed, sum.Failed, len(tt.wantPass), len(list)-len(tt.wantPass))
			}
		})
	}
}

func TestReports(t *testing.T) {
	sum, err := verify.Run(context.Background(), verify.Options{
		Run:       regexp.MustCompile(`^(healthy|wrong-password)$`),
		Diagnoser: verify.Func(func(context.Context, *settings.Settings) (string, error) { return "HEALTHY", nil }),
	})
	if err != nil {
		t.Fatal(err)
	}
	var table bytes.Buffer
	sum.WriteTable(&table)
	for _, want := range []string{"healthy", "PASS", "wrong-password", "FAIL", "1 passed, 1 failed",
		"wrong-password: expected AUTH_FAILED, diagnosed HEALTHY", "story:"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
	var junit bytes.Buffer
	if err := sum.WriteJUnit(&junit); err != nil {
		t.Fatal(err)
	}
	var parsed struct {
		Suites []struct {
			Tests    int `xml:"tests,attr"`
			Failures int `xml:"failures,attr"`
			Cases    []struct {
				Name    string    `xml:"name,attr"`
				Failure *struct{} `xml:"failure"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(junit.Bytes(), &parsed); err != nil {
		t.Fatalf("JUnit XML does not parse: %v", err)
	}
	s := parsed.Suites[0]
	if s.Tests != 2 || s.Failures != 1 || len(s.Cases) != 2 || s.Cases[1].Name != "wrong-password" || s.Cases[1].Failure == nil {
		t.Errorf("JUnit: %+v", s)
	}
}

// TestCompoundContract: a compound scenario passes when the primary
// matches and its secondary code is found or named as unverifiable, in
// the findings list or through the steps; a diagnoser that gives no
// findings still passes the single-cause scenario.
func TestCompoundContract(t *testing.T) {
	const primary = `"root_cause":"TLS_CERT_EXPIRED"`
	tests := []struct {
		name       string
		out        string
		wantPass   []string
		wantStatus string // of AUTH_FAILED in the compound scenario
	}{
		{"no findings", `{` + primary + `}`, []string{"expired-cert"}, verify.SecondaryMissing},
		{"finding", `{` + primary + `,"findings":[{"code":"AUTH_FAILED"}]}`,
			[]string{"expired-cert", "expired-cert-wrong-password"}, verify.SecondaryFound},
		{"named unverifiable", `{` + primary + `,"findings":[{"code":"AUTH_FAILED","unverifiable":"login not attempted: the channel is not trusted"}]}`,
			[]string{"expired-cert", "expired-cert-wrong-password"}, verify.SecondaryUnverifiable},
		{"skipped login step", `{` + primary + `,"services":[{"service":"imaps","steps":[{"step":"tls","ok":false,"code":"TLS_CERT_EXPIRED"},{"step":"auth","ok":true,"skipped":true,"evidence":"skipped: not trusted"}]}]}`,
			[]string{"expired-cert", "expired-cert-wrong-password"}, verify.SecondaryUnverifiable},
		{"login step that ran", `{` + primary + `,"services":[{"service":"imaps","steps":[{"step":"tls","ok":false,"code":"TLS_CERT_EXPIRED"},{"step":"auth","ok":true}]}]}`,
			[]string{"expired-cert"}, verify.SecondaryMissing},
		{"another finding", `{` + primary + `,"findings":[{"code":"AUTH_ACCOUNT_LOCKED"}]}`, []string{"expired-cert"}, verify.SecondaryMissing},
		{"wrong primary", `{"root_cause":"AUTH_FAILED","findings":[{"code":"AUTH_FAILED"}]}`, nil, verify.SecondaryFound},
	}
	list := pick(t, "expired-cert", "expired-cert-wrong-password")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sum, err := verify.Run(context.Background(), verify.Options{
				Scenarios: list,
				Diagnoser: verify.Command{Line: script(t, "echo '"+tt.out+"'; exit 1")},
			})
			if err != nil {
				t.Fatal(err)
			}
			var passed []string
			for _, o := range sum.Outcomes {
				if o.Error != "" {
					t.Fatalf("%s: %s", o.Scenario, o.Error)
				}
				if o.Pass {
					passed = append(passed, o.Scenario)
				}
				if o.Scenario == "expired-cert" && len(o.Secondary) != 0 {
					t.Errorf("single-cause scenario has secondary outcomes %+v", o.Secondary)
				}
				if o.Scenario == "expired-cert-wrong-password" {
					if len(o.Secondary) != 1 || o.Secondary[0].Code != "AUTH_FAILED" || o.Secondary[0].Status != tt.wantStatus {
						t.Errorf("secondary = %+v, want AUTH_FAILED %s", o.Secondary, tt.wantStatus)
					}
					if tt.wantStatus == verify.SecondaryUnverifiable && o.Secondary[0].Reason == "" {
						t.Error("unverifiable without a reason")
					}
				}
			}
			if strings.Join(passed, ",") != strings.Join(tt.wantPass, ",") {
				t.Errorf("passed %v, want %v", passed, tt.wantPass)
			}
		})
	}
}

// TestCompoundReports: a missed secondary shows in the table, the miss
// and JUnit.
func TestCompoundReports(t *testing.T) {
	sum, err := verify.Run(context.Background(), verify.Options{
		Scenarios: pick(t, "expired-cert-wrong-password"),
		Diagnoser: verify.Func(func(context.Context, *settings.Settings) (string, error) { return "TLS_CERT_EXPIRED", nil }),
	})
	if err != nil {
		t.Fatal(err)
	}
	var table, junit bytes.Buffer
	sum.WriteTable(&table)
	for _, want := range []string{"SECONDARY", "AUTH_FAILED missing", "FAIL", "secondary: AUTH_FAILED neither reported nor named as unverifiable"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
	if err := sum.WriteJUnit(&junit); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(junit.String(), `type="MissedSecondaryCause"`) {
		t.Errorf("JUnit lacks the missed secondary:\n%s", junit.String())
	}
}

// TestMatrix: a scenario whose fault acts on every incoming path runs once
// per path with the customer's settings rewritten to it; a diagnoser that
// only gets IMAP right fails the POP3 cells; a scenario the matrix does
// not vary runs once as set. Text, JSON and JUnit show the paths.
func TestMatrix(t *testing.T) {
	imapOnly := verify.Func(func(_ context.Context, s *settings.Settings) (string, error) {
		if _, ok := s.Services["pop3"]; ok {
			return "HEALTHY", nil
		}
		if _, ok := s.Services["pop3s"]; ok {
			return "HEALTHY", nil
		}
		return s.ExpectedRootCause, nil
	})
	sum, err := verify.Run(context.Background(), verify.Options{
		Scenarios: pick(t, "expired-cert", "relay-denied"),
		Diagnoser: imapOnly,
		Matrix:    true,
	})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range sum.Outcomes {
		res := "FAIL"
		if o.Pass {
			res = "PASS"
		}
		got = append(got, o.Label()+" "+res)
	}
	want := []string{"expired-cert [imap] PASS", "expired-cert [imaps] PASS", "expired-cert [pop3] FAIL", "expired-cert [pop3s] FAIL", "relay-denied PASS"}
	if strings.Join(got, ", ") != strings.Join(want, ", ") {
		t.Errorf("outcomes = %v, want %v", got, want)
	}
	if sum.Passed != 3 || sum.Failed != 2 {
		t.Errorf("summary %d passed, %d failed; want 3, 2", sum.Passed, sum.Failed)
	}
	var table, js, junit bytes.Buffer
	sum.WriteTable(&table)
	row := regexp.MustCompile(`(?m)^expired-cert +TLS_CERT_EXPIRED +\. +PASS +PASS +FAIL HEALTHY +FAIL HEALTHY$`)
	for _, ok := range []bool{
		strings.Contains(table.String(), "AS SET") && strings.Contains(table.String(), "POP3 STARTTLS"),
		row.MatchString(table.String()),
		regexp.MustCompile(`(?m)^relay-denied +SMTP_RELAY_DENIED +PASS +\. +\. +\. +\.$`).MatchString(table.String()),
		strings.Contains(table.String(), "expired-cert [pop3s]: expected TLS_CERT_EXPIRED, diagnosed HEALTHY"),
	} {
		if !ok {
			t.Errorf("matrix table:\n%s", table.String())
			break
		}
	}
	if err := sum.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"matrix": true`, `"path": "pop3s"`, `"paths": [`} {
		if !strings.Contains(js.String(), want) {
			t.Errorf("JSON lacks %s:\n%s", want, js.String())
		}
	}
	if err := sum.WriteJUnit(&junit); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`name="expired-cert [pop3]"`, `classname="maillab.matrix.pop3"`, `tests="5" failures="2"`} {
		if !strings.Contains(junit.String(), want) {
			t.Errorf("JUnit lacks %s:\n%s", want, junit.String())
		}
	}
}
