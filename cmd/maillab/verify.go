package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/maillab/maillab/scenarios"
	"github.com/maillab/maillab/verify"
)

func init() { registerCommand(verifyCommand()) }

type verifyOptions struct {
	run        string
	files      []string
	diagnoser  string
	parallel   int
	timeout    time.Duration
	cmdTimeout time.Duration
	json       bool
	junit      string
	noProgress bool
}

func verifyCommand() *cli.Command {
	o := &verifyOptions{}
	return &cli.Command{
		Name:  "verify",
		Usage: "run the failure catalog against a diagnoser and check each root cause",
		Description: `Starts every catalog scenario (or those matching --run, or the custom scenario
files given with -f), runs the diagnoser against the customer's settings of
each, and prints a table: scenario, expected code, diagnosed code, PASS/FAIL,
time, then "N passed, M failed". A miss shows the diagnoser's evidence next to
the customer's story. Scenarios run in parallel, each in a lab of its own.

The bundled diagnoser is maillab's own. --diagnoser CMD verifies another tool:
maillab runs CMD (through /bin/sh) with the path of the customer's settings JSON
as its last argument, also in $MAILLAB_SETTINGS; CMD prints the diagnose JSON on
stdout, at least {"root_cause":"CODE"}, and exits 0 or 1. Anything else (a crash,
a timeout, output that is not such JSON) is a FAIL with the reason.

Examples:
   maillab verify
   maillab verify --run 'cert|tls' --junit verify.xml
   maillab verify --diagnoser ./examples/external-diagnoser/always-auth-failed.sh
   maillab verify -f customer-1234.yaml --diagnoser 'python3 mytool.py --json'

` + exitCodesHelp,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "run", Usage: "only scenarios whose name matches `REGEX`", EnvVars: []string{"MAILLAB_VERIFY_RUN"}, Destination: &o.run},
			&cli.StringSliceFlag{Name: "file", Aliases: []string{"f"}, Usage: "verify the custom scenario `FILE.yaml` instead of the catalog (repeatable)", EnvVars: []string{"MAILLAB_VERIFY_FILES"}, TakesFile: true},
			&cli.StringFlag{Name: "diagnoser", Usage: "external diagnoser `CMD` (see above); default the bundled one", EnvVars: []string{"MAILLAB_DIAGNOSER"}, Destination: &o.diagnoser},
			&cli.IntFlag{Name: "parallel", Usage: "scenarios at once (default 4 × CPUs)", EnvVars: []string{"MAILLAB_PARALLEL"}, Destination: &o.parallel},
			&cli.DurationFlag{Name: "timeout", Value: time.Second, Usage: "bundled diagnoser: bound of each connect and reply wait", EnvVars: []string{"MAILLAB_VERIFY_TIMEOUT"}, Destination: &o.timeout},
			&cli.DurationFlag{Name: "diagnoser-timeout", Value: time.Minute, Usage: "external diagnoser: bound of one run (it is killed after)", EnvVars: []string{"MAILLAB_DIAGNOSER_TIMEOUT"}, Destination: &o.cmdTimeout},
			&cli.BoolFlag{Name: "json", Usage: "print the results as JSON", EnvVars: []string{"MAILLAB_JSON"}, Destination: &o.json},
			&cli.StringFlag{Name: "junit", Usage: "also write JUnit XML to `FILE`", EnvVars: []string{"MAILLAB_JUNIT"}, Destination: &o.junit, TakesFile: true},
			&cli.BoolFlag{Name: "no-progress", Usage: "no progress display even on a terminal", EnvVars: []string{"MAILLAB_NO_PROGRESS"}, Destination: &o.noProgress},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usageErrorf("verify takes no arguments (use --run REGEX or -f FILE), got %q", c.Args().First())
			}
			o.files = c.StringSlice("file")
			return runVerify(c, o)
		},
	}
}

