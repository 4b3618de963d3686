package transcript

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
)

// IMAPWriter returns a debug writer for go-imap's imapserver
// (Options.DebugWriter) that records this session's exchange.
//
// Credentials are masked by the state of the client's own stream: the
// arguments after the user name of a LOGIN, all of its literals and
// continuation lines, and the responses of an AUTHENTICATE exchange,
// however the client's bytes were cut into writes.
func (s *Session) IMAPWriter() io.Writer { return &imapWriter{s: s, tags: map[string]bool{}} }

type imapWriter struct {
	s  *Session
	mu sync.Mutex

	guessed int // writes whose direction the caller did not tell

	tags map[string]bool // client tags awaiting their completion response

	clientPartial []byte
	serverPartial []byte

	// Literal octets still to come (RFC 9051 §4.3), per direction.
	serverLit      int64
	serverLitTotal int64
	clientLit      int64
	clientLitTotal int64
	// clientLitSync: the client's literal is synchronizing ("{n}"), so
	// it waits for the server's "+" (RFC 9051 §7.5); if the server ends
	// the command instead, the literal never comes.
	clientLitSync bool
	// clientLitGo: the client may send its literal now (non-synchronizing,
	// or the server sent "+").
	clientLitGo bool
	// serverRest: after a server literal, the rest of the line follows.
	serverRest bool

	// cmdTag is the tag of a client command whose line ended with a
	// literal: the command goes on after the literal (RFC 9051 §2.2.1).
	cmdTag string
	inCmd  bool
	// secret: the current command carries credentials (LOGIN): its
	// literals and continuation lines are masked.
	secret bool

	// An AUTHENTICATE exchange (RFC 9051 §6.2.2): authOpen until the
	// tagged completion of authTag; saslLeft responses the mechanism
	// still expects, counted on the client's stream.
	authOpen bool
	authTag  string
	saslLeft int
}

func (w *imapWriter) Write(b []byte) (int, error) {
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
// fallback: the libraries' tees say it, see callerDirection). Servers send
// untagged ("* "), continuation ("+ ") and tagged status responses for
// tags the client used (RFC 9051 §2.2.2), but not while the client is in
// the middle of a literal, nor in the middle of a line unless an earlier
// command still waits for its completion.
func (w *imapWriter) guess(b []byte) Direction {
	if len(w.clientPartial) > 0 && len(w.tags) == 0 || w.clientLit > 0 && w.clientLitGo {
		return Client
	}
	if w.serverLit > 0 || w.serverRest || len(w.serverPartial) > 0 {
		return Server
	}
	if bytes.HasPrefix(b, []byte("* ")) || bytes.HasPrefix(b, []byte("+ ")) || bytes.Equal(b, []byte("+\r\n")) {
		return Server
	}
	first, _, _ := bytes.Cut(b, []byte("\n"))
	tag, rest, ok := strings.Cut(strings.TrimRight(string(first), "\r"), " ")
	if !ok || !w.tags[tag] {
		return Client
	}
	status, _, _ := strings.Cut(rest, " ")
	switch strings.ToUpper(status) {
	case "OK", "NO", "BAD", "BYE", "PREAUTH":
		return Server
	}
	return Client
}

func (w *imapWriter) feed(dir Direction, b []byte) {
	for len(b) > 0 {
		if dir == Server {
			if w.serverLit > 0 {
				b = w.eatServerLiteral(b)
				continue
			}
			b = w.consumeServer(b)
			continue
		}
		if w.clientLit > 0 {
			b = w.eatClientLiteral(b)
			continue
		}
		b = w.consumeClient(b)
	}
}

func (w *imapWriter) eatServerLiteral(b []byte) []byte {
	n := min(int64(len(b)), w.serverLit)
	w.serverLit -= n
	if w.serverLit == 0 {
		w.s.Log(Server, fmt.Sprintf("<literal, %d octets>", w.serverLitTotal))
		w.serverRest = true
	}
	return b[n:]
}

func (w *imapWriter) eatClientLiteral(b []byte) []byte {
	n := min(int64(len(b)), w.clientLit)
	w.clientLit -= n
	if w.clientLit == 0 {
		if w.secret {
			w.s.Log(Client, masked)
		} else {
			w.s.Log(Client, fmt.Sprintf("<literal, %d octets>", w.clientLitTotal))
		}
	}
	return b[n:]
}

// consumeServer logs the server's complete lines until a literal begins
// and returns the rest.
func (w *imapWriter) consumeServer(b []byte) []byte {
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			w.serverPartial = append(w.serverPartial, b...)
			if len(w.serverPartial) > 8192 {
				w.s.Log(Server, string(w.serverPartial))
				w.serverPartial = nil
			}
			return nil
		}
		line := string(append(w.serverPartial, b[:i+1]...))
		w.serverPartial = nil
		b = b[i+1:]
		rest := w.serverRest
		w.serverRest = false
		w.s.Log(Server, line)
		if strings.HasPrefix(line, "+") && w.clientLit > 0 {
			w.clientLitGo = true
		}
		if n, _, ok := literalSize(line); ok && n > 0 {
			w.serverLit, w.serverLitTotal = n, n
			return b
		}
		if !rest {
			w.serverStatus(line)
		}
	}
	return nil
}

