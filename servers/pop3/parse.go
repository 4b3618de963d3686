package pop3

import (
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
)

// command is one parsed command line (RFC 2449 §3:
// command = keyword *(SP param) CRLF).
type command struct {
	// name is the keyword in upper case ("RETR").
	name string
	// args are the space-separated parameters; runs of spaces count as one
	// separator.
	args []string
	// rest is everything after the keyword and its separating space,
	// verbatim. PASS takes it whole, since RFC 1939 §7 lets a password
	// contain spaces.
	rest string
}

// Parse errors; each is answered "-ERR" and counts as a bad command.
var (
	errEmptyCommand   = errors.New("empty command line")
	errControlChar    = errors.New("control character in command line")
	errInvalidKeyword = errors.New("invalid command keyword")
)

// parseCommand parses a command line without its line terminator.
//
// RFC 2449 §3: a keyword is 3 or 4 VCHARs, parameters are VCHARs separated
// by single spaces. Octets 0x80 and above are allowed in parameters because
// passwords and user names may be UTF-8; control characters never are.
func parseCommand(line []byte) (command, error) {
	if len(line) == 0 {
		return command{}, errEmptyCommand
	}
	for _, b := range line {
		if b < 0x20 || b == 0x7f {
			return command{}, errControlChar
		}
	}
	s := string(line)
	keyword, rest, _ := strings.Cut(s, " ")
	if len(keyword) < 3 || len(keyword) > 4 {
		return command{}, errInvalidKeyword
	}
	for i := 0; i < len(keyword); i++ {
		if keyword[i] < 0x21 || keyword[i] > 0x7e {
			return command{}, errInvalidKeyword
		}
	}
	cmd := command{name: strings.ToUpper(keyword), rest: rest}
	for arg := range strings.SplitSeq(rest, " ") {
		if arg != "" {
			cmd.args = append(cmd.args, arg)
		}
	}
	return cmd, nil
}

// errBadNumber means a message-number or line-count argument is not a
// decimal number.
var errBadNumber = errors.New("not a decimal number")

// parseNumber parses a non-negative decimal argument (RFC 1939 §3
// "message-number", §7 TOP's "n"). Leading zeros are accepted. A value too
// large for an int is returned as ok=false with no error: it is well-formed
// but names nothing that exists.
func parseNumber(s string) (n int, ok bool, err error) {
	if s == "" || len(s) > 64 {
		return 0, false, errBadNumber
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false, errBadNumber
		}
	}
	v, perr := strconv.ParseInt(s, 10, 32)
	if perr != nil {
		return 0, false, nil // range error: all digits, just too large
	}
	return int(v), true, nil
}

// validUID reports whether uid is a unique-id as RFC 1939 §7 defines it:
// 1 to 70 characters in the range 0x21 to 0x7E.
func validUID(uid string) bool {
	if len(uid) < 1 || len(uid) > 70 {
		return false
	}
	for i := 0; i < len(uid); i++ {
		if uid[i] < 0x21 || uid[i] > 0x7e {
			return false
		}
	}
	return true
}

// validMechanism reports whether name is a SASL mechanism name
// (RFC 4422 §3.1: 1 to 20 of A-Z, 0-9, "-", "_").
func validMechanism(name string) bool {
	if len(name) < 1 || len(name) > 20 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if (c < 'A' || c > 'Z') && (c < '0' || c > '9') && c != '-' && c != '_' {
			return false
		}
	}
	return true
}

// saslEncoding is strict Base64: RFC 5034 §4 requires rejecting any
// character outside the alphabet and misplaced padding.
var saslEncoding = base64.StdEncoding.Strict()

// decodeSASL decodes a client response of an AUTH exchange. An empty line is
// an empty (non-nil) response.
func decodeSASL(s string) ([]byte, error) {
	if strings.ContainsAny(s, "\r\n") {
		return nil, base64.CorruptInputError(strings.IndexAny(s, "\r\n"))
	}
	b, err := saslEncoding.DecodeString(s)
	if err != nil {
		return nil, err
	}
	if b == nil {
		b = []byte{}
	}
	return b, nil
}

// maskCommand returns the command line as Trace may see it: the arguments of
// PASS and APOP and the initial response of AUTH replaced by "****".
//
// It works on the raw line, not on a successful parse, so that a line the
// parser rejects (a tab instead of a space, leading spaces, a control
// character) cannot smuggle a password into a transcript.
func maskCommand(line string) string {
	start := 0
	for start < len(line) && (line[start] == ' ' || line[start] == '\t') {
		start++
	}
	trimmed := line[start:]
	if len(trimmed) < 4 {
		return line
	}
	keyword := strings.ToUpper(trimmed[:4])
	after := trimmed[4:]
	switch keyword {
	case "PASS", "APOP":
		if strings.TrimLeft(after, " \t") == "" {
			return line
		}
		return line[:start+4] + " ****"
	case "AUTH":
		// AUTH <mechanism> [initial-response]: keep a well-formed
		// mechanism name, which says what was tried, hide anything after it.
		rest := strings.TrimLeft(after, " \t")
		if rest == "" {
			return line // bare AUTH lists the mechanisms
		}
		mech, resp := rest, ""
		if i := strings.IndexAny(rest, " \t"); i >= 0 {
			mech, resp = rest[:i], rest[i:]
		}
		separated := len(rest) < len(after)
		if !separated || !validMechanism(strings.ToUpper(mech)) {
			return line[:start+4] + " ****"
		}
		if strings.TrimLeft(resp, " \t") == "" {
			return line
		}
		return line[:start+4] + " " + mech + " ****"
	}
	return line
}

// maxReplyLine is the longest first line of a response, CRLF included
// (RFC 2449 §4).
const maxReplyLine = 512

// sanitizeLine makes s safe as the text of one protocol line: control
// characters become spaces and the text is cut so that "-ERR [SYS/TEMP] "
// plus the text fits the 512-octet limit of RFC 2449 §4.
func sanitizeLine(s string) string {
	const room = maxReplyLine - len("-ERR [SYS/TEMP] \r\n") - 32
	var b strings.Builder
	for i := 0; i < len(s) && b.Len() < room; i++ {
		c := s[i]
		if c < 0x20 || c == 0x7f {
			c = ' '
		}
		b.WriteByte(c)
	}
	return strings.TrimSpace(b.String())
}
