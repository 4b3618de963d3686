package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestQuickSoak runs the soak's --quick mode against a freshly built
// maillab and fails on any correctness target it misses (lost or
// duplicated mail, a listener that never recovers from descriptor
// exhaustion, a slowloris connection never cut).
func TestQuickSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("builds maillab and runs a lab under load for about half a minute")
	}
	if _, err := exec.LookPath("prlimit"); err != nil {
		t.Skip("prlimit (util-linux) not installed")
	}
	bin := filepath.Join(t.TempDir(), "maillab")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/maillab/maillab/cmd/maillab").CombinedOutput(); err != nil {
		t.Fatalf("build maillab: %v\n%s", err, out)
	}
	cfg := quickConfig()
	cfg.maillab = bin
	var out strings.Builder
	r, err := run(cfg, &out)
	t.Log(out.String())
	if err != nil {
		t.Fatalf("soak: %v", err)
	}
	if misses := r.misses(cfg); len(misses) > 0 {
		t.Errorf("quick soak missed: %s", strings.Join(misses, "; "))
	}
}
