//go:build e2e

package realservers

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/maillab/maillab/rootcause"
)

// loadParallel is how many cases run at once under load.
const loadParallel = 8

// TestLoadedRealServers is a held-out check of the diagnoser on a busy
// machine: every case of TestRealServers runs once at a time on a quiet
// machine, then again loadParallel at a time while CPU burners keep every
// core busy, and each case must be diagnosed with the same root cause
// both times (and the case's expected one). Each run is the mail client's
// conversation (as the recorder has it, compared with nothing) followed
// by the diagnoser, as in TestRealServers. It logs the wall times and the
// time to diagnose each healthy case in both runs. -short skips it.
func TestLoadedRealServers(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the realservers suite under load takes minutes")
	}
	users := make([]string, len(cases))
	extra := map[string]string{}
	for i, c := range cases {
		users[i] = accountName(c.name)
		if c.passdbExtra != "" {
			extra[accountName(c.name)] = c.passdbExtra
		}
	}
	site := StartSite(t, SiteOptions{Users: users, PassdbExtra: extra, DovecotCerts: brokenCerts})
	missing := startFamilies(t, site)

	type result struct {
		code    rootcause.Code
		elapsed time.Duration
	}
	run := func(t *testing.T, label string, parallel int) (map[string]result, time.Duration) {
		var mu sync.Mutex
		results := map[string]result{}
		sem := make(chan struct{}, parallel)
		var wg sync.WaitGroup
		start := time.Now()
		for _, c := range cases {
			wg.Add(1)
			sem <- struct{}{}
			// Run may be called from several goroutines at once (testing
			// package doc); t.Parallel would cap them at GOMAXPROCS.
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				t.Run(label+"/"+c.name, func(t *testing.T) {
					require(t, missing[c.family], os.Getenv("CI"))
					code, elapsed := diagnoseCase(t, site, c)
					mu.Lock()
					results[c.name] = result{code, elapsed}
					mu.Unlock()
					if code != c.want {
						t.Errorf("Diagnose(%s) %s = %s, want %s", c.name, label, code, c.want)
					}
				})
			}()
		}
		wg.Wait()
		return results, time.Since(start)
	}

	serial, serialWall := run(t, "one-at-a-time", 1)
	stop, how := startCPULoad(t)
	loaded, loadedWall := run(t, fmt.Sprintf("%d-parallel-loaded", loadParallel), loadParallel)
	stop()

	for _, c := range cases {
		s, ok1 := serial[c.name]
		l, ok2 := loaded[c.name]
		if ok1 && ok2 && s.code != l.code {
			t.Errorf("Diagnose(%s) = %s one at a time, %s with %d in parallel under load (%s)", c.name, s.code, l.code, loadParallel, how)
		}
	}
	t.Logf("load: %s on %d CPU(s); %d cases: one at a time %s, %d in parallel under load %s",
		how, runtime.NumCPU(), len(cases), serialWall.Round(time.Millisecond), loadParallel, loadedWall.Round(time.Millisecond))
	for _, c := range cases {
		if c.want != rootcause.Healthy {
			continue
		}
		s, l := serial[c.name], loaded[c.name]
		if s.elapsed > 0 && l.elapsed > 0 {
			t.Logf("time to diagnose %s: %s quiet, %s loaded (ratio %.2f)", c.name,
				s.elapsed.Round(time.Millisecond), l.elapsed.Round(time.Millisecond), float64(l.elapsed)/float64(s.elapsed))
		}
	}
}

// diagnoseCase has the mail client's conversation of c (recorded into a
// transcript nobody compares) and then runs the diagnoser as
// TestRealServers does; it returns the root cause and the diagnoser's
// time.
func diagnoseCase(t *testing.T, site *Site, c realCase) (rootcause.Code, time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	acct := site.Accounts[accountName(c.name)]
	msgFile := ""
	switch c.message {
	case "big":
		msgFile = filepath.Join(t.TempDir(), "big.eml")
		writeFile(t, msgFile, bigMessage(acct.Email, 3*SmallSizeLimit), 0o644)
	case "exe":
		msgFile = filepath.Join(t.TempDir(), "invoice.eml")
		writeFile(t, msgFile, exeMessage(acct.Email), 0o644)
	}
	st := customerSettings(t, site, c, acct, msgFile)
	recordCase(ctx, t, site, c, acct, st, &Transcript{})
	if !c.sameClient {
		st = customerSettings(t, site, c, acct, msgFile)
	}
	rep, elapsed := diagnoseSettings(ctx, t, c, st)
	if rep.RootCause != c.want {
		t.Logf("Diagnose(%s): %s", c.name, rep.Summary)
	}
	return rep.RootCause, elapsed
}

// startCPULoad keeps every CPU busy until stop is called: stress-ng
// (Debian package stress-ng) when installed, otherwise one shell busy
// loop per CPU. It returns how.
func startCPULoad(t *testing.T) (stop func(), how string) {
	t.Helper()
	n := runtime.NumCPU()
	var cmds []*exec.Cmd
	if path, err := exec.LookPath("stress-ng"); err == nil {
		cmds = append(cmds, exec.Command(path, "--cpu", fmt.Sprint(n), "--quiet"))
		how = fmt.Sprintf("stress-ng --cpu %d", n)
	} else {
		for range n {
			cmds = append(cmds, exec.Command("/bin/sh", "-c", "while :; do :; done"))
		}
		how = fmt.Sprintf("%d shell busy loops", n)
	}
	for _, cmd := range cmds {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			t.Fatalf("start CPU load: %v", err)
		}
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			for _, cmd := range cmds {
				// Each burner leads its own group (stress-ng forks workers).
				syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
				cmd.Wait()
			}
		})
	}
	t.Cleanup(stop)
	return stop, how
}
