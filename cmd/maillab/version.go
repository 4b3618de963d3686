package main

import (
	"fmt"
	"runtime/debug"
	"strings"

	"github.com/urfave/cli/v2"
)

// buildVersion describes the binary: its module version and the commit it
// was built from, as the Go toolchain stamped them (runtime/debug).
type buildVersion struct {
	version  string // module version: "v1.2.0", or "(devel)" for a build in a checkout
	commit   string // vcs.revision; empty when the build had no VCS information
	date     string // vcs.time: the commit's time, RFC 3339
	modified bool   // vcs.modified: the checkout had uncommitted changes
	goVer    string // the toolchain, "go1.26.8"
}

// linkedCommit and linkedDate are set by scripts/build-image.sh with
// -ldflags -X for builds where the toolchain cannot stamp VCS information
// (a git worktree, -buildvcs=false); the toolchain's stamp wins.
var linkedCommit, linkedDate string

// readVersion reads the running binary's build information.
func readVersion() buildVersion {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		info = &debug.BuildInfo{}
	}
	v := versionOf(info)
	if v.commit == "" {
		v.commit, v.date = linkedCommit, linkedDate
	}
	return v
}

// versionOf extracts what --version prints from build information. go run
// and builds outside a git checkout carry no vcs.* settings.
func versionOf(info *debug.BuildInfo) buildVersion {
	v := buildVersion{version: info.Main.Version, goVer: info.GoVersion}
	if v.version == "" {
		v.version = "unknown"
	}
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			v.commit = s.Value
		case "vcs.time":
			v.date = s.Value
		case "vcs.modified":
			v.modified = s.Value == "true"
		}
	}
	return v
}

// String is the one line of maillab --version, e.g.
// "(devel), commit 7317ca3c0ffe (modified), 2026-12-04T17:00:00Z, go1.26.8".
func (v buildVersion) String() string {
	parts := []string{v.version}
	switch {
	case v.commit == "":
		parts = append(parts, "commit unknown (built without VCS information)")
	case v.modified:
		parts = append(parts, "commit "+v.commit+" (with uncommitted changes)")
	default:
		parts = append(parts, "commit "+v.commit)
	}
	if v.date != "" {
		parts = append(parts, "commit date "+v.date)
	}
	if v.goVer != "" {
		parts = append(parts, v.goVer)
	}
	return strings.Join(parts, ", ")
}

func init() {
	cli.VersionFlag = &cli.BoolFlag{Name: "version", Usage: "print the version, the commit it was built from and its date"}
	cli.VersionPrinter = func(c *cli.Context) {
		fmt.Fprintf(c.App.Writer, "maillab %s\n", c.App.Version)
	}
}
