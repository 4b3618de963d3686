// Package transcript records what each client sent and what each server
// answered, one line per protocol line, with credentials masked, so a
// trainer can watch a session the way a packet capture would show it
// without TLS in the way.
//
// go-smtp and go-imap expose a session's plaintext only as one debug
// writer that receives both directions; the Writers of this package are
// such debug writers. Every write they receive is a single direction (the
// libraries tee each read and each flushed write separately), and the
// protocol tells which: servers speak in numbered replies (SMTP) or
// untagged, continuation and tagged completion responses (IMAP), with
// literals and DATA tracked so message content is never mistaken for a
// command.
package transcript

import (
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
)

// Direction says who sent a line.
type Direction byte

// Directions.
const (
	Client Direction = 'C' // the client sent it
	Server Direction = 'S' // the server sent it
	Event  Direction = '*' // the lab noted something (connect, TLS, fault)
)

// Entry is one transcript line.
type Entry struct {
	Time    time.Time
	Session uint64 // unique within a lab run
	Service string // e.g. "submission"
	Remote  string // client address
	Dir     Direction
	Text    string
}

// String formats an entry as the lab log shows it.
func (e Entry) String() string {
	return fmt.Sprintf("%s %s#%d %s %c: %s", e.Time.Format("15:04:05.000"), e.Service, e.Session, e.Remote, e.Dir, e.Text)
}

// Sink receives entries. Implementations must be safe for concurrent use.
type Sink interface {
	Record(Entry)
}

// SinkFunc adapts a function to Sink.
type SinkFunc func(Entry)

// Record calls f.
func (f SinkFunc) Record(e Entry) { f(e) }

// Discard drops every entry.
var Discard Sink = SinkFunc(func(Entry) {})

// TextSink writes entries as lines to w, serialising writers.
type TextSink struct {
	mu sync.Mutex
	w  io.Writer
}

// NewTextSink returns a sink writing to w.
func NewTextSink(w io.Writer) *TextSink { return &TextSink{w: w} }

// Record implements Sink.
func (t *TextSink) Record(e Entry) {
	t.mu.Lock()
	defer t.mu.Unlock()
	fmt.Fprintln(t.w, e.String())
}

// Multi fans entries out to several sinks.
type Multi []Sink

// Record implements Sink.
func (m Multi) Record(e Entry) {
	for _, s := range m {
		if s != nil {
			s.Record(e)
		}
	}
}

var sessionIDs atomic.Uint64

// Session is the transcript of one connection.
type Session struct {
	ID      uint64
	Service string
	Remote  string
	sink    Sink
	now     func() time.Time
}

// NewSession starts the transcript of a connection to service.
func NewSession(sink Sink, service string, remote net.Addr) *Session {
	if sink == nil {
		sink = Discard
	}
	r := ""
	if remote != nil {
		r = remote.String()
	}
	return &Session{ID: sessionIDs.Add(1), Service: service, Remote: r, sink: sink, now: time.Now}
}

// Log records one line.
func (s *Session) Log(dir Direction, text string) {
	s.sink.Record(Entry{Time: s.now(), Session: s.ID, Service: s.Service, Remote: s.Remote, Dir: dir, Text: clip(text)})
}

// Eventf records a lab event such as "connected" or "fault: reset".
func (s *Session) Eventf(format string, args ...any) {
	s.Log(Event, fmt.Sprintf(format, args...))
}

// maxLine bounds what one entry shows of a line.
const maxLine = 200

func clip(s string) string {
	s = strings.TrimRight(s, "\r\n")
	// Control characters (C0, DEL, C1) and the Unicode bidirectional
	// controls become dots: a hostile client must not be able to reorder
	// or hide what a trainer reads (a right-to-left override would show
	// "AUTH" lines backwards, a carriage return would overwrite a
	// terminal line).
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) && r != '\t' || unicode.Is(unicode.Bidi_Control, r) {
			return '.'
		}
		return r
	}, s)
	if len(s) > maxLine {
		return s[:maxLine] + fmt.Sprintf("... (%d octets)", len(s))
	}
	return s
}

// masked replaces a secret in the transcript.
const masked = "****"

// lines splits b into lines, keeping a final partial line.
func lines(b []byte) []string {
	s := string(b)
	var out []string
	for s != "" {
		i := strings.Index(s, "\n")
		if i < 0 {
			out = append(out, s)
			break
		}
		out = append(out, s[:i+1])
		s = s[i+1:]
	}
	return out
}

// logSASLResponse records a client's SASL response line (RFC 4954 §4,
// RFC 3501 §6.2.2): masked, except the "*" that cancels the exchange.
func (s *Session) logSASLResponse(text string) {
	if text == "*" {
		s.Log(Client, "*")
		return
	}
	s.Log(Client, masked)
}

// saslResponses is how many client responses mechanism needs before the
// server can decide, counting the initial response if the command carried
// one: PLAIN (RFC 4616 §2), CRAM-MD5 (RFC 2195 §2), XOAUTH2, OAUTHBEARER
// (RFC 7628 §3.2) and EXTERNAL (RFC 4422 App. A) send one message; LOGIN
// (draft-murchison-sasl-login §2) sends the user name, then the password;
// SCRAM (RFC 5802 §5) and DIGEST-MD5 (RFC 2831 §2.1) send two. An unknown
// mechanism counts as one; the exchange stays masked until the server's
// final reply anyway.
func saslResponses(mechanism string, initialResponse bool) int {
	n := 1
	switch m := strings.ToUpper(mechanism); {
	case m == "LOGIN", m == "DIGEST-MD5", strings.HasPrefix(m, "SCRAM-"):
		n = 2
	}
	if initialResponse {
		n--
	}
	return n
}

// isSASLResponse reports whether a client line is a SASL response to mask.
// open: the exchange has not had the server's final reply yet; left: the
// responses the mechanism still expects (counted on the client's stream
// alone, so a response sent before the server's challenge, or in the same
// write as the command, is still one). A response is base64 (RFC 4954 §4,
// RFC 9051 §6.2.2), which never holds a space (RFC 4648 §4): a line with a
// space is the next command once the exchange is over or the mechanism
// has all its responses. Everything else is masked, so the rule errs
// towards hiding a command, never towards showing a secret.
func isSASLResponse(text string, open bool, left int) bool {
	noSpace := !strings.ContainsAny(text, " \t")
	return left > 0 && (open || noSpace) || open && noSpace
}