// serverStatus follows tagged completions: they end an AUTHENTICATE
// exchange, and a command the server ends before the client sent its
// synchronizing literal will not get that literal.
func (w *imapWriter) serverStatus(line string) {
	tag, rest, ok := strings.Cut(strings.TrimRight(line, "\r\n"), " ")
	if !ok || tag == "*" || tag == "+" {
		return
	}
	status, _, _ := strings.Cut(rest, " ")
	switch strings.ToUpper(status) {
	case "OK", "NO", "BAD":
	default:
		return
	}
	delete(w.tags, tag)
	if w.authOpen && tag == w.authTag {
		w.authOpen = false
	}
	if w.inCmd && tag == w.cmdTag && w.clientLitSync && w.clientLit == w.clientLitTotal {
		w.clientLit, w.inCmd, w.secret = 0, false, false
	}
}

// consumeClient logs the client's complete lines until a literal begins
// and returns the rest.
func (w *imapWriter) consumeClient(b []byte) []byte {
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			w.clientPartial = append(w.clientPartial, b...)
			if len(w.clientPartial) > 8192 {
				w.clientLine(string(w.clientPartial))
				w.clientPartial = nil
			}
			return nil
		}
		line := string(append(w.clientPartial, b[:i+1]...))
		w.clientPartial = nil
		b = b[i+1:]
		w.clientLine(line)
		if n, sync, ok := literalSize(line); ok && w.inCmd {
			w.clientLit, w.clientLitTotal, w.clientLitSync, w.clientLitGo = n, n, sync, !sync
			if n == 0 && w.secret {
				w.s.Log(Client, masked)
			}
			return b
		}
		w.inCmd, w.secret = false, false
	}
	return nil
}

// literalSize reports the size of a literal announced at the end of line
// ("{123}", "{123+}" (RFC 7888, non-synchronizing) or "~{123}" for
// BINARY) and whether the sender waits for a continuation.
func literalSize(line string) (n int64, sync, ok bool) {
	line = strings.TrimRight(line, "\r\n")
	if !strings.HasSuffix(line, "}") {
		return 0, false, false
	}
	i := strings.LastIndexByte(line, '{')
	if i < 0 {
		return 0, false, false
	}
	num := line[i+1 : len(line)-1]
	nonSync := strings.HasSuffix(num, "+")
	n, err := strconv.ParseInt(strings.TrimSuffix(num, "+"), 10, 64)
	if err != nil || n < 0 {
		return 0, false, false
	}
	return n, !nonSync, true
}

// clientLine logs one client line. It leaves inCmd set when the line is
// part of a command that may go on after a literal.
func (w *imapWriter) clientLine(line string) {
	text := strings.TrimRight(line, "\r\n")
	if w.inCmd {
		// The rest of a command after a literal.
		if w.secret {
			w.s.Log(Client, masked)
		} else {
			w.s.Log(Client, text)
		}
		return
	}
	if isSASLResponse(text, w.authOpen, w.saslLeft) {
		if text == "*" {
			w.saslLeft = 0 // the client cancelled (RFC 9051 §6.2.2)
		} else if w.saslLeft > 0 {
			w.saslLeft--
		}
		w.s.logSASLResponse(text)
		return
	}
	w.saslLeft = 0
	w.inCmd = true
	fields := strings.SplitN(text, " ", 4)
	if len(fields) < 2 {
		w.s.Log(Client, text)
		return
	}
	tag, cmd := fields[0], strings.ToUpper(fields[1])
	if cmd == "UID" && len(fields) >= 3 {
		cmd = strings.ToUpper(fields[2])
	}
	w.tags[tag] = true
	w.cmdTag = tag
	switch cmd {
	case "LOGIN":
		// RFC 9051 §6.2.3: tag LOGIN userid password. Keep the user name
		// unless it is a literal; hide everything after it.
		w.secret = true
		if len(fields) >= 3 {
			user := fields[2]
			if _, _, isLit := literalSize(user); isLit {
				text = fields[0] + " " + fields[1] + " " + user
			} else if len(fields) == 4 {
				text = fields[0] + " " + fields[1] + " " + user + " " + masked
				if n, sync, isLit := literalSize(fields[3]); isLit {
					// The password is a literal: say so, the size is no secret.
					text = fields[0] + " " + fields[1] + " " + user + " " + literalAnnouncement(n, sync)
				}
			}
		}
	case "AUTHENTICATE":
		// RFC 9051 §6.2.2 with SASL-IR (RFC 4959): tag AUTHENTICATE
		// mechanism [initial-response].
		mech := ""
		if len(fields) >= 3 {
			mech = fields[2]
		}
		w.authOpen, w.authTag = true, tag
		w.saslLeft = saslResponses(mech, len(fields) == 4)
		if len(fields) == 4 {
			text = fields[0] + " " + fields[1] + " " + fields[2] + " " + masked
		}
	}
	w.s.Log(Client, text)
}

func literalAnnouncement(n int64, sync bool) string {
	if sync {
		return fmt.Sprintf("{%d}", n)
	}
	return fmt.Sprintf("{%d+}", n)
}
