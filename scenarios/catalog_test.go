package scenarios_test

import (
	"bufio"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/maillab/maillab/rootcause"
	"github.com/maillab/maillab/scenarios"
)

// catalogTable reads the scenario table of docs/catalog.md (the contract,
// a copy of shared/catalog.md): name → code.
func catalogTable(t *testing.T) map[string]string {
	t.Helper()
	f, err := os.Open("../docs/catalog.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	row := regexp.MustCompile(`^\| ([a-z0-9-]+) \| [^|]* \| [^|]* \| ([A-Z_]+) \|$`)
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if m := row.FindStringSubmatch(strings.TrimSpace(sc.Text())); m != nil {
			out[m[1]] = m[2]
		}
	}
	return out
}

func TestCatalogMatchesContract(t *testing.T) {
	cat, err := scenarios.Catalog()
	if err != nil {
		t.Fatal(err)
	}
	want := catalogTable(t)
	if len(want) == 0 {
		t.Fatal("read no scenarios from catalog.md")
	}
	got := map[string]string{}
	for _, sc := range cat {
		got[sc.Name] = sc.RootCause
		if !rootcause.Valid(sc.RootCause) {
			t.Errorf("%s: invalid code %s", sc.Name, sc.RootCause)
		}
	}
	for name, code := range want {
		if got[name] != code {
			t.Errorf("scenario %s: root cause %q, want %q", name, got[name], code)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("scenario %s is not in catalog.md", name)
		}
	}
	// Every root cause of the table can be met in the lab.
	covered := map[string]bool{}
	for _, code := range got {
		covered[code] = true
	}
	for _, info := range rootcause.All {
		if !covered[string(info.Code)] {
			t.Errorf("root cause %s has no scenario in the catalog", info.Code)
		}
	}
}
