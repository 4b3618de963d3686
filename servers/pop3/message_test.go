package pop3

import (
	"bufio"
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestWriteMessage(t *testing.T) {
	tests := []struct {
		name      string
		in        string
		bodyLines int
		want      string
		wantN     int64
	}{
		{"empty", "", allLines, ".\r\n", 0},
		{"crlf", "a\r\nb\r\n", allLines, "a\r\nb\r\n.\r\n", 6},
		{"lf", "a\nb\n", allLines, "a\r\nb\r\n.\r\n", 6},
		{"no final newline", "a\r\nb", allLines, "a\r\nb\r\n.\r\n", 6},
		{"final bare CR", "a\r", allLines, "a\r\n.\r\n", 3},
		{"bare CR inside", "a\rb\n", allLines, "a\rb\r\n.\r\n", 5},
		{"dot stuffing", ".\r\n..\r\n.a\nb.\n", allLines, "..\r\n...\r\n..a\r\nb.\r\n.\r\n", 15},
		{"dot first line", ".", allLines, "..\r\n.\r\n", 3},
		{"top 0", "H: 1\r\nH: 2\r\n\r\nb1\r\nb2\r\n", 0, "H: 1\r\nH: 2\r\n\r\n.\r\n", 14},
		{"top 1", "H: 1\n\nb1\nb2\n", 1, "H: 1\r\n\r\nb1\r\n.\r\n", 12},
		{"top more than body", "H: 1\n\nb1", 5, "H: 1\r\n\r\nb1\r\n.\r\n", 12},
		{"top without blank line", "H: 1\nH: 2\n", 0, "H: 1\r\nH: 2\r\n.\r\n", 12},
		{"top counts dot lines", "H\n\n.\n.x\ny\n", 2, "H\r\n\r\n..\r\n..x\r\n.\r\n", 12},
		{"header blank line with CR", "H\r\n\r\nb\r\n", 0, "H\r\n\r\n.\r\n", 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			w := bufio.NewWriter(&buf)
			n, rerr, werr := writeMessage(w, strings.NewReader(tt.in), tt.bodyLines)
			if rerr != nil || werr != nil {
				t.Fatalf("writeMessage errors: read %v, write %v", rerr, werr)
			}
			w.Flush()
			if got := buf.String(); got != tt.want || n != tt.wantN {
				t.Errorf("writeMessage(%q, %d) = %q, %d; want %q, %d", tt.in, tt.bodyLines, got, n, tt.want, tt.wantN)
			}
		})
	}
}

func TestWriteMessageErrors(t *testing.T) {
	readFail := errors.New("read failed")
	var buf bytes.Buffer
	_, rerr, werr := writeMessage(bufio.NewWriter(&buf), ioMultiReader("abc", readFail), allLines)
	if !errors.Is(rerr, readFail) || werr != nil {
		t.Errorf("read failure: got read %v, write %v", rerr, werr)
	}
	writeFail := errors.New("write failed")
	_, rerr, werr = writeMessage(bufio.NewWriterSize(failWriter{writeFail}, 16), strings.NewReader(strings.Repeat("x\n", 100)), allLines)
	if rerr != nil || !errors.Is(werr, writeFail) {
		t.Errorf("write failure: got read %v, write %v", rerr, werr)
	}
}

type failWriter struct{ err error }

func (w failWriter) Write([]byte) (int, error) { return 0, w.err }

// FuzzWriteMessage checks that any message, however malformed, yields a
// well-framed multi-line body: the first line that is exactly "." is the
// last, and un-stuffing gives back the message with CRLF line endings.
func FuzzWriteMessage(f *testing.F) {
	for _, m := range fixtureMessages {
		f.Add([]byte(m.body), int8(-1))
		f.Add([]byte(m.body), int8(1))
	}
	f.Add([]byte(".\r\n.\n\r.\r\r\n"), int8(0))
	f.Add([]byte("\r"), int8(-1))
	f.Fuzz(func(t *testing.T, msg []byte, lines int8) {
		bodyLines := int(lines)
		if bodyLines < 0 {
			bodyLines = allLines
		}
		var buf bytes.Buffer
		w := bufio.NewWriter(&buf)
		if _, rerr, werr := writeMessage(w, bytes.NewReader(msg), bodyLines); rerr != nil || werr != nil {
			t.Fatalf("errors: %v, %v", rerr, werr)
		}
		w.Flush()
		out := buf.String()
		if !strings.HasSuffix(out, ".\r\n") {
			t.Fatalf("output %q lacks the terminator", out)
		}
		body := strings.TrimSuffix(out, ".\r\n")
		if body != "" && !strings.HasSuffix(body, "\r\n") {
			t.Fatalf("output %q: terminator not on its own line", out)
		}
		lines_ := strings.Split(strings.TrimSuffix(body, "\r\n"), "\r\n")
		var unstuffed []string
		for _, l := range lines_ {
			if body == "" {
				break
			}
			if l == "." {
				t.Fatalf("output %q has a lone dot before the end", out)
			}
			if strings.HasPrefix(l, ".") {
				if !strings.HasPrefix(l, "..") {
					t.Fatalf("output %q has an unstuffed dot line %q", out, l)
				}
				l = l[1:]
			}
			if strings.Contains(l, "\n") {
				t.Fatalf("output %q has a bare LF", out)
			}
			unstuffed = append(unstuffed, l)
		}
		if bodyLines != allLines {
			return
		}
		want := strings.ReplaceAll(strings.ReplaceAll(string(msg), "\r\n", "\n"), "\n", "\r\n")
		if want != "" && !strings.HasSuffix(want, "\r\n") {
			if strings.HasSuffix(want, "\r") {
				want += "\n"
			} else {
				want += "\r\n"
			}
		}
		got := ""
		if len(unstuffed) > 0 {
			got = strings.Join(unstuffed, "\r\n") + "\r\n"
		}
		if got != want {
			t.Fatalf("un-stuffed %q, want %q", got, want)
		}
	})
}
