package main

import (
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/maillab/maillab/internal/editdist"
)

// Exit codes of every maillab command.
const (
	exitOK      = 0 // success; for diagnose and verify: nothing wrong was found
	exitFinding = 1 // diagnose found a fault; verify had a failing scenario
	exitUsage   = 2 // bad usage or unreadable input; maillab itself failed
	// exitInterrupted is the shells' 128+SIGINT: diagnose was interrupted
	// (Ctrl-C) and printed the steps it had run, without a root cause.
	exitInterrupted = 130
)

// commands is filled by the init functions of the command files, so each
// command lives in its own file and main.go stays three lines.
var commands []*cli.Command

func registerCommand(c *cli.Command) { commands = append(commands, c) }

// exitError carries an exit code and a one-line message to run.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

// usageErrorf returns an error that makes maillab print msg and exit 2.
func usageErrorf(format string, args ...any) error {
	return &exitError{code: exitUsage, msg: fmt.Sprintf(format, args...)}
}

// silentExit returns an error that makes maillab exit with code without
// printing anything more (the command already reported).
func silentExit(code int) error { return &exitError{code: code} }

const exitCodesHelp = `EXIT CODES:
   0  success (diagnose: healthy; verify: every scenario passed)
   1  a fault was found (diagnose) or a scenario failed (verify)
   2  bad usage or unreadable input; the message names the flag, file or line
   130  interrupted (Ctrl-C); diagnose prints the steps it ran, no root cause`

func newApp(stdout, stderr io.Writer) *cli.App {
	cmds := append([]*cli.Command(nil), commands...)
	sort.Slice(cmds, func(i, j int) bool { return cmds[i].Name < cmds[j].Name })
	app := &cli.App{
		Name:  "maillab",
		Usage: "reproduce and diagnose \"my mail client can't reach the mail server\" failures",
		Description: `maillab starts in-process SMTP, IMAP, POP3 and DNS servers on 127.0.0.1 that
form a small mail provider for example.test, injects the faults of its failure
catalog (expired certificates, blocked ports, stripped STARTTLS, wrong passwords,
DNS outages, ...) so that real mail clients fail against them, and diagnoses mail
accounts layer by layer.

` + exitCodesHelp,
		Commands:             cmds,
		EnableBashCompletion: true,
		Writer:               stdout,
		ErrWriter:            stderr,
		Version:              readVersion().String(),
		// Errors are printed by run, once, in one line.
		ExitErrHandler: func(*cli.Context, error) {},
		OnUsageError:   onUsageError,
	}
	setUsageErrorHandlers(cmds)
	return app
}

// setUsageErrorHandlers gives every command and subcommand the one-line
// flag error of onUsageError; without it urfave/cli prints the command's
// whole help to stdout beside the error.
func setUsageErrorHandlers(cmds []*cli.Command) {
	for _, c := range cmds {
		if c.OnUsageError == nil {
			c.OnUsageError = onUsageError
		}
		setUsageErrorHandlers(c.Subcommands)
	}
}

// undefinedFlag matches the flag package's error for an unknown flag.
var undefinedFlag = regexp.MustCompile(`^flag provided but not defined: -+(.+)$`)

// onUsageError turns a flag parse error into one line: an unknown flag is
// named with the nearest valid flag of the same command.
func onUsageError(c *cli.Context, err error, _ bool) error {
	m := undefinedFlag.FindStringSubmatch(err.Error())
	if m == nil {
		return usageErrorf("%s", err)
	}
	// The command's path from the lineage of contexts: HelpName is
	// mutated by urfave/cli on every run of the shared command values.
	var path []string
	for _, ctx := range c.Lineage() {
		if ctx.Command != nil && ctx.Command.Name != "" && ctx.Command.Name != c.App.Name {
			path = append([]string{ctx.Command.Name}, path...)
		}
	}
	cmdName := strings.Join(append([]string{"maillab"}, path...), " ")
	defs := c.App.Flags
	if len(path) > 0 {
		defs = c.Command.Flags
	}
	names := []string{"help"}
	if len(path) == 0 {
		names = append(names, "version")
	}
	for _, f := range defs {
		names = append(names, f.Names()...)
	}
	return usageErrorf("unknown flag %s for %s; nearest valid flag: %s (%s --help lists them)",
		dashed(m[1]), cmdName, dashed(nearest(m[1], names)), cmdName)
}

// dashed writes a flag name as typed on a command line.
func dashed(name string) string {
	if len(name) == 1 {
		return "-" + name
	}
	return "--" + name
}

// nearest returns the candidate with the smallest edit distance to s; ties
// go to the earlier candidate.
func nearest(s string, candidates []string) string {
	best, bestDist := "", -1
	for _, c := range candidates {
		if d := editdist.Levenshtein(s, c); bestDist < 0 || d < bestDist {
			best, bestDist = c, d
		}
	}
	return best
}

// run executes maillab with args and returns the process exit code. It
// never panics on bad input: every error becomes one line on stderr.
func run(args []string, stdout, stderr io.Writer) int {
	app := newApp(stdout, stderr)
	err := checkCommand(app, args)
	if err == nil {
		err = app.Run(reorderArgs(app, args))
	}
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.msg != "" {
			fmt.Fprintln(stderr, "maillab: "+oneLine(ee.msg))
		}
		return ee.code
	}
	var ce cli.ExitCoder
	if errors.As(err, &ce) {
		if msg := err.Error(); msg != "" {
			fmt.Fprintln(stderr, "maillab: "+oneLine(msg))
		}
		return ce.ExitCode()
	}
	// Anything else is a usage problem reported by the flag parser or an
	// error of maillab itself; both are exit 2.
	fmt.Fprintln(stderr, "maillab: "+oneLine(err.Error()))
	return exitUsage
}

// checkCommand refuses an unknown command name with the valid ones
// (urfave/cli would print a help-topic error and exit 3).
func checkCommand(app *cli.App, args []string) error {
	if args[len(args)-1] == "--generate-bash-completion" {
		return nil
	}
	for _, a := range args[1:] {
		if strings.HasPrefix(a, "-") {
			continue
		}
		if a == "help" || a == "h" || findCommand(app.Commands, a) != nil {
			return nil
		}
		var names []string
		for _, c := range app.Commands {
			names = append(names, c.Name)
		}
		return usageErrorf("unknown command %q; valid: %s (maillab --help explains them)", a, strings.Join(names, ", "))
	}
	return nil
}

func oneLine(s string) string {
	s = strings.TrimSpace(s)
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " ")), " ")
}
