package verify

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteTable prints the result table and the summary line
// "N passed, M failed"; misses are explained below the table.
func (s *Summary) WriteTable(w io.Writer) {
	if s.Matrix {
		s.writeMatrix(w)
	} else {
		s.writeRows(w)
	}
	if s.Failed > 0 {
		fmt.Fprintln(w, "\nMisses:")
		for _, o := range s.Outcomes {
			if o.Pass {
				continue
			}
			o.WriteMiss(w)
		}
	}
	fmt.Fprintf(w, "\n%d passed, %d failed (%s, diagnoser: %s)\n", s.Passed, s.Failed, roundDur(s.Elapsed), s.Diagnoser)
}

// pathTitles are the matrix's column heads.
var pathTitles = map[string]string{"imap": "IMAP STARTTLS", "imaps": "IMAP TLS", "pop3": "POP3 STARTTLS", "pop3s": "POP3 TLS"}

// writeMatrix prints one row per scenario and one column per incoming
// path; AS SET is the scenario run with its own settings (one that the
// matrix does not vary). A cell is PASS, FAIL with the code diagnosed,
// or "." where the scenario does not run.
func (s *Summary) writeMatrix(w io.Writer) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	head := []string{"SCENARIO", "EXPECTED", "AS SET"}
	for _, p := range s.Paths {
		head = append(head, pathTitles[p])
	}
	fmt.Fprintln(tw, strings.Join(head, "\t"))
	for i := 0; i < len(s.Outcomes); {
		name := s.Outcomes[i].Scenario
		cells := map[string]string{}
		for ; i < len(s.Outcomes) && s.Outcomes[i].Scenario == name; i++ {
			o := s.Outcomes[i]
			cell := "PASS"
			if !o.Pass {
				cell = "FAIL " + orDash(o.Diagnosed)
				if o.Diagnosed == o.Expected {
					cell = "FAIL secondary"
				}
			}
			cells[o.Path] = cell
		}
		row := []string{name, s.Outcomes[i-1].Expected, cellOr(cells, "")}
		for _, p := range s.Paths {
			row = append(row, cellOr(cells, p))
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	tw.Flush()
}

func cellOr(cells map[string]string, path string) string {
	if c, ok := cells[path]; ok {
		return c
	}
	return "."
}

func (s *Summary) writeRows(w io.Writer) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SCENARIO\tEXPECTED\tDIAGNOSED\tSECONDARY\tRESULT\tTIME")
	for _, o := range s.Outcomes {
		got := o.Diagnosed
		if got == "" {
			got = "-"
		}
		res := "PASS"
		if !o.Pass {
			res = "FAIL"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", o.Scenario, o.Expected, got, o.secondaryCell(), res, roundDur(o.Elapsed))
	}
	tw.Flush()
}

// Label is the scenario's name, with the path of a matrix run in
// brackets ("expired-cert [pop3]"), as OnStart is given it.
func (o Outcome) Label() string {
	if o.Path == "" {
		return o.Scenario
	}
	return o.Scenario + " [" + o.Path + "]"
}

// WriteMiss explains a failed scenario: the customer's story, what was
// expected, and the diagnoser's answer with its evidence.
func (o Outcome) WriteMiss(w io.Writer) {
	fmt.Fprintf(w, "\n  %s: expected %s, diagnosed %s\n", o.Label(), o.Expected, orDash(o.Diagnosed))
	fmt.Fprintf(w, "    story:    %s\n", oneLine(o.Story))
	if o.Error != "" {
		fmt.Fprintf(w, "    error:    %s\n", oneLine(o.Error))
	}
	for _, s := range o.Secondary {
		switch s.Status {
		case SecondaryMissing:
			fmt.Fprintf(w, "    secondary: %s neither reported nor named as unverifiable\n", s.Code)
		case SecondaryUnverifiable:
			fmt.Fprintf(w, "    secondary: %s unverifiable: %s\n", s.Code, oneLine(s.Reason))
		default:
			fmt.Fprintf(w, "    secondary: %s found\n", s.Code)
		}
	}
	if o.Summary != "" {
		fmt.Fprintf(w, "    summary:  %s\n", oneLine(o.Summary))
	}
	for _, line := range strings.Split(strings.TrimSpace(o.Evidence), "\n") {
		if line != "" {
			fmt.Fprintf(w, "    evidence: %s\n", oneLine(line))
		}
	}
}

// secondaryCell is the SECONDARY column: each secondary code with its
// status ("AUTH_FAILED unverifiable"), or "-".
func (o Outcome) secondaryCell() string {
	if len(o.Secondary) == 0 {
		return "-"
	}
	var parts []string
	for _, s := range o.Secondary {
		parts = append(parts, s.Code+" "+s.Status)
	}
	return strings.Join(parts, ", ")
}

// secondaryMissed reports whether a secondary code was neither found nor
// named as unverifiable.
func (o Outcome) secondaryMissed() bool {
	for _, s := range o.Secondary {
		if s.Status == SecondaryMissing {
			return true
		}
	}
	return false
}

func orDash(s string) string {
	if s == "" {
		return "nothing"
	}
	return s
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func roundDur(d time.Duration) time.Duration {
	if d > time.Second {
		return d.Round(10 * time.Millisecond)
	}
	return d.Round(100 * time.Microsecond)
}

// WriteJSON writes the summary as JSON.
func (s *Summary) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(s)
}

type junitSuites struct {
	XMLName xml.Name     `xml:"testsuites"`
	Suites  []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Time     string      `xml:"time,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Class   string        `xml:"classname,attr"`
	Name    string        `xml:"name,attr"`
	Time    string        `xml:"time,attr"`
	Failure *junitFailure `xml:"failure,omitempty"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"`
}

// WriteJUnit writes the summary as JUnit XML, as CI systems read it: one
// test case per scenario, a failure element for each miss.
func (s *Summary) WriteJUnit(w io.Writer) error {
	name := "maillab verify"
	if s.Matrix {
		name = "maillab verify --matrix"
	}
	suite := junitSuite{Name: name, Tests: len(s.Outcomes), Failures: s.Failed, Time: secs(s.Elapsed)}
	for _, o := range s.Outcomes {
		c := junitCase{Class: "maillab.catalog", Name: o.Label(), Time: secs(o.Elapsed)}
		if o.Path != "" {
			c.Class = "maillab.matrix." + o.Path
		}
		if !o.Pass {
			var b strings.Builder
			o.WriteMiss(&b)
			msg := fmt.Sprintf("expected %s, diagnosed %s", o.Expected, orDash(o.Diagnosed))
			typ := "WrongRootCause"
			switch {
			case o.Error != "":
				typ = "DiagnoserError"
			case o.Diagnosed == o.Expected && o.secondaryMissed():
				typ, msg = "MissedSecondaryCause", msg+"; missed secondary: "+o.secondaryCell()
			}
			c.Failure = &junitFailure{Message: msg, Type: typ, Text: strings.TrimSpace(b.String())}
		}
		suite.Cases = append(suite.Cases, c)
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(junitSuites{Suites: []junitSuite{suite}}); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

func secs(d time.Duration) string { return fmt.Sprintf("%.3f", d.Seconds()) }
