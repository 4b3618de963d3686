package docstest

import (
	"reflect"
	"testing"
)

func TestParse(t *testing.T) {
	page := "# Top `maillab lab`\n\nSee [a](other.md#the-lab), `[not](a-link.md)` and [b](#top-maillab-lab).\n\n" +
		"## Top maillab lab\n\n" +
		"```sh\nmaillab scenario list   # the catalog\nmaillab verify --run 'cert|tls' \\\n    --json\n```\n\n" +
		"<!-- docstest: skip: runs until Ctrl-C -->\n```sh\nmaillab lab\n```\n\n" +
		"```go\nfmt.Println()\n```\n"
	p := Parse("x.md", page)
	wantAnchors := map[string]bool{"top-maillab-lab": true, "top-maillab-lab-1": true}
	if !reflect.DeepEqual(p.Anchors, wantAnchors) {
		t.Errorf("anchors = %v, want %v", p.Anchors, wantAnchors)
	}
	wantLinks := []Link{{3, "other.md#the-lab"}, {3, "#top-maillab-lab"}}
	if !reflect.DeepEqual(p.Links, wantLinks) {
		t.Errorf("links = %v, want %v", p.Links, wantLinks)
	}
	wantBlocks := []Block{
		{Line: 7, Commands: []Command{{8, "maillab scenario list"}, {9, "maillab verify --run 'cert|tls'      --json"}}},
		{Line: 14, Skip: "runs until Ctrl-C", Commands: []Command{{15, "maillab lab"}}},
	}
	if !reflect.DeepEqual(p.Blocks, wantBlocks) {
		t.Errorf("blocks = %+v, want %+v", p.Blocks, wantBlocks)
	}
}

func TestWords(t *testing.T) {
	tests := []struct {
		line string
		want []string
	}{
		{"maillab scenario show expired-cert", []string{"maillab", "scenario", "show", "expired-cert"}},
		{"maillab verify --run 'cert|tls'", []string{"maillab", "verify", "--run", "cert|tls"}},
		{`maillab verify --diagnoser "maillab diagnose --json"`, []string{"maillab", "verify", "--diagnoser", "maillab diagnose --json"}},
	}
	for _, tt := range tests {
		if got := Words(tt.line); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Words(%q) = %q, want %q", tt.line, got, tt.want)
		}
	}
}

func TestAnchor(t *testing.T) {
	tests := map[string]string{
		"Two commands":                      "two-commands",
		"In Go tests: testcontainers-go":    "in-go-tests-testcontainers-go",
		"Network faults and Docker's proxy": "network-faults-and-dockers-proxy",
		"Settings JSON":                     "settings-json",
	}
	for in, want := range tests {
		if got := Anchor(in); got != want {
			t.Errorf("Anchor(%q) = %q, want %q", in, got, want)
		}
	}
}
