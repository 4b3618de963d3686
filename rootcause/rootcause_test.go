package rootcause

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the table of codes in docs/catalog.md from All")

const catalogDoc = "../docs/catalog.md"

// codeTableHeader starts the table of codes in docs/catalog.md.
const codeTableHeader = "| code | meaning |\n| --- | --- |\n"

// TestEveryRowComplete checks that every code of the table has everything
// a root cause needs: a unique code, a meaning, a layer, and a fix for
// every kind of service.
func TestEveryRowComplete(t *testing.T) {
	targets := []Target{
		{Role: "outgoing server (SMTP)", Host: "smtp.example.test", Port: 587, Protocol: "SMTP", TLSPort: 465, StartTLSPort: 587},
		{Role: "incoming server (IMAP)", Host: "imap.example.test", Port: 993, Protocol: "IMAP", TLSPort: 993, StartTLSPort: 143},
		{Role: "incoming server (POP3)", Host: "pop.example.test", Port: 110, Protocol: "POP3", TLSPort: 995, StartTLSPort: 110},
	}
	seen := map[Code]bool{}
	for _, info := range All {
		if info.Code == "" || strings.ToUpper(string(info.Code)) != string(info.Code) || strings.ContainsAny(string(info.Code), " -") {
			t.Errorf("code %q is not an upper-case identifier", info.Code)
		}
		if seen[info.Code] {
			t.Errorf("code %s has two rows", info.Code)
		}
		seen[info.Code] = true
		if info.Meaning == "" || strings.Contains(info.Meaning, "|") || strings.Contains(info.Meaning, "\n") {
			t.Errorf("%s: meaning %q is empty or does not fit one table cell", info.Code, info.Meaning)
		}
		if info.Layer < LayerResolver || info.Layer > LayerHealthy {
			t.Errorf("%s: layer %d is not one of the layers", info.Code, info.Layer)
		}
		if (info.Code == Healthy) != (info.Layer == LayerHealthy) {
			t.Errorf("%s: layer %d; only HEALTHY has LayerHealthy", info.Code, info.Layer)
		}
		if info.Fix == nil {
			t.Errorf("%s: no fix", info.Code)
			continue
		}
		for _, tg := range targets {
			fix := info.Fix(tg)
			if fix == "" || strings.Contains(fix, "%!") || !strings.HasSuffix(fix, ".") {
				t.Errorf("%s: fix for %s = %q, want a sentence", info.Code, tg.Role, fix)
			}
		}
		if !Valid(string(info.Code)) || Meaning(info.Code) != info.Meaning || LayerOf(info.Code) != info.Layer {
			t.Errorf("%s: lookups disagree with the row", info.Code)
		}
	}
	if All[0].Code != Healthy {
		t.Errorf("the first row is %s, want HEALTHY", All[0].Code)
	}
}

// codeTable renders the table of codes of docs/catalog.md from All.
func codeTable() string {
	var b strings.Builder
	b.WriteString(codeTableHeader)
	for _, info := range All {
		fmt.Fprintf(&b, "| %s | %s |\n", info.Code, info.Meaning)
	}
	return b.String()
}

// TestCatalogDocMatchesTable checks that the table of codes in
// docs/catalog.md is the one All generates (go test -update rewrites it).
func TestCatalogDocMatchesTable(t *testing.T) {
	doc, err := os.ReadFile(catalogDoc)
	if err != nil {
		t.Fatal(err)
	}
	start := bytes.Index(doc, []byte(codeTableHeader))
	if start < 0 {
		t.Fatalf("%s has no table starting %q", catalogDoc, codeTableHeader)
	}
	end := start
	sc := bufio.NewScanner(bytes.NewReader(doc[start:]))
	for sc.Scan() && strings.HasPrefix(sc.Text(), "|") {
		end += len(sc.Bytes()) + 1
	}
	got, want := string(doc[start:end]), codeTable()
	if got == want {
		return
	}
	if *update {
		out := append(append(append([]byte{}, doc[:start]...), want...), doc[end:]...)
		if err := os.WriteFile(catalogDoc, out, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	gotRows, wantRows := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := 0; i < max(len(gotRows), len(wantRows)); i++ {
		var g, w string
		if i < len(gotRows) {
			g = gotRows[i]
		}
		if i < len(wantRows) {
			w = wantRows[i]
		}
		if g != w {
			t.Errorf("%s line %d of the code table:\n  doc:   %s\n  table: %s", catalogDoc, i+1, g, w)
		}
	}
	t.Log("run go test ./rootcause -update to regenerate the doc's table from rootcause.All")
}

// TestEveryCodeHasATitle: the console shows a trainee each code's title
// and its layer's title, so every row has a short plain title that is not
// the code, and every layer has a unique id and a title.
func TestEveryCodeHasATitle(t *testing.T) {
	titles := map[string]Code{}
	for _, info := range All {
		switch {
		case info.Title == "":
			t.Errorf("%s: no title", info.Code)
		case len(info.Title) > 90 || strings.Contains(info.Title, "\n"):
			t.Errorf("%s: title %q is not one short line", info.Code, info.Title)
		case strings.Contains(info.Title, string(info.Code)) || strings.Contains(info.Title, "_"):
			t.Errorf("%s: title %q uses a code, not plain words", info.Code, info.Title)
		}
		if other, ok := titles[info.Title]; ok {
			t.Errorf("%s and %s share the title %q", other, info.Code, info.Title)
		}
		titles[info.Title] = info.Code
	}
	ids := map[string]Layer{}
	for l := LayerResolver; l <= LayerHealthy; l++ {
		if l.ID() == "" || l.Title() == "" {
			t.Errorf("layer %d: id %q, title %q; want both", l, l.ID(), l.Title())
		}
		if other, ok := ids[l.ID()]; ok {
			t.Errorf("layers %d and %d share the id %q", other, l, l.ID())
		}
		ids[l.ID()] = l
	}
	if Layer(0).ID() != "" || (LayerHealthy+1).Title() != "" {
		t.Errorf("a value that is not a layer has an id or a title")
	}
}
