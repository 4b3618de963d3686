package imapd

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/maillab/maillab/servers/auth"
	"github.com/maillab/maillab/servers/mailstore"
)

// Seeds of FuzzMessage: what SMTP delivers and clients APPEND, and the
// malformed shapes that reach a lab.
var messageSeeds = []string{
	multipartMessage(),
	message(bob, alice, "plain", "hello"),
	"From: a@b\r\nSubject: =?utf-8?q?Caf=C3=A9?=\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\ncaf=C3=A9\r\n",
	"Content-Type: message/rfc822\r\n\r\nSubject: inner\r\nContent-Type: multipart/alternative; boundary=x\r\n\r\n--x\r\n\r\na\r\n--x\r\nContent-Type: text/html\r\n\r\n<b>b</b>\r\n--x--\r\n",
	"Content-Type: multipart/mixed; boundary=\"never\"\r\n\r\nno parts at all\r\n",
	"Content-Type: multipart/mixed\r\n\r\n--\r\n",
	"Content-Type: ;;;\r\nContent-Disposition: attachment; filename*=bad''\r\n\r\nx",
	"Content-Type: multipart/digest; boundary=d\r\n\r\n--d\r\n\r\nSubject: digest part\r\n\r\nbody\r\n--d--\r\n",
	"not a header line\r\n\r\nbody",
	" leading space\r\n",
	"",
	"From: <>\r\nTo: undisclosed-recipients:;\r\nDate: yesterday\r\n\r\n",
	"Content-Transfer-Encoding: base64\r\n\r\n!!!not base64!!!\r\n",
}

// checkStructure reports what the IMAP grammar (RFC 3501 §9 body) or
// go-imap's writer would reject.
func checkStructure(t *testing.T, bs imap.BodyStructure, depth int) {
	t.Helper()
	switch bs := bs.(type) {
	case *imap.BodyStructureSinglePart:
		if bs.Type == "" || bs.Subtype == "" {
			t.Fatalf("part without media type: %#v", bs)
		}
		if bs.Extended == nil {
			t.Fatalf("part without extension data (go-imap panics writing BODYSTRUCTURE): %#v", bs)
		}
		if bs.MessageRFC822 != nil {
			if bs.MessageRFC822.Envelope == nil {
				t.Fatalf("message/rfc822 without envelope")
			}
			checkStructure(t, bs.MessageRFC822.BodyStructure, depth+1)
		}
	case *imap.BodyStructureMultiPart:
		if len(bs.Children) == 0 || bs.Subtype == "" {
			t.Fatalf("multipart without parts or subtype: %#v", bs)
		}
		if bs.Extended == nil {
			t.Fatalf("multipart without extension data: %#v", bs)
		}
		for _, c := range bs.Children {
			checkStructure(t, c, depth+1)
		}
	default:
		t.Fatalf("body structure %T", bs)
	}
}

// FuzzMessage feeds arbitrary message bytes to everything FETCH and
// SEARCH derive from a stored message.
func FuzzMessage(f *testing.F) {
	for _, s := range messageSeeds {
		f.Add([]byte(s))
	}
	sections := []*imap.FetchItemBodySection{
		{},
		{Specifier: imap.PartSpecifierHeader},
		{Specifier: imap.PartSpecifierText},
		{Specifier: imap.PartSpecifierHeader, HeaderFields: []string{"Subject", "From"}},
		{Part: []int{1}},
		{Part: []int{2, 1}, Specifier: imap.PartSpecifierMIME},
		{Part: []int{1}, Specifier: imap.PartSpecifierHeader},
		{Partial: &imap.SectionPartial{Offset: 3, Size: 5}},
	}
	criteria := &imap.SearchCriteria{
		Header:     []imap.SearchCriteriaHeaderField{{Key: "Subject", Value: "caf"}},
		Body:       []string{"body"},
		Text:       []string{"x"},
		SentSince:  time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC),
		Not:        []imap.SearchCriteria{{Larger: 10}},
		Or:         [][2]imap.SearchCriteria{{{Flag: []imap.Flag{imap.FlagSeen}}, {Smaller: 100}}},
		SeqNum:     []imap.SeqSet{{{Start: 1, Stop: 0}}},
		UID:        []imap.UIDSet{{{Start: 2, Stop: 0}}},
		SentBefore: time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		envelope(data)
		checkStructure(t, bodyStructure(data), 0)
		for _, sec := range sections {
			bodySection(data, sec)
		}
		if got := bodySection(data, &imap.FetchItemBodySection{}); !bytes.Equal(got, data) {
			t.Fatalf("BODY[] = %q, want the message as stored", got)
		}
		for _, part := range [][]int{nil, {1}, {2}, {1, 1}} {
			if _, err := binarySection(data, part, nil); err != nil && err != errUnknownCTE {
				t.Fatalf("BINARY%v: %v", part, err)
			}
			binarySize(data, part)
		}
		key := compileSearch(criteria, 1, 7)
		msg := &searchMessage{m: &mailstore.Message{UID: 7, Data: data}, seq: 1}
		key.match(msg)
	})
}

