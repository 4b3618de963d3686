// Package wire parses the bytes mail servers send: SMTP replies with RFC
// 3463 enhanced status codes, IMAP responses and response codes (RFC 3501,
// RFC 5530), POP3 status lines and capabilities (RFC 1939, RFC 2449, RFC
// 3206), TLS records, and the first bytes of a connection (which protocol is
// this?).
//
// Every reader is bounded: a line longer than Reader.MaxLine, a multi-line
// reply with more than a caller-given number of lines, or a literal larger
// than the limit is an error, so a hostile server cannot grow memory without
// bound. Time bounds are the caller's: set deadlines on the connection.
package wire

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// DefaultMaxLine is the longest line a Reader accepts by default, CRLF
// included. RFC 5321 §4.5.3.1.5 allows 512 octets for a reply line; RFC 3501
// has no limit, but real servers' capability lines stay far below 4 KiB.
const DefaultMaxLine = 4096

// ErrLineTooLong is returned when a line exceeds the Reader's limit. The
// rest of the line is not read: the connection is unusable after it.
var ErrLineTooLong = errors.New("line too long")

// ErrTooManyLines is returned when a multi-line reply exceeds its line limit.
var ErrTooManyLines = errors.New("too many lines in one reply")

// Reader reads CRLF-terminated lines with a length limit. It accepts a bare
// LF as a line end, as real clients do. The zero value is not usable; call
// NewReader.
type Reader struct {
	br      *bufio.Reader
	maxLine int
	n       int64
}

// NewReader returns a Reader on r that accepts lines of up to maxLine bytes
// (DefaultMaxLine when maxLine <= 0).
func NewReader(r io.Reader, maxLine int) *Reader {
	if maxLine <= 0 {
		maxLine = DefaultMaxLine
	}
	// bufio needs at least 16 bytes; the buffer size is the line limit.
	return &Reader{br: bufio.NewReaderSize(r, max(maxLine, 16)), maxLine: max(maxLine, 16)}
}

// ReadLine returns the next line without its line end. At end of input
// without a line end it returns the partial line and io.ErrUnexpectedEOF
// (or io.EOF when nothing was read).
func (r *Reader) ReadLine() (string, error) {
	line, err := r.br.ReadSlice('\n')
	r.n += int64(len(line))
	switch {
	case errors.Is(err, bufio.ErrBufferFull):
		return string(line[:min(len(line), 200)]), fmt.Errorf("%w: more than %d bytes without a line end", ErrLineTooLong, r.maxLine)
	case err != nil:
		if len(line) == 0 {
			return "", err
		}
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return string(line), err
	}
	line = bytes.TrimSuffix(line, []byte{'\n'})
	line = bytes.TrimSuffix(line, []byte{'\r'})
	return string(line), nil
}

// ReadFull reads exactly n bytes (an IMAP literal), which must not exceed
// limit.
func (r *Reader) ReadFull(n, limit int) ([]byte, error) {
	if n < 0 || n > limit {
		return nil, fmt.Errorf("literal of %d bytes exceeds the limit of %d", n, limit)
	}
	buf := make([]byte, n)
	m, err := io.ReadFull(r.br, buf)
	r.n += int64(m)
	return buf[:m], err
}

// Peek returns up to n bytes without consuming them, waiting for at least
// one byte. It returns what is buffered once the first byte arrived, so a
// caller can sniff a greeting without waiting for a full line.
func (r *Reader) Peek(n int) ([]byte, error) {
	if _, err := r.br.Peek(1); err != nil {
		return nil, err
	}
	b, err := r.br.Peek(min(n, r.br.Buffered()))
	return b, err
}

// Buffered returns the number of bytes read from the connection but not yet
// consumed. After STARTTLS it must be zero (RFC 3207 §4.2: data sent before
// the handshake is an injection attempt).
func (r *Reader) Buffered() int { return r.br.Buffered() }

// BytesRead returns how many bytes the Reader consumed so far.
func (r *Reader) BytesRead() int64 { return r.n }