func runVerify(c *cli.Context, o *verifyOptions) error {
	var opts verify.Options
	if o.run != "" {
		re, err := regexp.Compile(o.run)
		if err != nil {
			return usageErrorf("--run %q: %v", o.run, err)
		}
		opts.Run = re
	}
	for _, f := range o.files {
		sc, err := scenarios.LoadFile(f)
		if err != nil {
			return usageErrorf("%v", err)
		}
		opts.Scenarios = append(opts.Scenarios, sc)
	}
	if o.parallel < 0 {
		return usageErrorf("--parallel %d: must be positive", o.parallel)
	}
	opts.Parallel = o.parallel
	if o.diagnoser != "" {
		if err := checkCanStart(o.diagnoser); err != nil {
			return usageErrorf("--diagnoser %q: %v", o.diagnoser, err)
		}
		opts.Diagnoser = verify.Command{Line: o.diagnoser, Timeout: o.cmdTimeout}
	} else {
		opts.Diagnoser = verify.Bundled{Timeout: o.timeout}
	}
	out := c.App.Writer
	var prog *progress
	if !o.json && !o.noProgress && isTerminal(out) {
		prog = newProgress(out)
		opts.OnStart, opts.OnDone = prog.start, prog.done
	} else if !o.json {
		opts.OnDone = func(oc verify.Outcome) { plainLine(out, oc) }
	}
	sum, err := verify.Run(c.Context, opts)
	if prog != nil {
		prog.finish()
	}
	if err != nil {
		return err
	}
	if len(sum.Outcomes) == 0 {
		return usageErrorf("no scenario matches --run %q", o.run)
	}
	if o.junit != "" {
		f, err := os.Create(o.junit)
		if err != nil {
			return usageErrorf("--junit: %v", err)
		}
		werr := sum.WriteJUnit(f)
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			return usageErrorf("--junit %s: %v", o.junit, werr)
		}
	}
	if o.json {
		if err := sum.WriteJSON(out); err != nil {
			return err
		}
	} else {
		if prog == nil {
			fmt.Fprintln(out)
		}
		sum.WriteTable(out)
	}
	if !sum.OK() {
		return silentExit(exitFinding)
	}
	return nil
}

// checkCanStart checks, before any scenario runs, that the first word of
// an external diagnoser's command line names a program /bin/sh can start:
// a path to an executable file, or a name found on PATH. A line that
// starts with something only the shell understands (a variable, an
// assignment, a quote, a builtin such as exec) is left to the shell.
func checkCanStart(line string) error {
	fields := strings.Fields(line)
	if len(fields) == 0 {
		return errors.New("empty command")
	}
	first := fields[0]
	if strings.ContainsAny(first, "$`'\"\\=(){};&|<>*?~") {
		return nil
	}
	switch first {
	case "exec", "command", "eval", ".", "env", "nice", "nohup", "time", "!":
		// The program comes later; the shell reports what is wrong with it.
		return nil
	}
	if strings.Contains(first, "/") {
		fi, err := os.Stat(first)
		if err != nil {
			return fmt.Errorf("cannot start %s: %w", first, errors.Unwrap(err))
		}
		if fi.IsDir() {
			return fmt.Errorf("cannot start %s: it is a directory", first)
		}
		if fi.Mode()&0o111 == 0 {
			return fmt.Errorf("cannot start %s: not executable (chmod +x %s, or run it as 'sh %s')", first, first, first)
		}
		return nil
	}
	if _, err := exec.LookPath(first); err != nil {
		return fmt.Errorf("cannot start %s: not found on PATH (give its path, e.g. ./%s)", first, first)
	}
	return nil
}

func plainLine(w io.Writer, o verify.Outcome) {
	res := "PASS"
	if !o.Pass {
		res = "FAIL"
	}
	got := o.Diagnosed
	if got == "" {
		got = "error: " + o.Error
	}
	fmt.Fprintf(w, "%s %s: expected %s, diagnosed %s (%s)\n", res, o.Scenario, o.Expected, got, o.Elapsed.Round(time.Millisecond))
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// progress redraws one status line on a terminal.
type progress struct {
	w       io.Writer
	mu      sync.Mutex
	running map[string]bool
	passed  int
	failed  int
}

func newProgress(w io.Writer) *progress { return &progress{w: w, running: map[string]bool{}} }

func (p *progress) start(name string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.running[name] = true
	p.draw()
}

func (p *progress) done(o verify.Outcome) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.running, o.Scenario)
	if o.Pass {
		p.passed++
	} else {
		p.failed++
	}
	p.draw()
}

func (p *progress) draw() {
	names := make([]string, 0, len(p.running))
	for n := range p.running {
		names = append(names, n)
	}
	sort.Strings(names)
	line := fmt.Sprintf("%d passed, %d failed, running %d: %s", p.passed, p.failed, len(names), strings.Join(names, " "))
	if len(line) > 100 {
		line = line[:97] + "..."
	}
	fmt.Fprintf(p.w, "\r\x1b[K%s", line)
}

func (p *progress) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprint(p.w, "\r\x1b[K")
}