// FuzzCommands runs arbitrary command bytes through a logged-in session
// with a selected mailbox, over a real socket. The server must neither
// panic nor log an error (which means a bug or a SERVERBUG reply).
func FuzzCommands(f *testing.F) {
	for _, s := range []string{
		"a FETCH 1:* (FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODYSTRUCTURE BODY.PEEK[HEADER.FIELDS (SUBJECT)] BINARY.SIZE[1])",
		"a UID FETCH 1:* (BODY[]<0.10> BINARY[2] BODY[1.MIME])\r\nb FETCH * BODY[TEXT]",
		"a SEARCH OR FROM bob NOT SEEN SINCE 1-Jan-2020 LARGER 5 UID 1:* HEADER X-Y \"\"\r\nb SEARCH RETURN (MIN MAX COUNT) TEXT x",
		"a STORE 1:* +FLAGS.SILENT (\\Deleted $Label)\r\nb EXPUNGE\r\nc NOOP",
		"a UID STORE 2 FLAGS (\\Seen)\r\nb UID EXPUNGE 1:*",
		"a COPY 1:2 Archive\r\nb MOVE 1 Archive\r\nc UID MOVE 1:* Nope",
		"a CREATE x/y/\r\nb RENAME x z\r\nc DELETE z\r\nd LIST \"\" *\r\ne LSUB \"\" %\r\nf LIST \"z\" \"\"",
		"a STATUS INBOX (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN DELETED SIZE DELETED-STORAGE APPENDLIMIT)",
		"a APPEND INBOX (\\Seen) \" 1-Jan-2024 10:00:00 +0000\" {12}\r\nSubject: x\r\nb APPEND Archive ~{3}\r\nabc",
		"a IDLE\r\nDONE\r\nb IDLE\r\nnot done\r\nc NOOP",
		"a EXAMINE INBOX\r\nb STORE 1 +FLAGS (\\Seen)\r\nc FETCH 1 BODY[]\r\nd CLOSE\r\ne SELECT inbox",
		"a NAMESPACE\r\nb ENABLE UTF8=ACCEPT IMAP4rev2\r\nc SEARCH ALL\r\nd UNSELECT\r\ne FETCH 1 FLAGS",
		"a SELECT Archive\r\nb DELETE Archive\r\nc NOOP\r\nd FETCH 1:* FLAGS",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, input []byte) {
		runScript(t, input)
	})
}

// runScript serves one connection: login, SELECT INBOX, input, LOGOUT.
func runScript(t *testing.T, input []byte) {
	st := newStore(t)
	u, _ := st.User(alice)
	u.CreateMailbox("Archive")
	inbox, _ := u.Mailbox("INBOX")
	for _, m := range messageSeeds[:4] {
		if _, err := inbox.Append([]byte(m), []string{`\Flagged`}, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	log := &errorCounter{}
	srv := New(Config{
		Store:             st,
		Auth:              &auth.Store{Store: st},
		AllowInsecureAuth: true,
		Logger:            slog.New(log),
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(ioTimeout))
	out := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(c)
		out <- b
	}()
	script := "l LOGIN alice@example.test alice-secret\r\ns SELECT INBOX\r\n" + string(input) + "\r\nz LOGOUT\r\n"
	c.Write([]byte(script))
	c.(*net.TCPConn).CloseWrite() // the server reads EOF after the script
	transcript := <-out
	srv.Close()
	if err := <-served; err != nil {
		t.Fatalf("Serve = %v", err)
	}
	if !bytes.Contains(transcript, []byte("s OK [READ-WRITE]")) {
		t.Fatalf("no SELECT:\n%s", transcript)
	}
	if errs := log.records(); len(errs) > 0 {
		t.Fatalf("server logged errors %q for script %q; transcript:\n%s", errs, script, transcript)
	}
}

// errorCounter is a slog.Handler that keeps records at level ERROR.
type errorCounter struct {
	mu   sync.Mutex
	errs []string
}

func (h *errorCounter) Enabled(context.Context, slog.Level) bool { return true }

func (h *errorCounter) Handle(_ context.Context, r slog.Record) error {
	if r.Level < slog.LevelError {
		return nil
	}
	var b strings.Builder
	b.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool {
		b.WriteString(" " + a.String())
		return true
	})
	h.mu.Lock()
	h.errs = append(h.errs, b.String())
	h.mu.Unlock()
	return nil
}

func (h *errorCounter) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *errorCounter) WithGroup(string) slog.Handler      { return h }

