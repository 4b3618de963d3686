//go:build e2e

package realservers

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Bounds on what a server may send before the recorder gives up: a
// hostile or broken server cannot make it hang on one reply or grow
// memory without bound.
const (
	// MaxLine is the longest reply line read, in bytes, without its CRLF
	// (RFC 5321 §4.5.3.1.5 allows 512; Dovecot's CAPABILITY is longer).
	MaxLine = 64 << 10
	// MaxReplyLines is the most lines of one SMTP reply or POP3
	// multi-line response, and of untagged IMAP responses before the
	// tagged one.
	MaxReplyLines = 1000
	// MaxLiteral is the largest IMAP literal read (RFC 9051 §4.3).
	MaxLiteral = 1 << 20
)

// Errors of the reply readers. A server that sends them is broken or
// hostile; callers branch on them with errors.Is.
var (
	ErrLineTooLong  = errors.New("reply line too long")
	ErrTooManyLines = errors.New("too many reply lines")
	ErrMalformed    = errors.New("malformed reply")
)

// ReadLine reads one line ending in LF (CRLF or a bare LF, as servers
// send) and returns it without the line end. A line longer than MaxLine
// is ErrLineTooLong; a final line without LF is returned with
// io.ErrUnexpectedEOF.
func ReadLine(r *bufio.Reader) (string, error) {
	tooLong := fmt.Errorf("%w: more than %d bytes", ErrLineTooLong, MaxLine)
	var b []byte
	for {
		chunk, err := r.ReadSlice('\n')
		if len(b)+len(chunk) > MaxLine+2 {
			return "", tooLong
		}
		b = append(b, chunk...)
		switch {
		case err == nil:
			line := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
			if len(line) > MaxLine {
				return "", tooLong
			}
			return line, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && len(b) > 0:
			return string(b), io.ErrUnexpectedEOF
		default:
			return "", err
		}
	}
}

// SMTPReply is one complete SMTP reply (RFC 5321 §4.2).
type SMTPReply struct {
	// Code is the three-digit reply code.
	Code int
	// Lines are the reply's lines as received, without CRLF.
	Lines []string
	// Text holds the text of each line after the code and separator.
	Text []string
}

// Has reports whether one line of the reply's text, after the first, is
// keyword or starts with keyword and a space, case-insensitively (an EHLO
// extension, RFC 5321 §4.1.1.1).
func (r SMTPReply) Has(keyword string) bool {
	_, ok := r.Param(keyword)
	return ok
}

// Param returns the parameters of an EHLO extension keyword.
func (r SMTPReply) Param(keyword string) (string, bool) {
	for _, t := range r.Text[min(1, len(r.Text)):] {
		k, params, _ := strings.Cut(t, " ")
		if strings.EqualFold(k, keyword) {
			return params, true
		}
	}
	return "", false
}

// ParseSMTPLine splits one reply line into its code, whether more lines
// follow ("250-" rather than "250 " or a bare "250") and its text
// (RFC 5321 §4.2.1).
func ParseSMTPLine(line string) (code int, more bool, text string, err error) {
	if len(line) < 3 {
		return 0, false, "", fmt.Errorf("%w: SMTP line %q", ErrMalformed, line)
	}
	for i := range 3 {
		if line[i] < '0' || line[i] > '9' {
			return 0, false, "", fmt.Errorf("%w: SMTP line %q has no reply code", ErrMalformed, line)
		}
	}
	code, _ = strconv.Atoi(line[:3])
	if code < 200 || code > 599 {
		return 0, false, "", fmt.Errorf("%w: SMTP reply code %d out of range", ErrMalformed, code)
	}
	if len(line) == 3 {
		return code, false, "", nil
	}
	switch line[3] {
	case '-':
		more = true
	case ' ':
	default:
		return 0, false, "", fmt.Errorf("%w: SMTP line %q", ErrMalformed, line)
	}
	return code, more, line[4:], nil
}

