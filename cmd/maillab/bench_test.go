package main

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkIdleLabRSS starts `maillab lab` as a process of its own, lets it
// settle, and reports its resident memory (VmRSS) in MB; the target is 30.
// The figure includes the Go test framework linked into this binary, so it
// slightly overstates the real command.
func BenchmarkIdleLabRSS(b *testing.B) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		b.Skip("needs /proc to read VmRSS")
	}
	var total float64
	for i := 0; i < b.N; i++ {
		total += idleRSS(b)
	}
	b.ReportMetric(total/float64(b.N), "RSS-MB")
}

func idleRSS(b *testing.B) float64 {
	b.Helper()
	dir := b.TempDir()
	settings := filepath.Join(dir, "settings.json")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "lab", "-q", "--settings-out", settings, "--dir", dir)
	cmd.Env = append(os.Environ(), "MAILLAB_TEST_MAIN=1")
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
	}()
	for {
		if _, err := os.Stat(settings); err == nil {
			break
		}
		if ctx.Err() != nil {
			b.Fatal("lab did not write its settings in time")
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(time.Second) // idle: let start-up garbage be collected
	f, err := os.Open("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/status")
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			if err != nil {
				b.Fatal(err)
			}
			return float64(kb) / 1024
		}
	}
	b.Fatal("no VmRSS in /proc status")
	return 0
}
