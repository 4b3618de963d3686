package pop3

import (
	"bufio"
	"errors"
	"io"
)

// allLines asks writeMessage for the whole message (RETR).
const allLines = -1

// writeMessage sends the message read from src as the body of a multi-line
// response (RFC 1939 §3) and the terminating ".CRLF".
//
// Every line ending (LF or CRLF) is sent as CRLF; a line that starts with
// "." gets another "." in front (dot-stuffing); a last line without a line
// ending gets one. With bodyLines >= 0 it sends the header, the blank line
// that ends it and at most bodyLines lines of the body, then stops reading
// (RFC 1939 §7 TOP); a message without a blank line is sent whole.
//
// It returns the octets of the message that were sent (before stuffing) and
// tells read errors (the backend's) from write errors (the client's).
func writeMessage(dst *bufio.Writer, src io.Reader, bodyLines int) (n int64, readErr, writeErr error) {
	r := bufio.NewReaderSize(src, 32*1024)
	var (
		atLineStart = true  // the next octet starts a line
		prevCR      = false // the previous octet was a CR not yet known to end the line
		lineLen     = 0     // octets of the current line, its CR LF excluded
		inBody      = false // the header has ended
		linesLeft   = bodyLines
	)
	put := func(b byte) {
		if writeErr == nil {
			writeErr = dst.WriteByte(b)
		}
	}
	for writeErr == nil {
		if inBody && linesLeft == 0 {
			break
		}
		b, err := r.ReadByte()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				return n, err, nil
			}
			break
		}
		n++
		if b == '\n' {
			if !prevCR {
				put('\r')
				n++
			}
			put('\n')
			empty := lineLen == 0
			atLineStart, prevCR, lineLen = true, false, 0
			switch {
			case !inBody && empty:
				inBody = true
			case inBody && linesLeft > 0:
				linesLeft--
			}
			continue
		}
		if prevCR {
			lineLen++ // a bare CR is part of the line
			prevCR = false
		}
		if atLineStart && b == '.' {
			put('.') // RFC 1939 §3: byte-stuff the termination octet
		}
		atLineStart = false
		if b == '\r' {
			prevCR = true
		} else {
			lineLen++
		}
		put(b)
	}
	if writeErr != nil {
		return n, nil, writeErr
	}
	switch {
	case prevCR:
		put('\n')
		n++
	case !atLineStart:
		put('\r')
		put('\n')
		n += 2
	}
	put('.')
	put('\r')
	put('\n')
	return n, nil, writeErr
}
