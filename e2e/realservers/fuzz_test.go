//go:build e2e

package realservers

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// recordedServerText returns, per recorded file, the runs of consecutive
// server lines of protocol ("SMTP", "IMAP" or "POP3") joined with CRLF:
// the real servers' bytes, as fuzz seeds.
func recordedServerText(f *testing.F, protocol string) [][]byte {
	f.Helper()
	files, err := filepath.Glob(filepath.Join(recordedDir, "*.txt"))
	if err != nil {
		f.Fatal(err)
	}
	var out [][]byte
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		current := ""
		var block []string
		flush := func() {
			if len(block) > 0 && current == protocol {
				out = append(out, []byte(strings.Join(block, "\r\n")+"\r\n"))
			}
			block = nil
		}
		for _, line := range strings.Split(string(data), "\n") {
			switch {
			case strings.HasPrefix(line, "S: "):
				block = append(block, strings.TrimPrefix(line, "S: "))
			case strings.HasPrefix(line, "## ") && strings.Contains(line, " client, security "):
				flush()
				_, rest, _ := strings.Cut(line, ": ")
				current, _, _ = strings.Cut(rest, " ")
			default:
				flush()
			}
		}
		flush()
	}
	return out
}

func FuzzReadSMTPReply(f *testing.F) {
	for _, seed := range recordedServerText(f, "SMTP") {
		f.Add(seed)
	}
	f.Add([]byte("250-a\r\n251 b\r\n"))
	f.Add([]byte("2"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bufio.NewReader(bytes.NewReader(data))
		for range 100 {
			rep, err := ReadSMTPReply(r, nil)
			if err != nil {
				return
			}
			if rep.Code < 200 || rep.Code > 599 || len(rep.Lines) == 0 || len(rep.Lines) != len(rep.Text) {
				t.Fatalf("ReadSMTPReply = %+v", rep)
			}
			for _, l := range rep.Lines {
				if len(l) > MaxLine {
					t.Fatalf("line of %d bytes", len(l))
				}
				code, _, _, err := ParseSMTPLine(l)
				if err != nil || code != rep.Code {
					t.Fatalf("line %q of reply %d: %d, %v", l, rep.Code, code, err)
				}
			}
		}
	})
}

func FuzzReadIMAPResponse(f *testing.F) {
	for _, seed := range recordedServerText(f, "IMAP") {
		f.Add(seed, "*")
		f.Add(seed, "a2")
	}
	f.Add([]byte("* 1 FETCH (BODY[] {5}\r\nhello)\r\na5 OK done\r\n"), "a5")
	f.Add([]byte("* 1 FETCH {3}\r\nab"), "a1")
	f.Fuzz(func(t *testing.T, data []byte, tag string) {
		if tag == "" || strings.ContainsAny(tag, " \r\n") {
			return
		}
		st, untagged, err := ReadIMAPResponse(bufio.NewReader(bytes.NewReader(data)), tag, nil)
		if len(untagged) > MaxReplyLines {
			t.Fatalf("%d untagged lines", len(untagged))
		}
		for _, u := range untagged {
			if !strings.HasPrefix(u, "* ") {
				t.Fatalf("untagged line %q", u)
			}
		}
		if err != nil {
			return
		}
		if st.Tag != "+" && st.Tag != tag && st.Status != "BYE" {
			t.Fatalf("ReadIMAPResponse(tag %q) ended at %+v", tag, st)
		}
	})
}

func FuzzParseIMAPStatus(f *testing.F) {
	for _, seed := range recordedServerText(f, "IMAP") {
		for _, l := range strings.Split(string(seed), "\r\n") {
			f.Add(l)
		}
	}
	f.Fuzz(func(t *testing.T, line string) {
		st, err := ParseIMAPStatus(line)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("ParseIMAPStatus(%q): %v is not ErrMalformed", line, err)
			}
			return
		}
		if st.Raw != line || (st.Code != "" && !strings.Contains(line, "["+st.Code+"]")) || !strings.HasSuffix(line, st.Text) {
			t.Fatalf("ParseIMAPStatus(%q) = %+v", line, st)
		}
	})
}

func FuzzReadPOP3(f *testing.F) {
	for _, seed := range recordedServerText(f, "POP3") {
		f.Add(seed)
	}
	f.Add([]byte("+OK\r\n..x\r\n.\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bufio.NewReader(bytes.NewReader(data))
		line, err := ReadLine(r)
		if err != nil {
			return
		}
		ok, text, err := ParsePOP3Status(line)
		if err == nil && !strings.HasSuffix(line, text) {
			t.Fatalf("ParsePOP3Status(%q) = %v, %q", line, ok, text)
		}
		lines, _ := ReadPOP3Multi(r, nil)
		if len(lines) > MaxReplyLines+1 {
			t.Fatalf("%d lines", len(lines))
		}
	})
}

// FuzzDNSServer feeds the zone server arbitrary query bytes, as a client
// on the network could: every query it can decode gets a reply that
// encodes, with the query's ID.
func FuzzDNSServer(f *testing.F) {
	s, err := NewDNSServer(Domain, "@ 300 IN MX 10 "+MailHost+".", "mail 300 IN A 127.0.0.1", "_imaps._tcp 300 IN SRV 0 1 993 "+MailHost+".")
	if err != nil {
		f.Fatal(err)
	}
	for _, q := range []struct {
		name string
		t    uint16
	}{{MailHost + ".", dns.TypeA}, {Domain + ".", dns.TypeMX}, {"_imaps._tcp." + Domain + ".", dns.TypeSRV}, {"nope." + Domain + ".", dns.TypeA}, {"example.com.", dns.TypeA}} {
		m := new(dns.Msg)
		m.SetQuestion(q.name, q.t)
		b, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		req := new(dns.Msg)
		if req.Unpack(data) != nil {
			return
		}
		rep := s.answer(req)
		if rep.Id != req.Id {
			t.Fatalf("reply ID %d, query ID %d", rep.Id, req.Id)
		}
		if _, err := rep.Pack(); err != nil {
			t.Fatalf("reply does not encode: %v", err)
		}
	})
}
