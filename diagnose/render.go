package diagnose

import (
	"fmt"
	"io"
	"strings"
)

// WriteText renders the report for people: per service each step with ✓
// (passed), ✗ (failed) or – (skipped), its time and evidence; then the root
// cause, its evidence and the fix; then the other findings.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	for _, s := range r.Services {
		mark := "✓"
		if !s.OK {
			mark = "✗"
		}
		fmt.Fprintf(&b, "%s %s  %s port %d, %s\n", mark, s.Service, s.Host, s.Port, securityWord(s.Security))
		for _, st := range s.Steps {
			m := "✓"
			switch {
			case st.Skipped:
				m = "–"
			case !st.OK:
				m = "✗"
			}
			fmt.Fprintf(&b, "    %s %-12s %9s", m, st.Step, formatMS(st.ElapsedMS))
			if st.Code != "" {
				fmt.Fprintf(&b, "  %s", st.Code)
			}
			b.WriteByte('\n')
			if st.Evidence != "" {
				writeWrapped(&b, "                             ", st.Evidence)
			}
		}
		b.WriteByte('\n')
	}
	if r.Interrupted {
		b.WriteString("Interrupted: no root cause\n")
		writeWrapped(&b, "  ", r.Summary)
		_, err := io.WriteString(w, b.String())
		return err
	}
	fmt.Fprintf(&b, "Root cause: %s\n", r.RootCause)
	writeWrapped(&b, "  ", r.Summary)
	if ev := r.rootEvidence(); ev != "" {
		b.WriteString("Evidence:\n")
		writeWrapped(&b, "  ", ev)
	}
	b.WriteString("Fix:\n")
	writeWrapped(&b, "  ", r.Fix)
	if len(r.Findings) > 0 {
		b.WriteString("\nOther findings:\n")
		for _, f := range r.Findings {
			code := string(f.Code)
			if code == "" {
				code = "note"
			}
			svc := ""
			if f.Service != "" {
				svc = " (" + f.Service + ")"
			}
			fmt.Fprintf(&b, "  [%s] %s%s\n", f.Severity, code, svc)
			writeWrapped(&b, "      ", f.Summary)
			if f.Evidence != "" {
				writeWrapped(&b, "      evidence: ", f.Evidence)
			}
			if f.Fix != "" {
				writeWrapped(&b, "      fix: ", f.Fix)
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// rootEvidence returns the evidence of the first failed step carrying the
// root cause code.
func (r *Report) rootEvidence() string {
	for _, s := range r.Services {
		for _, st := range s.Steps {
			if !st.OK && st.Code == r.RootCause {
				return fmt.Sprintf("%s %s: %s", s.Service, st.Step, st.Evidence)
			}
		}
	}
	return ""
}

func formatMS(ms float64) string {
	if ms >= 1000 {
		return fmt.Sprintf("%.2f s", ms/1000)
	}
	return fmt.Sprintf("%.1f ms", ms)
}

// writeWrapped writes text with prefix before the first line and as much
// indentation before continuation lines, one source line per output line.
func writeWrapped(b *strings.Builder, prefix, text string) {
	indent := strings.Repeat(" ", len([]rune(prefix)))
	for i, line := range strings.Split(text, "\n") {
		if i == 0 {
			b.WriteString(prefix)
		} else {
			b.WriteString(indent)
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
}
