package wire

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// EnhancedCode is an RFC 3463 enhanced mail system status code such as
// 5.7.8. The zero value means "absent".
type EnhancedCode struct {
	Class, Subject, Detail int
}

// IsZero reports whether the code is absent.
func (e EnhancedCode) IsZero() bool { return e == EnhancedCode{} }

// String returns "class.subject.detail", or "" for the zero value.
func (e EnhancedCode) String() string {
	if e.IsZero() {
		return ""
	}
	return fmt.Sprintf("%d.%d.%d", e.Class, e.Subject, e.Detail)
}

// Matches reports whether e has the given subject and detail, ignoring the
// class (X.7.8 matches both 4.7.8 and 5.7.8).
func (e EnhancedCode) Matches(subject, detail int) bool {
	return !e.IsZero() && e.Subject == subject && e.Detail == detail
}

// ParseEnhancedCode parses an enhanced status code at the start of s and
// returns it with the rest of s (leading blanks removed). RFC 3463 §2:
// class "." subject "." detail, class 2, 4 or 5, subject and detail of 1 to
// 3 digits.
func ParseEnhancedCode(s string) (EnhancedCode, string, bool) {
	field, rest, _ := strings.Cut(s, " ")
	parts := strings.Split(field, ".")
	if len(parts) != 3 {
		return EnhancedCode{}, s, false
	}
	var nums [3]int
	for i, p := range parts {
		if len(p) == 0 || len(p) > 3 || (i == 0 && len(p) != 1) {
			return EnhancedCode{}, s, false
		}
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || strings.ContainsAny(p, "+-") {
			return EnhancedCode{}, s, false
		}
		nums[i] = n
	}
	if nums[0] != 2 && nums[0] != 4 && nums[0] != 5 {
		return EnhancedCode{}, s, false
	}
	return EnhancedCode{nums[0], nums[1], nums[2]}, strings.TrimLeft(rest, " "), true
}

// Reply is one SMTP reply, possibly multi-line (RFC 5321 §4.2).
type Reply struct {
	// Code is the three-digit reply code of the last line.
	Code int
	// Enhanced is the RFC 3463 code of the first line that has one.
	Enhanced EnhancedCode
	// Lines are the texts after the code and separator, one per line,
	// with a leading enhanced code removed.
	Lines []string
	// Raw are the lines as received, without line ends.
	Raw []string
}

// Text returns the reply's text lines joined by a blank.
func (r Reply) Text() string { return strings.Join(r.Lines, " ") }

// String returns the raw reply lines joined by " / ", for evidence.
func (r Reply) String() string { return strings.Join(r.Raw, " / ") }

// Class returns the first digit of the code: 2 success, 3 intermediate, 4
// transient failure, 5 permanent failure.
func (r Reply) Class() int { return r.Code / 100 }

// ErrMalformedReply is returned for a line that is not "ddd", "ddd text" or
// "ddd-text".
var ErrMalformedReply = errors.New("malformed SMTP reply")

// ParseReplyLine parses one SMTP reply line: its code, whether more lines
// follow ("ddd-"), and the text after the separator.
func ParseReplyLine(line string) (code int, more bool, text string, err error) {
	if len(line) < 3 {
		return 0, false, "", fmt.Errorf("%w: %q", ErrMalformedReply, truncate(line, 80))
	}
	for i := 0; i < 3; i++ {
		if line[i] < '0' || line[i] > '9' {
			return 0, false, "", fmt.Errorf("%w: %q", ErrMalformedReply, truncate(line, 80))
		}
	}
	code = int(line[0]-'0')*100 + int(line[1]-'0')*10 + int(line[2]-'0')
	// RFC 5321 §4.2: the first digit is 2 to 5.
	if code < 200 || code > 599 {
		return 0, false, "", fmt.Errorf("%w: code %d out of range: %q", ErrMalformedReply, code, truncate(line, 80))
	}
	if len(line) == 3 {
		return code, false, "", nil
	}
	switch line[3] {
	case '-':
		return code, true, line[4:], nil
	case ' ':
		return code, false, line[4:], nil
	}
	return 0, false, "", fmt.Errorf("%w: %q", ErrMalformedReply, truncate(line, 80))
}

