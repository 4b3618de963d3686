package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/maillab/maillab/faults"
	"github.com/maillab/maillab/lab"
	"github.com/maillab/maillab/rootcause"
	"github.com/maillab/maillab/scenarios"
)

func init() { registerCommand(scenarioCommand()) }

func scenarioCommand() *cli.Command {
	o := &labOptions{}
	var file string
	runFlags := append(labFlags(o), &cli.StringFlag{
		Name: "file", Aliases: []string{"f"}, Usage: "run the custom scenario in `FILE.yaml` (same format as the catalog) instead of a catalog name",
		EnvVars: []string{"MAILLAB_SCENARIO_FILE"}, Destination: &file, TakesFile: true,
	})
	runAction := func(c *cli.Context) error { return runScenario(c, o, file) }
	complete := func(c *cli.Context) {
		for _, n := range scenarios.Names() {
			fmt.Fprintln(c.App.Writer, n)
		}
	}
	return &cli.Command{
		Name:      "scenario",
		Usage:     "start a scenario of the failure catalog, list or explain them",
		ArgsUsage: "NAME",
		Description: `A scenario is a lab with a fault, the customer's (possibly wrong) settings and
the expected root cause. "maillab scenario NAME" (same as "maillab scenario run
NAME") starts it, prints the customer's story and the settings to type into a
real mail client, and then the transcript of every session as clients connect.

Examples:
   maillab scenario list                          the catalog as a table
   maillab scenario show expired-cert             explain one for a trainer
   maillab scenario expired-cert                  start it
   maillab scenario expired-cert --settings-out customer.json
       then: maillab diagnose --settings customer.json
   maillab scenario run -f customer-1234.yaml     a custom scenario file

` + exitCodesHelp,
		Flags:        runFlags,
		Action:       runAction,
		BashComplete: complete,
		Subcommands: []*cli.Command{
			{
				Name:  "list",
				Usage: "list the catalog (name, seed section, root cause, title)",
				Flags: []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print name, title, section, root cause, story and fix as JSON", EnvVars: []string{"MAILLAB_JSON"}}},
				Action: func(c *cli.Context) error {
					return listScenarios(c.App.Writer, c.Bool("json"))
				},
			},
			{
				Name:  "faults",
				Usage: "list the fault types a scenario file can use, with their parameters and defaults",
				Action: func(c *cli.Context) error {
					listFaults(c.App.Writer)
					return nil
				},
			},
			{
				Name:         "show",
				Usage:        "explain a scenario for a trainer: story, cause, how it shows in real clients, fix",
				ArgsUsage:    "NAME",
				Flags:        []cli.Flag{&cli.StringFlag{Name: "file", Aliases: []string{"f"}, Usage: "explain the custom scenario in `FILE.yaml`", TakesFile: true}},
				BashComplete: complete,
				Action: func(c *cli.Context) error {
					sc, err := pickScenario(c, c.String("file"))
					if err != nil {
						return err
					}
					showScenario(c.App.Writer, sc)
					return nil
				},
			},
			{
				Name:         "run",
				Usage:        "start a scenario (same as maillab scenario NAME)",
				ArgsUsage:    "NAME",
				Flags:        runFlags,
				Action:       runAction,
				BashComplete: complete,
			},
		},
	}
}

// pickScenario resolves the NAME argument or --file.
func pickScenario(c *cli.Context, file string) (*scenarios.Scenario, error) {
	switch {
	case file != "" && c.NArg() > 0:
		return nil, usageErrorf("give a scenario NAME or --file, not both")
	case file != "":
		sc, err := scenarios.LoadFile(file)
		if err != nil {
			return nil, usageErrorf("%v", err)
		}
		return sc, nil
	case c.NArg() == 0:
		return nil, usageErrorf("missing scenario NAME (maillab scenario list shows them) or --file")
	case c.NArg() > 1:
		return nil, usageErrorf("one scenario at a time; got %s", strings.Join(c.Args().Slice(), " "))
	}
	sc, err := scenarios.Lookup(c.Args().First())
	if err != nil {
		var ue *scenarios.UnknownError
		if errors.As(err, &ue) {
			return nil, usageErrorf("%s", ue.Msg)
		}
		return nil, err
	}
	return sc, nil
}

type scenarioJSON struct {
	Name      string `json:"name"`
	Title     string `json:"title"`
	Section   string `json:"section"`
	RootCause string `json:"root_cause"`
	Story     string `json:"story"`
	Fix       string `json:"fix"`
}

