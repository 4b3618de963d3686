package main

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/maillab/maillab/faults"
	"github.com/maillab/maillab/lab"
)

// TestDiagnoseEmailOnly: with an address and no servers, diagnose finds
// the servers as a wizard does and diagnoses them; with the lab's web
// port it reads the (here stale) autoconfig and names it.
func TestDiagnoseEmailOnly(t *testing.T) {
	t.Setenv("MAILLAB_PASSWORD", "")
	stale, err := faults.New(faults.Spec{Type: "setup-stale"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		faults    []lab.Fault
		webPort   bool
		code      int
		want      []string
		wantError string
	}{
		{name: "healthy lab by SRV", code: exitOK,
			want: []string{"Account set-up of alice@example.test", "srv ", "Thunderbird would set up (from srv", "Root cause: HEALTHY"}},
		{name: "stale autoconfig", faults: []lab.Fault{stale}, webPort: true, code: exitFinding,
			want: []string{"Thunderbird would set up (from autoconfig-https", "SETUP_CONFIG_STALE"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := lab.Start(lab.Options{CloseGrace: 100 * time.Millisecond}, tt.faults...)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			s := l.Settings()
			args := []string{"maillab", "diagnose", "--email", s.Accounts[0].Email, "--password", s.Accounts[0].Password,
				"--resolver", s.Resolver, "--ca", s.CAFile, "--timeout", "3s"}
			if tt.webPort {
				args = append(args, "--setup-https-port", strconv.Itoa(s.Discovery.HTTPSPort), "--setup-http-port", strconv.Itoa(s.Discovery.HTTPPort))
			}
			var stdout, stderr bytes.Buffer
			code := run(args, &stdout, &stderr)
			if code != tt.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, stdout.String(), stderr.String())
			}
			for _, w := range tt.want {
				if !strings.Contains(stdout.String(), w) {
					t.Errorf("stdout lacks %q:\n%s", w, stdout.String())
				}
			}
		})
	}
	t.Run("bad port", func(t *testing.T) {
		var stdout, stderr bytes.Buffer
		code := run([]string{"maillab", "diagnose", "--email", "a@example.test", "--setup-https-port", "70000"}, &stdout, &stderr)
		if code != exitUsage || !strings.Contains(stderr.String(), "--setup-https-port") || stdout.Len() > 0 {
			t.Errorf("exit %d, stderr %q, stdout %q; want one usage line naming the flag", code, stderr.String(), stdout.String())
		}
	})
}