// ReadSMTPReply reads the lines of one reply, calling onLine (if not nil)
// with each line as it arrives. Every line must carry the same code.
func ReadSMTPReply(r *bufio.Reader, onLine func(string)) (SMTPReply, error) {
	var rep SMTPReply
	for len(rep.Lines) < MaxReplyLines {
		line, err := ReadLine(r)
		if err != nil {
			if line != "" && onLine != nil {
				onLine(line)
			}
			return rep, err
		}
		if onLine != nil {
			onLine(line)
		}
		code, more, text, err := ParseSMTPLine(line)
		if err != nil {
			return rep, err
		}
		if rep.Code != 0 && code != rep.Code {
			return rep, fmt.Errorf("%w: code %d inside reply %d", ErrMalformed, code, rep.Code)
		}
		rep.Code = code
		rep.Lines = append(rep.Lines, line)
		rep.Text = append(rep.Text, text)
		if !more {
			return rep, nil
		}
	}
	return rep, fmt.Errorf("%w: SMTP reply of more than %d lines", ErrTooManyLines, MaxReplyLines)
}

// IMAPStatus is a status response (RFC 9051 §7.1): tagged, untagged ("*")
// or a continuation request ("+").
type IMAPStatus struct {
	// Tag is the command tag, "*" or "+".
	Tag string
	// Status is OK, NO, BAD, PREAUTH or BYE; "" for "+".
	Status string
	// Code is the response code without brackets, e.g.
	// "AUTHENTICATIONFAILED" or "CAPABILITY IMAP4rev1 ..."; "" if none.
	Code string
	// Text is the human-readable text after the code.
	Text string
	// Raw is the line as received.
	Raw string
}

// ParseIMAPStatus parses "tag SP status SP [code] text". For "*" lines
// that are not status responses (CAPABILITY, EXISTS ...) it returns
// ErrMalformed.
func ParseIMAPStatus(line string) (IMAPStatus, error) {
	st := IMAPStatus{Raw: line}
	if line == "+" || strings.HasPrefix(line, "+ ") {
		st.Tag = "+"
		st.Text = strings.TrimPrefix(strings.TrimPrefix(line, "+"), " ")
		return st, nil
	}
	tag, rest, ok := strings.Cut(line, " ")
	if !ok || tag == "" {
		return st, fmt.Errorf("%w: IMAP line %q", ErrMalformed, line)
	}
	status, rest, _ := strings.Cut(rest, " ")
	status = strings.ToUpper(status)
	switch status {
	case "OK", "NO", "BAD", "PREAUTH", "BYE":
	default:
		return st, fmt.Errorf("%w: IMAP line %q is not a status response", ErrMalformed, line)
	}
	st.Tag, st.Status = tag, status
	if strings.HasPrefix(rest, "[") {
		end := strings.IndexByte(rest, ']')
		if end < 0 {
			return st, fmt.Errorf("%w: unterminated response code in %q", ErrMalformed, line)
		}
		st.Code = rest[1:end]
		rest = strings.TrimPrefix(rest[end+1:], " ")
	}
	st.Text = rest
	return st, nil
}

// CodeName returns the response code's atom, e.g. "CAPABILITY".
func (s IMAPStatus) CodeName() string {
	name, _, _ := strings.Cut(s.Code, " ")
	return strings.ToUpper(name)
}

// literalSize returns n when line ends with an IMAP literal announcement
// "{n}" or "{n+}" (RFC 9051 §4.3, RFC 7888).
func literalSize(line string) (int, bool) {
	if !strings.HasSuffix(line, "}") {
		return 0, false
	}
	open := strings.LastIndexByte(line, '{')
	if open < 0 {
		return 0, false
	}
	num := strings.TrimSuffix(line[open+1:len(line)-1], "+")
	n, err := strconv.Atoi(num)
	if err != nil || n < 0 || num == "" || num[0] == '+' || num[0] == '-' {
		return 0, false
	}
	return n, true
}

