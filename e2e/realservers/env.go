//go:build e2e

package realservers

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Paths of the Debian packages' programs. They are variables so that a
// test on another layout can point them elsewhere; the zero value is never
// used.
var (
	DovecotBin       = "/usr/sbin/dovecot"
	DoveconfBin      = "/usr/bin/doveconf"
	PostfixBin       = "/usr/sbin/postfix"
	PostconfBin      = "/usr/sbin/postconf"
	PostfixDaemonDir = "/usr/lib/postfix/sbin"
	DovecotLibDir    = "/usr/lib/dovecot"
)

// Packages are the Debian packages the harness needs, as apt-get names
// them.
var Packages = []string{"postfix", "dovecot-core", "dovecot-imapd", "dovecot-pop3d"}

// systemUsers are the accounts the packages create and the servers drop
// privileges to; "mail" owns the Maildirs.
var systemUsers = []string{"postfix", "dovecot", "dovenull", "mail"}

// Missing returns why real servers cannot run here ("" when they can): not
// root, a program of Packages absent, or a system user missing.
func Missing() string {
	if os.Geteuid() != 0 {
		return "needs root: Postfix and Dovecot drop privileges to their system users"
	}
	for _, p := range []string{
		DovecotBin, DoveconfBin, PostfixBin, PostconfBin,
		filepath.Join(PostfixDaemonDir, "master"),
		filepath.Join(PostfixDaemonDir, "smtpd"),
		filepath.Join(PostfixDaemonDir, "virtual"),
		filepath.Join(DovecotLibDir, "imap-login"),
		filepath.Join(DovecotLibDir, "imap"),
		filepath.Join(DovecotLibDir, "pop3-login"),
		filepath.Join(DovecotLibDir, "pop3"),
	} {
		if _, err := os.Stat(p); err != nil {
			return fmt.Sprintf("%s missing: install the Debian packages %s", p, strings.Join(Packages, " "))
		}
	}
	for _, name := range systemUsers {
		if _, err := user.Lookup(name); err != nil {
			return fmt.Sprintf("system user %q missing: install the Debian packages %s", name, strings.Join(Packages, " "))
		}
	}
	return ""
}

// Require skips the test when real servers cannot run here, with a
// one-line reason; under CI=true it fails instead, so that a CI machine
// without the packages cannot pass by skipping.
func Require(t testing.TB) {
	t.Helper()
	require(t, Missing(), os.Getenv("CI"))
}

// require skips or fails t for reason ("" means go on), by the value of
// the CI environment variable.
func require(t testing.TB, reason, ci string) {
	t.Helper()
	if reason == "" {
		return
	}
	if ci == "true" {
		t.Fatalf("real servers required under CI=true: %s", reason)
		return
	}
	t.Skip("real servers: " + reason)
}

// ids are a system user's uid and gid.
type ids struct {
	name     string
	uid, gid int
}

func lookupIDs(name string) (ids, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return ids{}, fmt.Errorf("look up user %s: %w", name, err)
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return ids{}, fmt.Errorf("user %s: uid %q: %w", name, u.Uid, err)
	}
	gid, err := strconv.Atoi(u.Gid)
	if err != nil {
		return ids{}, fmt.Errorf("user %s: gid %q: %w", name, u.Gid, err)
	}
	return ids{name: name, uid: uid, gid: gid}, nil
}

// Versions names the software under test.
type Versions struct {
	// Postfix is `postconf -h mail_version`, e.g. "3.7.11".
	Postfix string
	// Dovecot is `dovecot --version`, e.g. "2.3.19.1 (9b53102964)".
	Dovecot string
	// Packages maps each Debian package of Packages to its installed
	// version (dpkg-query), e.g. "3.7.11-0+deb12u1"; missing when dpkg
	// does not know it.
	Packages map[string]string
}

// ReadVersions asks the installed programs and dpkg for their versions.
func ReadVersions(ctx context.Context) (Versions, error) {
	var v Versions
	out, err := runOutput(ctx, PostconfBin, "-d", "-h", "mail_version")
	if err != nil {
		return v, err
	}
	v.Postfix = out
	if v.Dovecot, err = runOutput(ctx, DovecotBin, "--version"); err != nil {
		return v, err
	}
	v.Packages = map[string]string{}
	for _, p := range Packages {
		if ver, err := runOutput(ctx, "dpkg-query", "-W", "-f=${Version}", p); err == nil && ver != "" {
			v.Packages[p] = ver
		}
	}
	return v, nil
}

// Header returns the recorded transcripts' software line.
func (v Versions) Header() string {
	s := fmt.Sprintf("Postfix %s (postconf mail_version), Dovecot %s (dovecot --version)", v.Postfix, v.Dovecot)
	var pkgs []string
	for _, p := range Packages {
		if ver, ok := v.Packages[p]; ok {
			pkgs = append(pkgs, p+" "+ver)
		}
	}
	if len(pkgs) > 0 {
		s += "; Debian packages " + strings.Join(pkgs, ", ")
	}
	return s
}

// runOutput runs a short command and returns its trimmed standard output.
// The bound is generous: `postfix check` took more than 10 s on a
// machine with a load average of 25 on 2 cores.
func runOutput(ctx context.Context, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(string(out)), nil
}

// workDir returns a fresh directory for one server's files that the
// servers' unprivileged users can traverse (t.TempDir makes it 0700).
func workDir(t testing.TB, name string) string {
	t.Helper()
	base := t.TempDir()
	for _, d := range []string{filepath.Dir(base), base} {
		if err := os.Chmod(d, 0o711); err != nil {
			t.Fatalf("chmod %s: %v", d, err)
		}
	}
	dir := filepath.Join(base, name)
	if err := os.Mkdir(dir, 0o711); err != nil {
		t.Fatalf("mkdir %s: %v", dir, err)
	}
	return dir
}

// writeFile writes data with mode perm, failing the test on error.
func writeFile(t testing.TB, path string, data []byte, perm os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, data, perm); err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
	// WriteFile does not change the mode of an existing file.
	if err := os.Chmod(path, perm); err != nil {
		t.Fatalf("chmod %s: %v", path, err)
	}
}