func (h *errorCounter) records() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.errs...)
}

// segConn feeds its segments to Read, one per call, and records writes.
type segConn struct {
	net.Conn // nil: only the methods below are used
	segs     [][]byte
	wrote    bytes.Buffer
	closed   bool
}

func (c *segConn) Read(p []byte) (int, error) {
	if c.closed {
		return 0, net.ErrClosed
	}
	if len(c.segs) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.segs[0])
	if c.segs[0] = c.segs[0][n:]; len(c.segs[0]) == 0 {
		c.segs = c.segs[1:]
	}
	return n, nil
}
func (c *segConn) Write(p []byte) (int, error)      { return c.wrote.Write(p) }
func (c *segConn) Close() error                     { c.closed = true; return nil }
func (c *segConn) SetWriteDeadline(time.Time) error { return nil }

// guardRun passes input through a guard (before login) cut into segments
// at the given offsets, reading with go-imap's 4 KiB buffer, and returns
// what reached go-imap and what the guard answered itself.
func guardRun(input []byte, cuts []int) (passed, replied []byte) {
	c := &segConn{}
	prev := 0
	for _, at := range cuts {
		if at > prev && at < len(input) {
			c.segs = append(c.segs, input[prev:at])
			prev = at
		}
	}
	c.segs = append(c.segs, input[prev:])
	g := newGuardConn(c, func() bool { return false }, nil)
	g.startTLS = &tls.Config{}
	buf := make([]byte, 4096)
	for {
		n, err := g.Read(buf)
		passed = append(passed, buf[:n]...)
		if err != nil {
			return passed, c.wrote.Bytes()
		}
	}
}

// FuzzGuard: the guard's framing of the client's bytes (and its own
// replies) does not depend on how TCP cut them, and it invents nothing:
// what reaches go-imap is a subsequence of the input.
func FuzzGuard(f *testing.F) {
	for _, s := range []string{
		"a1 LOGIN {5000}\r\na2 NOOP\r\n",
		"a1 LOGIN {5000+}\r\n" + strings.Repeat("x", 100),
		"a1 LOGIN {18}\r\nalice@example.test {100000}\r\n",
		"a1 ID " + strings.Repeat("(", 150) + strings.Repeat(")", 150) + "\r\na2 NOOP\r\n",
		"a1 SEARCH \"((((\\\"((\" (((ALL)))\r\n",
		"a1 NOOP\r\na2 STARTTLS\r\n\x16\x03\x01\x00\x05hello",
		"a1 STARTTLS extra\r\na2 starttls\r\n",
		"a1 LOGIN {3}\r\nabc {3}\r\ndef\r\n",
	} {
		f.Add([]byte(s), uint16(7), uint16(3))
	}
	f.Fuzz(func(t *testing.T, input []byte, step, phase uint16) {
		if len(input) > 1<<16 {
			return
		}
		whole, wholeReply := guardRun(input, nil)
		var cuts []int
		if step > 0 {
			for at := int(phase) % int(step); at < len(input); at += int(step) {
				cuts = append(cuts, at)
			}
		}
		cut, cutReply := guardRun(input, cuts)
		if !bytes.Equal(whole, cut) || !bytes.Equal(wholeReply, cutReply) {
			t.Fatalf("cut every %d octets: passed %q, replied %q; in one piece: %q, %q", step, cut, cutReply, whole, wholeReply)
		}
		// whole is a subsequence of the input: walk both.
		rest := input
		for p := whole; len(p) > 0; {
			i := bytes.Index(rest, p[:1])
			if i < 0 {
				t.Fatalf("passed %q is not a subsequence of the input %q", whole, input)
			}
			rest, p = rest[i+1:], p[1:]
		}
	})
}
