//go:build e2e

package realservers

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// CacheDir is where the harness keeps Debian packages it runs unpacked
// (packages that conflict with Postfix or Dovecot and so cannot be
// installed beside them): $MAILLAB_E2E_CACHE, else
// $XDG_CACHE_HOME/maillab-e2e, else /var/cache/maillab-e2e.
func CacheDir() string {
	if d := os.Getenv("MAILLAB_E2E_CACHE"); d != "" {
		return d
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "maillab-e2e")
	}
	return "/var/cache/maillab-e2e"
}

// UnpackedDeb is a Debian package unpacked (dpkg-deb -x) into the cache,
// never installed.
type UnpackedDeb struct {
	// Package is the package name, Version its version.
	Package, Version string
	// Root is the directory the package's files were unpacked into: its
	// /usr/sbin/x is Root/usr/sbin/x.
	Root string
}

// UnpackDeb returns pkg unpacked under CacheDir, downloading it with
// `apt-get download` the first time. It never runs the package's
// maintainer scripts and never touches dpkg's database.
func UnpackDeb(ctx context.Context, pkg string) (UnpackedDeb, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	dir := filepath.Join(CacheDir(), pkg)
	u := UnpackedDeb{Package: pkg, Root: filepath.Join(dir, "root")}
	if v, err := os.ReadFile(filepath.Join(dir, "version")); err == nil {
		if _, err := os.Stat(u.Root); err == nil {
			u.Version = strings.TrimSpace(string(v))
			return u, nil
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return u, fmt.Errorf("unpack %s: %w", pkg, err)
	}
	debs, _ := filepath.Glob(filepath.Join(dir, pkg+"_*.deb"))
	if len(debs) == 0 {
		download := func() ([]byte, error) {
			cmd := exec.CommandContext(ctx, "apt-get", "download", pkg)
			cmd.Dir = dir
			return cmd.CombinedOutput()
		}
		out, err := download()
		if err != nil {
			// Package lists may be missing (a fresh image) or stale (a
			// version that left the mirror): refresh them once.
			if upd, uerr := exec.CommandContext(ctx, "apt-get", "update", "-q").CombinedOutput(); uerr != nil {
				return u, fmt.Errorf("apt-get download %s: %w: %s; apt-get update: %v: %s", pkg, err, strings.TrimSpace(string(out)), uerr, strings.TrimSpace(string(upd)))
			}
			out, err = download()
		}
		if err != nil {
			return u, fmt.Errorf("apt-get download %s: %w: %s", pkg, err, strings.TrimSpace(string(out)))
		}
		if debs, _ = filepath.Glob(filepath.Join(dir, pkg+"_*.deb")); len(debs) == 0 {
			return u, fmt.Errorf("apt-get download %s left no .deb in %s", pkg, dir)
		}
	}
	deb := debs[len(debs)-1]
	tmp := u.Root + ".tmp"
	os.RemoveAll(tmp)
	if out, err := exec.CommandContext(ctx, "dpkg-deb", "-x", deb, tmp).CombinedOutput(); err != nil {
		return u, fmt.Errorf("dpkg-deb -x %s: %w: %s", deb, err, strings.TrimSpace(string(out)))
	}
	out, err := exec.CommandContext(ctx, "dpkg-deb", "-f", deb, "Version").Output()
	if err != nil {
		return u, fmt.Errorf("dpkg-deb -f %s Version: %w", deb, err)
	}
	u.Version = strings.TrimSpace(string(out))
	os.RemoveAll(u.Root)
	if err := os.Rename(tmp, u.Root); err != nil {
		return u, fmt.Errorf("unpack %s: %w", pkg, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "version"), []byte(u.Version+"\n"), 0o644); err != nil {
		return u, fmt.Errorf("unpack %s: %w", pkg, err)
	}
	return u, nil
}
