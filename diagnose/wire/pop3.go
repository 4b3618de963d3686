package wire

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Status is a POP3 status line (RFC 1939 §3): "+OK text" or "-ERR text",
// with an optional RFC 2449 §8 response code in brackets.
type Status struct {
	// OK is true for "+OK".
	OK bool
	// Code is the upper-cased response code such as "AUTH", "SYS/TEMP",
	// "IN-USE" or "LOGIN-DELAY" (RFC 2449 §8, RFC 3206); "" when absent.
	Code string
	// Text is the text after the indicator and code.
	Text string
	// Raw is the line as received.
	Raw string
}

// ErrMalformedStatus is returned for a line that starts with neither "+OK"
// nor "-ERR".
var ErrMalformedStatus = errors.New("malformed POP3 status")

// ParseStatus parses a POP3 status line. The indicators are matched
// case-insensitively, as RFC 1939 §3 asks of status indicators' keywords
// only implicitly but real servers (and clients) do.
func ParseStatus(line string) (Status, error) {
	s := Status{Raw: line}
	upper := strings.ToUpper(line)
	var rest string
	switch {
	case strings.HasPrefix(upper, "+OK"):
		s.OK = true
		rest = line[3:]
	case strings.HasPrefix(upper, "-ERR"):
		rest = line[4:]
	default:
		return s, fmt.Errorf("%w: %q", ErrMalformedStatus, truncate(line, 80))
	}
	if rest != "" && rest[0] != ' ' {
		return s, fmt.Errorf("%w: %q", ErrMalformedStatus, truncate(line, 80))
	}
	rest = strings.TrimLeft(rest, " ")
	// RFC 2449 §8: resp-code = "[" resp-level *("/" resp-level) "]".
	if strings.HasPrefix(rest, "[") {
		if end := strings.IndexByte(rest, ']'); end > 0 && !strings.ContainsAny(rest[1:end], " ") {
			s.Code = strings.ToUpper(rest[1:end])
			rest = strings.TrimLeft(rest[end+1:], " ")
		}
	}
	s.Text = rest
	return s, nil
}

// ReadMultiline reads the lines of a POP3 multi-line response up to the
// terminating "." (RFC 1939 §3), removing dot-stuffing. At most maxLines
// lines are kept; more is ErrTooManyLines.
func ReadMultiline(r *Reader, maxLines int) ([]string, error) {
	var lines []string
	for {
		line, err := r.ReadLine()
		if err != nil {
			return lines, err
		}
		if line == "." {
			return lines, nil
		}
		if len(lines) >= maxLines {
			return lines, fmt.Errorf("%w: more than %d", ErrTooManyLines, maxLines)
		}
		lines = append(lines, strings.TrimPrefix(line, "."))
	}
}

// CAPA is a parsed CAPA response (RFC 2449 §5): capability names
// upper-cased, with their arguments.
type CAPA map[string][]string

// ParseCAPA parses the lines of a CAPA response.
func ParseCAPA(lines []string) CAPA {
	c := CAPA{}
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		name := strings.ToUpper(f[0])
		c[name] = append(c[name], f[1:]...)
	}
	return c
}

// Has reports whether the capability is listed.
func (c CAPA) Has(name string) bool {
	_, ok := c[strings.ToUpper(name)]
	return ok
}

// SASL returns the upper-cased mechanisms of the SASL capability (RFC 2449
// §6.3).
func (c CAPA) SASL() []string {
	var out []string
	for _, m := range c["SASL"] {
		if m = strings.ToUpper(m); !contains(out, m) {
			out = append(out, m)
		}
	}
	return out
}

// Names returns the capability names in alphabetical order.
func (c CAPA) Names() []string {
	out := make([]string, 0, len(c))
	for k := range c {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
