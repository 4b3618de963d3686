package docstest

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// pending are pages other changes add; the table of contents lists them
// before they are merged. A link to one is checked once it exists.
var pending = []string{"docs/serve.md", "docs/limits.md", "docs/store.md", "docs/logs-and-fuzzing.md", "docs/thunderbird.md"}

// repoRoot is the directory of go.mod above this package.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}

// pages parses README.md and docs/*.md, keyed by path relative to root.
func pages(t *testing.T, root string) map[string]*Page {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, filepath.Join(root, "README.md"))
	out := map[string]*Page{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, f)
		out[rel] = Parse(rel, string(data))
	}
	return out
}

// TestLinks checks that every relative link of the documentation names a
// file of the repository, and every #anchor a heading of its page.
func TestLinks(t *testing.T) {
	root := repoRoot(t)
	all := pages(t, root)
	for path, p := range all {
		for _, l := range p.Links {
			if strings.Contains(l.Target, "://") || strings.HasPrefix(l.Target, "mailto:") {
				continue
			}
			file, anchor, _ := strings.Cut(l.Target, "#")
			target := path
			if file != "" {
				target = filepath.Clean(filepath.Join(filepath.Dir(path), file))
			}
			if _, err := os.Stat(filepath.Join(root, target)); err != nil {
				if slices.Contains(pending, target) {
					continue
				}
				t.Errorf("%s:%d: link %s: %s does not exist", path, l.Line, l.Target, target)
				continue
			}
			if anchor == "" {
				continue
			}
			tp, ok := all[target]
			if !ok {
				t.Errorf("%s:%d: link %s: an anchor into %s, which is not a checked page", path, l.Line, l.Target, target)
				continue
			}
			if !tp.Anchors[anchor] {
				t.Errorf("%s:%d: link %s: %s has no heading #%s", path, l.Line, l.Target, target, anchor)
			}
		}
	}
}

// TestTableOfContents checks that docs/README.md links every page of docs/.
func TestTableOfContents(t *testing.T) {
	root := repoRoot(t)
	all := pages(t, root)
	toc, ok := all[filepath.Join("docs", "README.md")]
	if !ok {
		t.Fatal("docs/README.md is missing")
	}
	linked := map[string]bool{}
	for _, l := range toc.Links {
		file, _, _ := strings.Cut(l.Target, "#")
		linked[filepath.Clean(filepath.Join("docs", file))] = true
	}
	for path := range all {
		if strings.HasPrefix(path, "docs"+string(filepath.Separator)) && path != filepath.Join("docs", "README.md") && !linked[path] {
			t.Errorf("docs/README.md does not link %s", path)
		}
	}
	for _, p := range pending {
		if !linked[p] {
			t.Errorf("docs/README.md does not list %s", p)
		}
	}
}

// TestExamples runs every maillab command of the documentation's sh
// blocks that are not marked skip, against a binary built from this
// checkout: each must exit 0. A runnable block holding anything but
// maillab commands is an error (mark it skip with the reason).
func TestExamples(t *testing.T) {
	root := repoRoot(t)
	all := pages(t, root)
	var cmds []struct {
		where string
		args  []string
	}
	for path, p := range all {
		for _, b := range p.Blocks {
			if b.Skip != "" {
				continue
			}
			for _, c := range b.Commands {
				words := Words(c.Text)
				if len(words) == 0 || words[0] != "maillab" || strings.ContainsAny(c.Text, "|;&<>$`") {
					t.Errorf("%s:%d: %q in a runnable sh block is not a plain maillab command; mark the block <!-- docstest: skip: REASON -->", path, c.Line, c.Text)
					continue
				}
				cmds = append(cmds, struct {
					where string
					args  []string
				}{path + ":" + strconv.Itoa(c.Line), words[1:]})
			}
		}
	}
	if len(cmds) == 0 {
		t.Fatal("no runnable example found; the parser or the markers are broken")
	}
	bin := buildMaillab(t, root)
	for _, c := range cmds {
		t.Run(c.where+" maillab "+strings.Join(c.args, " "), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, c.args...)
			cmd.Dir = t.TempDir()
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Run(); err != nil {
				t.Errorf("%s: maillab %s: %v\n%s", c.where, strings.Join(c.args, " "), err, out.String())
			}
		})
	}
}

// buildMaillab builds cmd/maillab of this checkout into a temporary directory.
func buildMaillab(t *testing.T, root string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "maillab")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/maillab")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/maillab: %v\n%s", err, out)
	}
	return bin
}
