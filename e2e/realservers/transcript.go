//go:build e2e

package realservers

import (
	"bytes"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
)

// Transcript is the recorded conversation of one test case with the real
// servers: what each server sent ("S: "), what the client sent ("C: ",
// credentials masked) and notes ("## "). Lines are normalized as they are
// added (see Normalize), so that a re-recording of the same software
// gives the same file. It is safe for concurrent use.
type Transcript struct {
	mu      sync.Mutex
	lines   []string
	secrets []string
}

// Mask makes every later client line show "<secret>" instead of s.
func (t *Transcript) Mask(s string) {
	if s == "" {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.secrets = append(t.secrets, s)
}

// Server records a line the server sent.
func (t *Transcript) Server(line string) { t.add("S: " + Normalize(line)) }

// Client records a line the client sent, with secrets masked.
func (t *Transcript) Client(line string) {
	t.mu.Lock()
	for _, s := range t.secrets {
		line = strings.ReplaceAll(line, s, "<secret>")
	}
	t.mu.Unlock()
	t.add("C: " + line)
}

// Note records a note about the conversation, such as a TLS handshake.
func (t *Transcript) Note(format string, args ...any) {
	t.add("## " + fmt.Sprintf(format, args...))
}

func (t *Transcript) add(line string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lines = append(t.lines, line)
}

// Body returns the recorded lines, each ending in a newline.
func (t *Transcript) Body() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.lines) == 0 {
		return ""
	}
	return strings.Join(t.lines, "\n") + "\n"
}

// Values that differ between runs of the same software, and what they
// are replaced by.
var normalizers = []struct {
	re   *regexp.Regexp
	repl string
}{
	// Postfix: "250 2.0.0 Ok: queued as 4Xk2Lq0zQ7z9sN1".
	{regexp.MustCompile(`queued as [0-9A-Za-z]+`), "queued as <QUEUEID>"},
	// OpenSMTPD: "250 2.0.0 09bf3443 Message accepted for delivery".
	{regexp.MustCompile(`^250 2\.0\.0 [0-9a-f]{8} Message accepted`), "250 2.0.0 <QUEUEID> Message accepted"},
	// Courier: "250 Ok. 000000006B13B5DF.0000007C".
	{regexp.MustCompile(`^250 Ok\. [0-9A-F]{16}\.[0-9A-F]{8}$`), "250 Ok. <QUEUEID>"},
	// Dovecot: "a5 OK Status completed (0.001 + 0.000 + 0.001 secs)."
	{regexp.MustCompile(`\(\d+\.\d+ \+ \d+\.\d+( \+ \d+\.\d+)? secs\)`), "(<TIMING> secs)"},
	// Dovecot: "[UIDVALIDITY 1732661623]" and "[UIDNEXT 2]".
	{regexp.MustCompile(`\[(UIDVALIDITY|UIDNEXT|HIGHESTMODSEQ) \d+\]`), "[$1 <N>]"},
	// Dovecot: "Temporary authentication failure. [mail:2026-01-02 03:04:05]".
	{regexp.MustCompile(`\[[^\]\s]+:\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\]`), "[<HOST:TIME>]"},
	// Postfix names the client: "<unknown[127.0.1.10]>: Client host
	// rejected", "too many connections from 127.0.1.10". Each front
	// claims the next address (Site.ClientIP); 127.0.0.x are the servers.
	{regexp.MustCompile(`\b127\.0\.([1-9]|[1-9]\d|1\d\d|2[0-4]\d|25[0-5])\.\d{1,3}\b`), "<CLIENTIP>"},
}

// Normalize replaces the values of a server line that change from run to
// run (queue IDs, timings, UIDVALIDITY, timestamps, client addresses) by placeholders.
func Normalize(line string) string {
	for _, n := range normalizers {
		line = n.re.ReplaceAllString(line, n.repl)
	}
	return line
}

// RecordingHeader is the first block of a recorded file: "# " lines up to
// the first line that does not start with "#".
func RecordingHeader(lines ...string) string {
	var b strings.Builder
	for _, l := range lines {
		b.WriteString("# " + l + "\n")
	}
	return b.String()
}

// SplitRecording splits a recorded file into its header (the leading "# "
// lines) and its body.
func SplitRecording(data []byte) (header, body []byte) {
	i := 0
	for i < len(data) && data[i] == '#' && !bytes.HasPrefix(data[i:], []byte("## ")) {
		nl := bytes.IndexByte(data[i:], '\n')
		if nl < 0 {
			return data, nil
		}
		i += nl + 1
	}
	return data[:i], data[i:]
}

// WriteRecording writes header and body to path.
func WriteRecording(path, header, body string) error {
	if err := os.WriteFile(path, []byte(header+body), 0o644); err != nil {
		return fmt.Errorf("write recording: %w", err)
	}
	return nil
}