func listScenarios(w io.Writer, asJSON bool) error {
	cat, err := scenarios.Catalog()
	if err != nil {
		return err
	}
	if asJSON {
		out := make([]scenarioJSON, 0, len(cat))
		for _, sc := range cat {
			out = append(out, scenarioJSON{sc.Name, sc.Title, sc.Section, sc.RootCause, sc.Story, sc.Fix})
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\t§\tROOT CAUSE\tTITLE")
	for _, sc := range cat {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", sc.Name, sc.Section, sc.RootCause, sc.Title)
	}
	tw.Flush()
	fmt.Fprintf(w, "\n%d scenarios. maillab scenario show NAME explains one; maillab scenario NAME starts it.\n", len(cat))
	return nil
}

// listFaults prints every fault type: layer, summary, the shared knobs it
// takes and its own parameters with their defaults.
func listFaults(w io.Writer) {
	for _, d := range faults.Definitions() {
		fmt.Fprintf(w, "%s (%s)\n  %s\n", d.Name, d.Layer, d.Summary)
		knobs := []string{}
		if !d.NoServices {
			knobs = append(knobs, "services")
		}
		if d.PerConnection {
			knobs = append(knobs, "after_connections", "one_in")
		}
		if len(knobs) > 0 {
			fmt.Fprintf(w, "  knobs: %s\n", strings.Join(knobs, ", "))
		}
		if d.Params != nil {
			fmt.Fprintf(w, "  parameters (defaults): %s\n", strings.Join(paramDefaults(reflect.ValueOf(d.Params()).Elem()), ", "))
		}
		fmt.Fprintln(w)
	}
}

// paramDefaults renders a parameter struct as "key: value" by yaml tag.
func paramDefaults(v reflect.Value) []string {
	var out []string
	for i := 0; i < v.NumField(); i++ {
		f := v.Type().Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if opts == "inline" {
			out = append(out, paramDefaults(v.Field(i))...)
			continue
		}
		if name == "" || !f.IsExported() {
			continue
		}
		var val string
		switch x := v.Field(i).Interface().(type) {
		case time.Duration:
			val = x.String()
		case []string:
			val = "[" + strings.Join(x, ", ") + "]"
		case string:
			val = strconv.Quote(x)
		default:
			val = fmt.Sprint(x)
		}
		out = append(out, name+": "+val)
	}
	return out
}

func showScenario(w io.Writer, sc *scenarios.Scenario) {
	fmt.Fprintf(w, "%s: %s\n", sc.Name, sc.Title)
	fmt.Fprintf(w, "Seed section: %s    Root cause: %s (%s)\n\n", sc.Section, sc.RootCause, rootcause.Meaning(rootcause.Code(sc.RootCause)))
	para := func(head, text string) {
		if strings.TrimSpace(text) != "" {
			fmt.Fprintf(w, "%s\n%s\n\n", head, indent(wrap(text, 76), "  "))
		}
	}
	para("What the customer reports:", sc.Story)
	para("Cause:", sc.Cause)
	para("How it shows in real clients:", sc.Symptoms)
	para("Fix:", sc.Fix)
	if len(sc.Faults) > 0 {
		fmt.Fprintln(w, "Faults the lab applies:")
		for _, f := range sc.Faults {
			summary := ""
			if d, ok := faults.Lookup(f.Type); ok {
				summary = d.Summary
			}
			where := ""
			if len(f.Services) > 0 {
				where = " on " + strings.Join(f.Services, ", ")
			}
			fmt.Fprintf(w, "  %s%s: %s\n", f.Type, where, summary)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "Start it: maillab scenario %s\n", sc.Name)
}

func runScenario(c *cli.Context, o *labOptions, file string) error {
	sc, err := pickScenario(c, file)
	if err != nil {
		return err
	}
	waitForSignal, release := catchStopSignals()
	defer release()
	opts, err := o.labOpts(c, c.App.Writer, c.App.ErrWriter)
	if err != nil {
		return err
	}
	r, err := sc.Start(opts)
	if err != nil {
		return usageErrorf("%v", err)
	}
	defer r.Close()
	intro := func(w io.Writer) {
		fmt.Fprintf(w, "maillab scenario %s: %s (expected root cause %s)\n\n", sc.Name, sc.Title, sc.RootCause)
		fmt.Fprintf(w, "The customer says:\n%s\n\n", indent(wrap(sc.Story, 76), "  "))
		fmt.Fprintln(w, "The customer's settings (type these into a real mail client to see the failure):")
	}
	if err := o.publish(c.App.Writer, r.Customer, intro); err != nil {
		return err
	}
	if !o.json {
		printCorrect(c.App.Writer, r.Lab)
	}
	waitForSignal(c.Context)
	fmt.Fprintln(c.App.ErrWriter, "maillab: stopping the scenario")
	return nil
}

// printCorrect adds what a person needs beside the customer's settings.
func printCorrect(w io.Writer, l *lab.Lab) {
	p := l.Primary
	fmt.Fprintf(w, "Server names resolve through the lab's DNS only; a client on the system resolver needs\n")
	fmt.Fprintf(w, "an /etc/hosts line: %s %s (or the address instead of the name; the certificate names it).\n", p.AdvertisedIP, strings.Join(p.Hosts, " "))
	fmt.Fprintf(w, "Lab directory: %s. \"maillab scenario show\" explains the cause and the fix.\n", l.Dir)
}

func wrap(text string, width int) string {
	var lines []string
	for _, para := range strings.Split(strings.TrimSpace(text), "\n") {
		var line string
		for _, word := range strings.Fields(para) {
			if line != "" && len(line)+1+len(word) > width {
				lines = append(lines, line)
				line = ""
			}
			if line != "" {
				line += " "
			}
			line += word
		}
		lines = append(lines, line)
	}
	return strings.Join(lines, "\n")
}

func indent(s, prefix string) string {
	return prefix + strings.ReplaceAll(s, "\n", "\n"+prefix)
}
