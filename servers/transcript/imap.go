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
func (s *Session) IMAPWriter() io.Writer { return &imapWriter{s: s, tags: map[string]bool{}} }

type imapWriter struct {
	s  *Session
	mu sync.Mutex

	tags map[string]bool // client tags awaiting their completion response

	// Literal octets still to come (RFC 3501 §4.3), per direction.
	serverLit int64
	clientLit int64
	litTotal  int64
	// pendingLit is a synchronizing client literal announced with "{n}":
	// its octets follow the server's "+" continuation (RFC 3501 §7.5).
	pendingLit int64
	// rest: after a literal, the rest of the line belongs to the same
	// side.
	rest Direction

	clientPartial []byte
	// secret: the client's current command carries credentials (LOGIN,
	// AUTHENTICATE): its literals and continuation lines are masked.
	secret bool
	// sasl: an AUTHENTICATE exchange is running: client lines are masked
	// until the tagged completion.
	sasl bool
}

func (w *imapWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.consume(b)
	return len(b), nil
}

func (w *imapWriter) consume(b []byte) {
	for len(b) > 0 {
		switch {
		case w.serverLit > 0:
			b = w.eatLiteral(b, &w.serverLit, Server)
		case w.clientLit > 0:
			b = w.eatLiteral(b, &w.clientLit, Client)
		case w.rest != 0:
			dir := w.rest
			w.rest = 0
			b = w.consumeLines(b, dir)
		case w.isServerChunk(b):
			b = w.consumeLines(b, Server)
		default:
			b = w.consumeLines(b, Client)
		}
	}
}

func (w *imapWriter) eatLiteral(b []byte, remaining *int64, dir Direction) []byte {
	n := min(int64(len(b)), *remaining)
	*remaining -= n
	if *remaining == 0 {
		w.rest = dir
		if dir == Client && w.secret {
			w.s.Log(dir, masked)
		} else {
			w.s.Log(dir, fmt.Sprintf("<literal, %d octets>", w.litTotal))
		}
	}
	return b[n:]
}

// isServerChunk classifies a chunk by its first line (RFC 3501 §2.2.2):
// servers send untagged ("* "), continuation ("+ ") and tagged status
// responses for tags the client used.
func (w *imapWriter) isServerChunk(b []byte) bool {
	if bytes.HasPrefix(b, []byte("* ")) || bytes.HasPrefix(b, []byte("+ ")) || bytes.Equal(b, []byte("+\r\n")) {
		return true
	}
	if len(w.clientPartial) > 0 {
		return false
	}
	first, _, _ := bytes.Cut(b, []byte("\n"))
	tag, rest, ok := strings.Cut(strings.TrimRight(string(first), "\r"), " ")
	if !ok || !w.tags[tag] {
		return false
	}
	status, _, _ := strings.Cut(rest, " ")
	switch strings.ToUpper(status) {
	case "OK", "NO", "BAD", "BYE", "PREAUTH":
		return true
	}
	return false
}

// consumeLines logs the complete lines of b from dir until a literal
// begins, and returns the rest.
func (w *imapWriter) consumeLines(b []byte, dir Direction) []byte {
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			if dir == Client {
				w.clientPartial = append(w.clientPartial, b...)
				if len(w.clientPartial) > 8192 {
					w.clientLine(string(w.clientPartial))
					w.clientPartial = nil
				}
			} else {
				w.s.Log(Server, string(b))
			}
			return nil
		}
		line := string(b[:i+1])
		b = b[i+1:]
		if dir == Client {
			line = string(append(w.clientPartial, line...))
			w.clientPartial = nil
			w.clientLine(line)
		} else {
			w.serverLine(line)
		}
		if n, sync, ok := literalSize(line); ok && n > 0 {
			w.litTotal = n
			switch {
			case dir == Server:
				w.serverLit = n
			case sync:
				w.pendingLit = n
				return nil // the server's continuation comes first
			default:
				w.clientLit = n
			}
			return b
		}
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

func (w *imapWriter) serverLine(line string) {
	w.s.Log(Server, line)
	if strings.HasPrefix(line, "+") && w.pendingLit > 0 {
		w.clientLit, w.pendingLit = w.pendingLit, 0
		return
	}
	tag, rest, ok := strings.Cut(strings.TrimRight(line, "\r\n"), " ")
	if !ok || tag == "*" || tag == "+" {
		return
	}
	status, _, _ := strings.Cut(rest, " ")
	switch strings.ToUpper(status) {
	case "OK", "NO", "BAD":
		if w.tags[tag] {
			delete(w.tags, tag)
			w.secret, w.sasl, w.pendingLit = false, false, 0
		}
	}
}

func (w *imapWriter) clientLine(line string) {
	text := strings.TrimRight(line, "\r\n")
	if w.sasl {
		w.s.logSASLResponse(text)
		return
	}
	if w.secret {
		// Continuation of a LOGIN whose arguments came as literals.
		w.s.Log(Client, masked)
		return
	}
	fields := strings.SplitN(text, " ", 4)
	if len(fields) >= 2 {
		tag, cmd := fields[0], strings.ToUpper(fields[1])
		if cmd == "UID" && len(fields) >= 3 {
			cmd = strings.ToUpper(fields[2])
		}
		w.tags[tag] = true
		switch cmd {
		case "LOGIN":
			// tag LOGIN user password: keep the user name only.
			if len(fields) >= 3 {
				user := fields[2]
				if _, _, isLit := literalSize(user); isLit {
					w.secret = true
					text = fields[0] + " " + fields[1] + " " + user
				} else {
					text = fields[0] + " " + fields[1] + " " + user + " " + masked
					if len(fields) == 4 {
						if _, _, isLit := literalSize(fields[3]); isLit {
							w.secret = true
						}
					}
				}
			}
		case "AUTHENTICATE":
			w.sasl = true
			if len(fields) == 4 {
				text = fields[0] + " " + fields[1] + " " + fields[2] + " " + masked
			}
		}
	}
	w.s.Log(Client, text)
}
