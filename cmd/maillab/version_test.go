package main

import (
	"bytes"
	"runtime/debug"
	"strings"
	"testing"
)

func TestVersionOf(t *testing.T) {
	tests := []struct {
		name string
		info debug.BuildInfo
		want string
	}{
		{"release", debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.2.0"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "7317ca39d75b"}, {Key: "vcs.time", Value: "2026-12-04T17:00:00Z"}, {Key: "vcs.modified", Value: "false"}}},
			"v1.2.0, commit 7317ca39d75b, commit date 2026-12-04T17:00:00Z, go1.26.8"},
		{"checkout with changes", debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "abc"}, {Key: "vcs.time", Value: "2026-12-04T17:00:00Z"}, {Key: "vcs.modified", Value: "true"}}},
			"(devel), commit abc (with uncommitted changes), commit date 2026-12-04T17:00:00Z, go1.26.8"},
		{"go run", debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}},
			"(devel), commit unknown (built without VCS information), go1.26.8"},
		{"no module", debug.BuildInfo{}, "unknown, commit unknown (built without VCS information)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := versionOf(&tt.info).String(); got != tt.want {
				t.Errorf("versionOf(%s) = %q, want %q", tt.name, got, tt.want)
			}
		})
	}
}

func TestVersionFlag(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"maillab", "--version"}, &stdout, &stderr); code != exitOK {
		t.Fatalf("maillab --version: exit %d, stderr %q", code, stderr.String())
	}
	out := stdout.String()
	if !strings.HasPrefix(out, "maillab ") || strings.Count(out, "\n") != 1 || !strings.Contains(out, "commit ") {
		t.Errorf("maillab --version printed %q, want one line \"maillab VERSION, commit ...\"", out)
	}
	if stderr.Len() != 0 {
		t.Errorf("maillab --version wrote %q to stderr", stderr.String())
	}
}

// TestUnknownFlag checks the one-line error for a mistyped flag, at the
// top level and in subcommands, with and without --json: the flag and the
// nearest valid one on stderr, exit 2, nothing on stdout (urfave/cli
// would print the command's help there).
func TestUnknownFlag(t *testing.T) {
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"--bogus"}, []string{"unknown flag --bogus for maillab;", "nearest valid flag: --help"}},
		{[]string{"--versoin"}, []string{"--versoin", "nearest valid flag: --version"}},
		{[]string{"lab", "--prot", "imaps=1"}, []string{"--prot for maillab lab", "nearest valid flag: --port"}},
		{[]string{"scenario", "--jsn"}, []string{"--jsn for maillab scenario", "--json"}},
		{[]string{"scenario", "list", "--jsn"}, []string{"--jsn for maillab scenario list", "--json"}},
		{[]string{"scenario", "list", "--json", "--bogus"}, []string{"--bogus for maillab scenario list"}},
		{[]string{"scenario", "show", "expired-cert", "--fiel", "x"}, []string{"--fiel for maillab scenario show", "--file"}},
		{[]string{"diagnose", "--json", "--emial", "a@b.test"}, []string{"--emial for maillab diagnose", "--email"}},
		{[]string{"verify", "--json", "--diagnoserr", "x"}, []string{"--diagnoserr for maillab verify", "--diagnoser"}},
		{[]string{"completion", "--x"}, []string{"-x for maillab completion"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(append([]string{"maillab"}, tt.args...), &stdout, &stderr)
			if code != exitUsage {
				t.Errorf("exit %d, want %d", code, exitUsage)
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout has %d bytes, want none:\n%s", stdout.Len(), stdout.String())
			}
			msg := stderr.String()
			if strings.Count(msg, "\n") != 1 {
				t.Errorf("want one line on stderr, got:\n%s", msg)
			}
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("stderr %q lacks %q", msg, w)
				}
			}
		})
	}
}

func TestNearest(t *testing.T) {
	tests := []struct {
		s    string
		c    []string
		want string
	}{
		{"jsn", []string{"help", "json", "file"}, "json"},
		{"prot", []string{"help", "port", "store"}, "port"},
		{"settigns", []string{"help", "settings", "smtp"}, "settings"},
		{"x", []string{"help", "h"}, "h"},
	}
	for _, tt := range tests {
		if got := nearest(tt.s, tt.c); got != tt.want {
			t.Errorf("nearest(%q, %v) = %q, want %q", tt.s, tt.c, got, tt.want)
		}
	}
}
