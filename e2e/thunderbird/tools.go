//go:build e2e

package thunderbird

import (
	"fmt"
	"os"
	"os/exec"
	"sync"
	"testing"
)

// tools are the programs the harness runs, with the Debian package that
// has each one.
var tools = []struct{ name, pkg string }{
	{"thunderbird", "thunderbird"},
	{"Xvfb", "xvfb"},
	{"xdotool", "xdotool"},
	{"certutil", "libnss3-tools"},
	{"gcc", "gcc"},
}

var (
	toolsOnce    sync.Once
	toolsMissing string
	toolPaths    = map[string]string{}
)

// requireTools returns the path of every tool, or skips the test with a
// one-line reason naming the missing package (fails it when CI=true: CI
// installs them all).
func requireTools(t testing.TB) map[string]string {
	t.Helper()
	toolsOnce.Do(func() {
		for _, tool := range tools {
			p, err := exec.LookPath(tool.name)
			if err != nil {
				toolsMissing = fmt.Sprintf("%s not installed (Debian package %s)", tool.name, tool.pkg)
				return
			}
			toolPaths[tool.name] = p
		}
	})
	if toolsMissing != "" {
		if os.Getenv("CI") == "true" {
			t.Fatal(toolsMissing + "; CI=true requires every tool")
		}
		t.Skip(toolsMissing)
	}
	return toolPaths
}
