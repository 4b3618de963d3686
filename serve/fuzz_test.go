package serve

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/maillab/maillab/servers/mailstore"
)

// FuzzParseMessage: any stored bytes (mail arrives from the network) give
// a view, never a panic, with the stored size.
func FuzzParseMessage(f *testing.F) {
	f.Add([]byte("From: a@b\r\nSubject: hi\r\n\r\nbody\r\n"))
	f.Add([]byte("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/html\r\n\r\n<p>x</p>\r\n--b\r\nContent-Disposition: attachment; filename=\"a.pdf\"\r\n\r\nxx\r\n--b--\r\n"))
	f.Add([]byte("Subject: =?utf-8?q?caf=C3=A9?=\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\ncaf=E9\r\n"))
	f.Add([]byte("Content-Type: multipart/mixed; boundary=\r\n\r\n--\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		v := parseMessage("alice@example.test", "INBOX", mailstore.Message{UID: 1, Data: data})
		if v.Size != int64(len(data)) {
			t.Errorf("size %d, want %d", v.Size, len(data))
		}
		if v.Headers == nil || v.Text == nil || v.HTML == nil || v.Attachments == nil {
			t.Errorf("nil lists in %+v", v)
		}
	})
}

// FuzzMessageID: ids round-trip; any other string is refused or decodes
// to three parts.
func FuzzMessageID(f *testing.F) {
	f.Add("alice@example.test", "INBOX", uint32(7), "Ym9i")
	f.Fuzz(func(t *testing.T, account, mailbox string, uid uint32, other string) {
		if !strings.Contains(account+mailbox, "\x00") {
			a, m, u, ok := parseMessageID(messageID(account, mailbox, uid))
			if !ok || a != account || m != mailbox || u != uid {
				t.Errorf("round trip of (%q, %q, %d) = (%q, %q, %d, %v)", account, mailbox, uid, a, m, u, ok)
			}
		}
		parseMessageID(other)
	})
}

// FuzzDecodeBody: any request body is decoded or refused with a 400 or
// 413 naming what is wrong, never a panic or another status.
func FuzzDecodeBody(f *testing.F) {
	f.Add(`{"scenario":"expired-cert"}`)
	f.Add(`{"scenario_yaml":"name: x","ports":{"imaps":993}}`)
	f.Add(`{"scenario":`)
	f.Add(`{"scenari":1}`)
	f.Add(`[] {}`)
	f.Fuzz(func(t *testing.T, body string) {
		r := httptest.NewRequest("POST", "/api/v1/labs", strings.NewReader(body))
		r.Body = http.MaxBytesReader(httptest.NewRecorder(), r.Body, 1<<10)
		var req createRequest
		err := decodeBody(r, &req)
		if err == nil {
			return
		}
		var ae *apiError
		if !errors.As(err, &ae) || (ae.Status != http.StatusBadRequest && ae.Status != http.StatusRequestEntityTooLarge) || ae.Msg == "" {
			t.Errorf("decodeBody(%q) = %v, want a 400 or 413 apiError", body, err)
		}
	})
}