// ReadIMAPResponse reads untagged lines until the tagged status response
// of tag or a continuation request, calling onLine with each line. A
// literal's bytes are skipped; the line is kept with its "{n}". After an
// untagged BYE the server may close the connection without a tagged
// response (RFC 9051 §7.1.5): the end of the stream then returns the BYE.
func ReadIMAPResponse(r *bufio.Reader, tag string, onLine func(string)) (IMAPStatus, []string, error) {
	var untagged []string
	var bye *IMAPStatus
	for len(untagged) < MaxReplyLines {
		line, err := ReadLine(r)
		if err != nil {
			if line != "" && onLine != nil {
				onLine(line)
			}
			if bye != nil && line == "" && errors.Is(err, io.EOF) {
				return *bye, untagged, nil
			}
			return IMAPStatus{}, untagged, err
		}
		if onLine != nil {
			onLine(line)
		}
		full := line
		for {
			n, ok := literalSize(line)
			if !ok {
				break
			}
			if n > MaxLiteral {
				return IMAPStatus{}, untagged, fmt.Errorf("%w: literal of %d bytes", ErrLineTooLong, n)
			}
			if _, err := io.CopyN(io.Discard, r, int64(n)); err != nil {
				return IMAPStatus{}, untagged, err
			}
			if line, err = ReadLine(r); err != nil {
				return IMAPStatus{}, untagged, err
			}
			if onLine != nil {
				onLine(line)
			}
			full += line
		}
		// A continuation request is "+" SP text (RFC 9051 §7.5; some
		// servers send a bare "+"); "+0 BAD" is not one.
		if full == "+" || strings.HasPrefix(full, "+ ") {
			st, err := ParseIMAPStatus(full)
			return st, untagged, err
		}
		if strings.HasPrefix(full, tag+" ") {
			st, err := ParseIMAPStatus(full)
			return st, untagged, err
		}
		if !strings.HasPrefix(full, "* ") {
			return IMAPStatus{}, untagged, fmt.Errorf("%w: IMAP line %q is neither untagged nor tagged %s", ErrMalformed, full, tag)
		}
		untagged = append(untagged, full)
		if st, err := ParseIMAPStatus(full); err == nil && st.Status == "BYE" {
			bye = &st
		}
	}
	return IMAPStatus{}, untagged, fmt.Errorf("%w: more than %d untagged IMAP lines", ErrTooManyLines, MaxReplyLines)
}

// IMAPCapabilities returns the capabilities of a "* CAPABILITY ..." line
// or of a status response's [CAPABILITY ...] code, upper-cased.
func IMAPCapabilities(st IMAPStatus, untagged []string) []string {
	var caps []string
	if st.CodeName() == "CAPABILITY" {
		caps = append(caps, strings.Fields(st.Code)[1:]...)
	}
	for _, u := range untagged {
		if rest, ok := strings.CutPrefix(u, "* CAPABILITY "); ok {
			caps = append(caps, strings.Fields(rest)...)
		}
	}
	for i := range caps {
		caps[i] = strings.ToUpper(caps[i])
	}
	return caps
}

// ParsePOP3Status parses a status line "+OK text" or "-ERR text"
// (RFC 1939 §3); an RFC 2449 §8 response code such as "[AUTH]" stays in
// the text.
func ParsePOP3Status(line string) (ok bool, text string, err error) {
	switch {
	case line == "+OK" || strings.HasPrefix(line, "+OK "):
		return true, strings.TrimPrefix(strings.TrimPrefix(line, "+OK"), " "), nil
	case line == "-ERR" || strings.HasPrefix(line, "-ERR "):
		return false, strings.TrimPrefix(strings.TrimPrefix(line, "-ERR"), " "), nil
	}
	return false, "", fmt.Errorf("%w: POP3 status %q", ErrMalformed, line)
}

// ReadPOP3Multi reads the lines of a multi-line response after its
// status line up to the terminating ".", undoing the byte-stuffing of
// RFC 1939 §3, calling onLine with each raw line.
func ReadPOP3Multi(r *bufio.Reader, onLine func(string)) ([]string, error) {
	var lines []string
	for len(lines) <= MaxReplyLines {
		line, err := ReadLine(r)
		if err != nil {
			if line != "" && onLine != nil {
				onLine(line)
			}
			return lines, err
		}
		if onLine != nil {
			onLine(line)
		}
		if line == "." {
			return lines, nil
		}
		lines = append(lines, strings.TrimPrefix(line, "."))
	}
	return lines, fmt.Errorf("%w: POP3 response of more than %d lines", ErrTooManyLines, MaxReplyLines)
}
