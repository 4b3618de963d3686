package main

import (
	"io"
	"strings"
	"testing"
)

func TestReorderArgs(t *testing.T) {
	app := newApp(io.Discard, io.Discard)
	tests := []struct{ in, want string }{
		{"maillab scenario expired-cert --json", "maillab scenario --json expired-cert"},
		{"maillab scenario expired-cert --settings-out f.json -q", "maillab scenario --settings-out f.json -q expired-cert"},
		{"maillab scenario run expired-cert --port imaps=993", "maillab scenario run --port imaps=993 expired-cert"},
		{"maillab scenario list --json", "maillab scenario list --json"},
		{"maillab scenario show expired-cert", "maillab scenario show expired-cert"},
		{"maillab lab --json", "maillab lab --json"},
		{"maillab scenario x -- --json", "maillab scenario x -- --json"},
		{"maillab unknown a --b", "maillab unknown a --b"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got := strings.Join(reorderArgs(app, strings.Fields(tt.in)), " ")
			if got != tt.want {
				t.Errorf("reorderArgs(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}
