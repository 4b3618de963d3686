package transcript

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
)

// SMTPWriter returns a debug writer for go-smtp (smtp.Server.Debug) that
// records this session's exchange.
//
// Credentials are masked by the state of the client's own stream: once a
// client line says AUTH, the responses its mechanism needs are masked
// however the client's bytes were cut into writes and whether or not the
// server's 334 has been seen yet (a client may send "AUTH PLAIN\r\n" and
// its response in one write).
func (s *Session) SMTPWriter() io.Writer { return &smtpWriter{s: s} }

type smtpWriter struct {
	s  *Session
	mu sync.Mutex

	guessed int // writes whose direction the caller did not tell

	partial   []byte // an incomplete client line
	data      bool   // client is sending DATA content (RFC 5321 §4.1.1.4)
	dataBytes int64
	tail      []byte // last bytes of DATA content, to find "\r\n.\r\n"
	bdat      int64  // octets of BDAT content still to come (RFC 3030 §2)

	serverPartial []byte // an incomplete server line

	// pending counts the client's commands that have not had their final
	// reply yet; with PIPELINING (RFC 2920) several may wait. A final
	// reply while none waits is the greeting (RFC 5321 §3.1) or a reply
	// the server sends on its own (421).
	pending int
	// auth: an AUTH exchange (RFC 4954 §4) has not had its final reply.
	auth bool
	// authAhead: final replies still due to commands sent before AUTH.
	authAhead int
	// saslLeft: client responses the AUTH mechanism still expects,
	// counted on the client's stream alone.
	saslLeft int
}

// isSMTPReplyLine reports whether line is an RFC 5321 §4.2 reply line:
// three digits, then end of line, space or hyphen.
func isSMTPReplyLine(line string) bool {
	line = strings.TrimRight(line, "\r\n")
	if len(line) < 3 {
		return false
	}
	for i := 0; i < 3; i++ {
		if line[i] < '0' || line[i] > '9' {
			return false
		}
	}
	if line[0] < '2' || line[0] > '5' {
		return false
	}
	return len(line) == 3 || line[3] == ' ' || line[3] == '-'
}

func (w *smtpWriter) Write(b []byte) (int, error) {
	dir, known := callerDirection()
	w.mu.Lock()
	defer w.mu.Unlock()
	if !known {
		w.guessed++
		dir = w.guess(b)
	}
	w.feed(dir, b)
	return len(b), nil
}

// guess classifies a write whose caller did not say its direction (a
// fallback: the libraries' tees say it, see callerDirection): a server
// write is whole reply lines, and while the client is in the middle of a
// line it answers only commands it has read whole.
func (w *smtpWriter) guess(b []byte) Direction {
	if w.data || w.bdat > 0 || len(w.partial) > 0 && w.pending == 0 || !bytes.HasSuffix(b, []byte("\n")) {
		return Client
	}
	for _, l := range lines(b) {
		if !isSMTPReplyLine(l) {
			return Client
		}
	}
	return Server
}

// feed consumes one write of one direction.
func (w *smtpWriter) feed(dir Direction, b []byte) {
	if dir == Server {
		w.consumeServer(b)
		return
	}
	for len(b) > 0 {
		switch {
		case w.data:
			b = w.consumeData(b)
		case w.bdat > 0:
			n := min(int64(len(b)), w.bdat)
			w.bdat -= n
			b = b[n:]
		default:
			b = w.consumeClient(b)
		}
	}
}

func (w *smtpWriter) consumeServer(b []byte) {
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			w.serverPartial = append(w.serverPartial, b...)
			if len(w.serverPartial) > 4096 {
				w.serverLine(string(w.serverPartial))
				w.serverPartial = nil
			}
			return
		}
		line := string(append(w.serverPartial, b[:i+1]...))
		w.serverPartial = nil
		b = b[i+1:]
		w.serverLine(line)
	}
}

func (w *smtpWriter) serverLine(l string) {
	w.s.Log(Server, l)
	if !isSMTPReplyLine(l) {
		return
	}
	l = strings.TrimRight(l, "\r\n")
	if len(l) > 3 && l[3] == '-' {
		return // a continuation of a multi-line reply (RFC 5321 §4.2.1)
	}
	switch l[:3] {
	case "354": // intermediate: DATA content follows (RFC 5321 §4.3.2)
		w.data, w.dataBytes, w.tail = true, 0, []byte("\r\n")
		return
	case "334": // intermediate: a SASL challenge (RFC 4954 §4)
		return
	}
	if w.pending == 0 {
		return
	}
	w.pending--
	if w.auth {
		if w.authAhead > 0 {
			w.authAhead--
		} else {
			w.auth = false // the AUTH command's own final reply
		}
	}
}

// consumeData eats DATA content up to and including the terminating
// "<CRLF>.<CRLF>" and returns the rest.
func (w *smtpWriter) consumeData(b []byte) []byte {
	buf := append(append([]byte(nil), w.tail...), b...)
	i := bytes.Index(buf, []byte("\r\n.\r\n"))
	if i < 0 {
		w.dataBytes += int64(len(b))
		if len(buf) > 4 {
			w.tail = append([]byte(nil), buf[len(buf)-4:]...)
		} else {
			w.tail = buf
		}
		return nil
	}
	end := i + 5 - len(w.tail) // offset in b just after the terminator
	if end < 0 {
		end = 0
	}
	w.dataBytes += int64(end)
	w.s.Log(Client, fmt.Sprintf("<message content, %d octets>", max(w.dataBytes-3, 0)))
	w.s.Log(Client, ".")
	w.data, w.tail = false, nil
	return b[end:]
}

// consumeClient logs complete client lines of b and returns what follows
// a command that switches to content mode (BDAT).
func (w *smtpWriter) consumeClient(b []byte) []byte {
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			w.partial = append(w.partial, b...)
			if len(w.partial) > 4096 {
				w.clientLine(string(w.partial))
				w.partial = nil
			}
			return nil
		}
		line := string(append(w.partial, b[:i+1]...))
		w.partial = nil
		b = b[i+1:]
		w.clientLine(line)
		if w.bdat > 0 || w.data {
			return b
		}
	}
	return nil
}

func (w *smtpWriter) clientLine(line string) {
	text := strings.TrimRight(line, "\r\n")
	if isSASLResponse(text, w.auth, w.saslLeft) {
		if text == "*" {
			w.saslLeft = 0 // the client cancelled (RFC 4954 §4)
		} else if w.saslLeft > 0 {
			w.saslLeft--
		}
		w.s.logSASLResponse(text)
		return
	}
	w.saslLeft = 0
	w.pending++
	verb, arg, _ := strings.Cut(text, " ")
	switch strings.ToUpper(verb) {
	case "AUTH":
		// RFC 4954 §4: AUTH mechanism [initial-response], where "="
		// is an empty initial response.
		mech, _, hasIR := strings.Cut(arg, " ")
		if hasIR {
			text = verb + " " + mech + " " + masked
		}
		w.auth, w.authAhead = true, w.pending-1
		w.saslLeft = saslResponses(mech, hasIR)
	case "BDAT":
		fields := strings.Fields(arg)
		if len(fields) > 0 {
			if n, err := strconv.ParseInt(fields[0], 10, 64); err == nil && n > 0 {
				w.s.Log(Client, text)
				w.s.Log(Client, fmt.Sprintf("<message content, %d octets>", n))
				w.bdat = n
				return
			}
		}
	}
	w.s.Log(Client, text)
}