// ReadReply reads one SMTP reply of at most maxLines lines. A reply whose
// lines disagree on the code is taken at its last line's code, as lenient
// clients do (RFC 5321 §4.2.1 says they SHOULD agree).
func ReadReply(r *Reader, maxLines int) (Reply, error) {
	var rep Reply
	for {
		line, err := r.ReadLine()
		if err != nil {
			if line != "" {
				rep.Raw = append(rep.Raw, line)
			}
			return rep, err
		}
		rep.Raw = append(rep.Raw, line)
		code, more, text, err := ParseReplyLine(line)
		if err != nil {
			return rep, err
		}
		rep.Code = code
		if ec, rest, ok := ParseEnhancedCode(text); ok {
			if rep.Enhanced.IsZero() {
				rep.Enhanced = ec
			}
			text = rest
		}
		rep.Lines = append(rep.Lines, text)
		if !more {
			return rep, nil
		}
		if len(rep.Raw) >= maxLines {
			return rep, fmt.Errorf("%w: more than %d", ErrTooManyLines, maxLines)
		}
	}
}

// ParseReply parses complete reply lines (for recorded replies and tests).
func ParseReply(lines []string) (Reply, error) {
	var rep Reply
	for i, line := range lines {
		code, more, text, err := ParseReplyLine(line)
		if err != nil {
			return rep, err
		}
		if more == (i == len(lines)-1) {
			if more {
				return rep, fmt.Errorf("%w: last line %q continues", ErrMalformedReply, truncate(line, 80))
			}
			return rep, fmt.Errorf("%w: line %q ends the reply early", ErrMalformedReply, truncate(line, 80))
		}
		rep.Code = code
		rep.Raw = append(rep.Raw, line)
		if ec, rest, ok := ParseEnhancedCode(text); ok {
			if rep.Enhanced.IsZero() {
				rep.Enhanced = ec
			}
			text = rest
		}
		rep.Lines = append(rep.Lines, text)
	}
	if len(lines) == 0 {
		return rep, fmt.Errorf("%w: empty", ErrMalformedReply)
	}
	return rep, nil
}

// EHLO is a parsed EHLO reply (RFC 5321 §4.1.1.1): the server's greeting
// name and its extensions, keyword upper-cased, with their parameters.
type EHLO struct {
	Domain     string
	Extensions map[string][]string
	// Keywords lists the extension keywords in the order received.
	Keywords []string
}

// ParseEHLO parses the lines of a successful EHLO reply.
func ParseEHLO(rep Reply) EHLO {
	e := EHLO{Extensions: map[string][]string{}}
	for i, text := range rep.Lines {
		// Enhanced codes are not used in EHLO replies; ReadReply may have
		// removed one by mistake only if a keyword looked like "2.0.0",
		// which no extension does.
		fields := strings.Fields(text)
		if len(fields) == 0 {
			continue
		}
		if i == 0 {
			e.Domain = fields[0]
			continue
		}
		kw := strings.ToUpper(fields[0])
		params := fields[1:]
		// Old servers (for Outlook Express) announce "AUTH=LOGIN PLAIN".
		if k, v, ok := strings.Cut(kw, "="); ok && k == "AUTH" {
			kw = "AUTH"
			params = append([]string{v}, params...)
		}
		if prev, ok := e.Extensions[kw]; ok {
			e.Extensions[kw] = append(prev, params...)
			continue
		}
		e.Extensions[kw] = params
		e.Keywords = append(e.Keywords, kw)
	}
	return e
}

// Has reports whether the extension keyword is advertised.
func (e EHLO) Has(keyword string) bool {
	_, ok := e.Extensions[strings.ToUpper(keyword)]
	return ok
}

// AuthMechanisms returns the upper-cased SASL mechanisms of the AUTH
// extension (RFC 4954 §3), without duplicates.
func (e EHLO) AuthMechanisms() []string {
	var out []string
	for _, m := range e.Extensions["AUTH"] {
		m = strings.ToUpper(m)
		if m != "" && !contains(out, m) {
			out = append(out, m)
		}
	}
	return out
}

// Size returns the SIZE limit (RFC 1870 §4) and whether one was announced;
// "SIZE" and "SIZE 0" mean no fixed limit.
func (e EHLO) Size() (int64, bool) {
	p, ok := e.Extensions["SIZE"]
	if !ok || len(p) == 0 {
		return 0, false
	}
	n, err := strconv.ParseInt(p[0], 10, 64)
	if err != nil || n <= 0 {
		return 0, false
	}
	return n, true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
