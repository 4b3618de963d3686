package main

import (
	"strings"

	"github.com/urfave/cli/v2"
)

// reorderArgs moves a command's flags in front of its positional
// arguments, so that "maillab scenario expired-cert --json" works like
// "maillab scenario --json expired-cert" (Go's flag package, under
// urfave/cli v2, stops at the first positional argument). Everything after
// "--" is left alone.
func reorderArgs(app *cli.App, args []string) []string {
	if len(args) < 2 || args[len(args)-1] == "--generate-bash-completion" {
		// Shell completion wants the words as typed.
		return args
	}
	out := []string{args[0]}
	rest := args[1:]
	// Global flags come first; find the command.
	i := 0
	for i < len(rest) && strings.HasPrefix(rest[i], "-") {
		i++
	}
	if i >= len(rest) {
		return args
	}
	out = append(out, rest[:i]...)
	cmd := findCommand(app.Commands, rest[i])
	if cmd == nil {
		return args
	}
	out = append(out, rest[i])
	rest = rest[i+1:]
	// Descend into a subcommand named by the first positional argument;
	// what comes before it belongs to the parent.
	for {
		flags, pos, tail := splitFlags(cmd.Flags, rest)
		if len(pos) > 0 {
			if sub := findCommand(cmd.Subcommands, pos[0]); sub != nil {
				at := indexOf(rest, pos[0])
				out = append(out, rest[:at+1]...)
				rest = rest[at+1:]
				cmd = sub
				continue
			}
		}
		out = append(out, flags...)
		out = append(out, pos...)
		return append(out, tail...)
	}
}

func indexOf(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

func findCommand(cmds []*cli.Command, name string) *cli.Command {
	for _, c := range cmds {
		if c.HasName(name) {
			return c
		}
	}
	return nil
}

// splitFlags separates args into flags (with their values), positional
// arguments, and what follows "--".
func splitFlags(defs []cli.Flag, args []string) (flags, pos, tail []string) {
	boolFlag := map[string]bool{"help": true, "h": true, "generate-bash-completion": true}
	known := map[string]bool{}
	for _, f := range defs {
		_, isBool := f.(*cli.BoolFlag)
		for _, n := range f.Names() {
			known[n] = true
			if isBool {
				boolFlag[n] = true
			}
		}
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			tail = args[i:]
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			pos = append(pos, a)
			continue
		}
		flags = append(flags, a)
		name := strings.TrimLeft(a, "-")
		if strings.Contains(name, "=") || boolFlag[name] || !known[name] {
			continue
		}
		if i+1 < len(args) {
			flags = append(flags, args[i+1])
			i++
		}
	}
	return flags, pos, tail
}
