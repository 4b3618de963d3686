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
	for _, o := range sum.Outcomes {
		if !o.Pass {
			var b bytes.Buffer
			o.WriteMiss(&b)
			t.Errorf("Diagnose(%s) = %s, want %s%s", o.Scenario, o.Diagnosed, o.Expected, b.String())
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
