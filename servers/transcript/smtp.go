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
func (s *Session) SMTPWriter() io.Writer { return &smtpWriter{s: s} }

type smtpWriter struct {
	s  *Session
	mu sync.Mutex

	partial   []byte // an incomplete client line
	data      bool   // client is sending DATA content (RFC 5321 §4.1.1.4)
	dataBytes int64
	tail      []byte // last bytes of DATA content, to find "\r\n.\r\n"
	bdat      int64  // octets of BDAT content still to come (RFC 3030 §2)
	sasl      bool   // server sent 334: client lines are SASL responses
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
	w.mu.Lock()
	defer w.mu.Unlock()
	w.consume(b)
	return len(b), nil
}

func (w *smtpWriter) consume(b []byte) {
	for len(b) > 0 {
		switch {
		case w.data:
			b = w.consumeData(b)
		case w.bdat > 0:
			n := min(int64(len(b)), w.bdat)
			w.bdat -= n
			b = b[n:]
		case len(w.partial) == 0 && w.isServerChunk(b):
			for _, l := range lines(b) {
				w.serverLine(l)
			}
			return
		default:
			b = w.consumeClient(b)
		}
	}
}

func (w *smtpWriter) isServerChunk(b []byte) bool {
	if !bytes.HasSuffix(b, []byte("\n")) {
		return false
	}
	for _, l := range lines(b) {
		if !isSMTPReplyLine(l) {
			return false
		}
	}
	return true
}

func (w *smtpWriter) serverLine(l string) {
	w.s.Log(Server, l)
	code := l[:3]
	switch {
	case code == "354":
		w.data, w.dataBytes, w.tail = true, 0, []byte("\r\n")
	case code == "334":
		w.sasl = true
	case len(l) > 3 && l[3] == '-':
		// Continuation of a multi-line reply: state unchanged.
	default:
		w.sasl = false
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
	if w.sasl {
		w.s.logSASLResponse(text)
		return
	}
	verb, arg, _ := strings.Cut(text, " ")
	switch strings.ToUpper(verb) {
	case "AUTH":
		mech, ir, hasIR := strings.Cut(arg, " ")
		if hasIR && ir != "=" {
			text = verb + " " + mech + " " + masked
		}
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
