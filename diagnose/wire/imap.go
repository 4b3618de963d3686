package wire

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Response is one IMAP server response line (RFC 3501 §7), with literals
// inlined.
type Response struct {
	// Tag is "*" for untagged data, "+" for a continuation request, else
	// the command tag.
	Tag string
	// Status is OK, NO, BAD, PREAUTH or BYE for status responses, "" for
	// data such as "* CAPABILITY ..." or "* 3 EXISTS".
	Status string
	// Code is the upper-cased response code atom in brackets (RFC 3501
	// §7.1, RFC 5530), e.g. "AUTHENTICATIONFAILED"; "" when absent.
	Code string
	// CodeArgs is the text after the code atom inside the brackets.
	CodeArgs string
	// Text is the human-readable text after the status and code; for data
	// responses, everything after the tag.
	Text string
	// Number is the message number of "* n EXISTS"-style data, 0 if none.
	Number int
	// Raw is the response as received (literal bytes inlined).
	Raw string
}

// Keyword returns the upper-cased first atom of a data response ("EXISTS"
// for "* 3 EXISTS", "CAPABILITY" for "* CAPABILITY ...").
func (r Response) Keyword() string {
	f := strings.Fields(r.Text)
	if len(f) == 0 {
		return ""
	}
	return strings.ToUpper(f[0])
}

// ErrMalformedResponse is returned for a line that is not an IMAP response.
var ErrMalformedResponse = errors.New("malformed IMAP response")

// ParseResponse parses one IMAP response line (without CRLF).
func ParseResponse(line string) (Response, error) {
	r := Response{Raw: line}
	tag, rest, _ := strings.Cut(line, " ")
	if tag == "" {
		return r, fmt.Errorf("%w: %q", ErrMalformedResponse, truncate(line, 80))
	}
	r.Tag = tag
	if tag == "+" {
		r.Text = rest
		return r, nil
	}
	if !validTag(tag) {
		return r, fmt.Errorf("%w: bad tag in %q", ErrMalformedResponse, truncate(line, 80))
	}
	word, after, _ := strings.Cut(rest, " ")
	if tag == "*" {
		if n, err := strconv.Atoi(word); err == nil && n >= 0 {
			r.Number = n
			r.Text = after
			return r, nil
		}
	}
	switch status := strings.ToUpper(word); status {
	case "OK", "NO", "BAD", "PREAUTH", "BYE":
		r.Status = status
		r.Code, r.CodeArgs, r.Text = parseRespText(after)
		return r, nil
	}
	if tag != "*" {
		return r, fmt.Errorf("%w: tagged response without status: %q", ErrMalformedResponse, truncate(line, 80))
	}
	r.Text = rest
	return r, nil
}

// parseRespText splits "[CODE args] text" (RFC 3501 §9 resp-text).
func parseRespText(s string) (code, args, text string) {
	if !strings.HasPrefix(s, "[") {
		return "", "", s
	}
	end := strings.IndexByte(s, ']')
	if end < 0 {
		return "", "", s
	}
	inner := s[1:end]
	code, args, _ = strings.Cut(inner, " ")
	return strings.ToUpper(code), args, strings.TrimLeft(s[end+1:], " ")
}

func validTag(tag string) bool {
	if tag == "*" {
		return true
	}
	for i := 0; i < len(tag); i++ {
		c := tag[i]
		// RFC 3501 §9: tag = 1*<any ASTRING-CHAR except "+">.
		if c <= ' ' || c >= 0x7f || strings.IndexByte("(){%*\"\\+", c) >= 0 {
			return false
		}
	}
	return true
}

// MaxLiteral bounds one IMAP literal read by ReadResponse.
const MaxLiteral = 64 << 10

// ReadResponse reads one IMAP response, inlining literals ("{n}" at the end
// of a line is followed by n bytes and the rest of the response), up to
// maxBytes in all.
func ReadResponse(r *Reader, maxBytes int) (Response, error) {
	var b strings.Builder
	for {
		line, err := r.ReadLine()
		b.WriteString(line)
		if err != nil {
			return Response{Raw: b.String()}, err
		}
		if b.Len() > maxBytes {
			return Response{Raw: truncate(b.String(), 200)}, fmt.Errorf("%w: response longer than %d bytes", ErrLineTooLong, maxBytes)
		}
		n, ok := literalSuffix(line)
		if !ok {
			break
		}
		if b.Len()+n > maxBytes {
			return Response{Raw: truncate(b.String(), 200)}, fmt.Errorf("%w: literal of %d bytes exceeds the response limit of %d", ErrLineTooLong, n, maxBytes)
		}
		lit, err := r.ReadFull(n, min(maxBytes, MaxLiteral))
		b.Write(lit)
		if err != nil {
			return Response{Raw: b.String()}, err
		}
	}
	return ParseResponse(b.String())
}

// literalSuffix recognises "{n}" or "{n+}" at the end of a line (RFC 3501
// §4.3, RFC 7888).
func literalSuffix(line string) (int, bool) {
	if !strings.HasSuffix(line, "}") {
		return 0, false
	}
	open := strings.LastIndexByte(line, '{')
	if open < 0 {
		return 0, false
	}
	num := strings.TrimSuffix(line[open+1:len(line)-1], "+")
	if num == "" || len(num) > 10 {
		return 0, false
	}
	n, err := strconv.Atoi(num)
	if err != nil || n < 0 {
		return 0, false
	}
	return n, true
}

// ParseCapabilities splits a capability list ("IMAP4rev1 STARTTLS
// AUTH=PLAIN") into upper-cased atoms.
func ParseCapabilities(s string) []string {
	var caps []string
	for _, f := range strings.Fields(s) {
		caps = append(caps, strings.ToUpper(f))
	}
	return caps
}

// Capabilities returns the capabilities carried by r: the data of
// "* CAPABILITY ..." or the arguments of a [CAPABILITY ...] response code.
// ok is false when r carries none.
func (r Response) Capabilities() (caps []string, ok bool) {
	if r.Code == "CAPABILITY" {
		return ParseCapabilities(r.CodeArgs), true
	}
	if r.Tag == "*" && r.Status == "" && r.Keyword() == "CAPABILITY" {
		_, rest, _ := strings.Cut(r.Text, " ")
		return ParseCapabilities(rest), true
	}
	return nil, false
}

// IMAPAuthMechanisms returns the SASL mechanisms of AUTH= capabilities
// (RFC 3501 §6.2.2).
func IMAPAuthMechanisms(caps []string) []string {
	var out []string
	for _, c := range caps {
		if m, ok := strings.CutPrefix(c, "AUTH="); ok && m != "" && !contains(out, m) {
			out = append(out, m)
		}
	}
	return out
}

// QuoteIMAP returns s as an IMAP quoted string (RFC 3501 §4.3), and false
// when s cannot be quoted (CR, LF, NUL or 8-bit bytes need a literal).
func QuoteIMAP(s string) (string, bool) {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == 0 || c == '\r' || c == '\n' || c >= 0x80:
			return "", false
		case c == '"' || c == '\\':
			b.WriteByte('\\')
		}
		b.WriteByte(c)
	}
	b.WriteByte('"')
	return b.String(), true
}
