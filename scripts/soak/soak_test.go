package main

import (
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// buildMaillab builds maillab into a directory of the test's.
func buildMaillab(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds maillab and runs a lab under load for about 40 seconds")
	}
	if _, err := exec.LookPath("prlimit"); err != nil {
		t.Skip("prlimit (util-linux) not installed")
	}
	bin := filepath.Join(t.TempDir(), "maillab")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/maillab/maillab/cmd/maillab").CombinedOutput(); err != nil {
		t.Fatalf("build maillab: %v\n%s", err, out)
	}
	return bin
}

// TestQuickSoak runs the soak's --quick mode for two rounds against a
// freshly built maillab and fails on any correctness target it misses in
// either round (lost or duplicated mail, a listener that never recovers
// from descriptor exhaustion, a slowloris connection never cut). The
// second round's messages are counted apart from the first's: their own
// Message-IDs, the first round's expunged. (A separate two-round test
// took 37 s on top of the one-round test's 22 s.)
func TestQuickSoak(t *testing.T) {
	cfg, err := parseFlags([]string{"--quick", "--rounds", "2", "--maillab", buildMaillab(t)}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	o, err := run(cfg, &out)
	t.Log(out.String())
	if err != nil {
		t.Fatalf("soak: %v", err)
	}
	if len(o.rounds) != 2 {
		t.Fatalf("%d rounds reported, want 2", len(o.rounds))
	}
	for i, r := range o.rounds {
		if r.round != i+1 || r.sent != cfg.messages || r.stray != 0 {
			t.Errorf("round %d (#%d): %d sent of %d, %d of another round read back", r.round, i+1, r.sent, cfg.messages, r.stray)
		}
	}
	if misses := o.misses(cfg); len(misses) > 0 {
		t.Errorf("quick soak missed: %s", strings.Join(misses, "; "))
	}
	if !strings.Contains(out.String(), "RSS after round 2 against after round 1:") {
		t.Errorf("no last-against-first RSS figure in the output")
	}
}

func TestParseFlagsRounds(t *testing.T) {
	cfg, err := parseFlags([]string{"--maillab", "m", "--scale", "0.25", "--rounds", "3", "--rss-wait", "3m"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.rounds != 3 || cfg.messages != 5000 || !cfg.enforceAll {
		t.Errorf("--scale 0.25 --rounds 3: %d rounds of %d messages, every target %v", cfg.rounds, cfg.messages, cfg.enforceAll)
	}
	if cfg, err := parseFlags([]string{"--maillab", "m", "--quick"}, io.Discard); err != nil || cfg.rounds != 1 {
		t.Errorf("default: %d rounds, %v; want 1", cfg.rounds, err)
	}
	for _, n := range []string{"0", "-2"} {
		_, err := parseFlags([]string{"--maillab", "m", "--rounds", n}, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "--rounds") {
			t.Errorf("--rounds %s: error %v, want one naming --rounds", n, err)
		}
	}
}

func TestMsgID(t *testing.T) {
	id := msgID{round: 2, n: 17}
	if got, ok := parseMsgID(id.String()); !ok || got != id {
		t.Errorf("parseMsgID(%q) = %v, %v", id.String(), got, ok)
	}
	for _, s := range []string{"soak-17@soak.example", "soak-r2-17@other.example", "soak-r2-17x@soak.example", "x"} {
		if got, ok := parseMsgID(s); ok {
			t.Errorf("parseMsgID(%q) = %v, want none", s, got)
		}
	}
}

func TestTally(t *testing.T) {
	seen := map[msgID]int{
		{2, 0}: 1, {2, 1}: 3, {2, 3}: 1, // 2 lost (2 and 4), one of them never accepted; 2 duplicates
		{1, 0}: 1, {2, 5}: 1, // another round's, and one the round never sent
	}
	lost, duplicated, stray := tally(seen, 2, 5, 1)
	if lost != 1 || duplicated != 2 || stray != 2 {
		t.Errorf("tally = %d lost, %d duplicated, %d stray; want 1, 2, 2", lost, duplicated, stray)
	}
}
