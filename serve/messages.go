package serve

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	_ "github.com/emersion/go-message/charset" // decode non-UTF-8 text parts
	"github.com/emersion/go-message/mail"

	"github.com/maillab/maillab/lab"
	"github.com/maillab/maillab/servers/mailstore"
)

// maxPartText bounds the text of one part in a message view.
const maxPartText = 1 << 20

// messageSummary is one message of a mailbox list.
type messageSummary struct {
	ID      string    `json:"id"`
	Account string    `json:"account"`
	Mailbox string    `json:"mailbox"`
	UID     uint32    `json:"uid"`
	From    string    `json:"from"`
	To      string    `json:"to"`
	Subject string    `json:"subject"`
	Date    time.Time `json:"date"`
	Size    int64     `json:"size"`
}

// accountMessages is the list for one account.
type accountMessages struct {
	Account  string           `json:"account"`
	Messages []messageSummary `json:"messages"`
}

// messageID is an opaque id for account, mailbox and UID.
func messageID(account, mailbox string, uid uint32) string {
	return base64.RawURLEncoding.EncodeToString([]byte(account + "\x00" + mailbox + "\x00" + strconv.FormatUint(uint64(uid), 10)))
}

func parseMessageID(id string) (account, mailbox string, uid uint32, ok bool) {
	raw, err := base64.RawURLEncoding.DecodeString(id)
	if err != nil {
		return "", "", 0, false
	}
	parts := strings.Split(string(raw), "\x00")
	if len(parts) != 3 {
		return "", "", 0, false
	}
	n, err := strconv.ParseUint(parts[2], 10, 32)
	if err != nil {
		return "", "", 0, false
	}
	return parts[0], parts[1], uint32(n), true
}

// runningLab returns the lab's running lab.Lab, or 409.
func (s *Server) runningLab(r *http.Request) (*managedLab, *lab.Lab, error) {
	m, err := s.labOf(r)
	if err != nil {
		return nil, nil, err
	}
	l, _, ok := m.current()
	if !ok {
		return nil, nil, errorf(http.StatusConflict, "id", "lab %s is not running", m.rec.ID)
	}
	return m, l, nil
}

func (s *Server) listMessages(w http.ResponseWriter, r *http.Request) error {
	_, l, err := s.runningLab(r)
	if err != nil {
		return err
	}
	out := []accountMessages{}
	for _, u := range l.Store.Users() {
		am := accountMessages{Account: u.Email, Messages: []messageSummary{}}
		for _, name := range u.Mailboxes() {
			mb, err := u.Mailbox(name)
			if err != nil {
				continue
			}
			for _, msg := range mb.Messages() {
				am.Messages = append(am.Messages, summarize(u.Email, name, msg))
			}
		}
		out = append(out, am)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// summarize reads the header of a stored message. A header that does not
// parse still gives a row (size, date, id), with empty fields.
func summarize(account, mailbox string, msg mailstore.Message) messageSummary {
	sum := messageSummary{ID: messageID(account, mailbox, msg.UID), Account: account, Mailbox: mailbox, UID: msg.UID, Size: msg.Size(), Date: msg.InternalDate}
	mr, err := mail.CreateReader(bytes.NewReader(msg.Data))
	if err != nil && mr == nil {
		return sum
	}
	h := mr.Header
	// Encoded words decoded (a non-ASCII name in From is one); a field
	// that does not decode (unknown charset) stays as sent.
	text := func(k string) string {
		if v, err := h.Text(k); err == nil {
			return v
		}
		return h.Get(k)
	}
	sum.From = text("From")
	sum.To = text("To")
	sum.Subject = text("Subject")
	if d, err := h.Date(); err == nil && !d.IsZero() {
		sum.Date = d
	}
	return sum
}

// lookupMessage finds the message of the request's {mid}.
func (s *Server) lookupMessage(r *http.Request) (*mailstore.Mailbox, mailstore.Message, string, string, error) {
	_, l, err := s.runningLab(r)
	if err != nil {
		return nil, mailstore.Message{}, "", "", err
	}
	mid := r.PathValue("mid")
	account, mailbox, uid, ok := parseMessageID(mid)
	notFound := errorf(http.StatusNotFound, "mid", "no message %q (GET .../messages lists them)", mid)
	if !ok {
		return nil, mailstore.Message{}, "", "", notFound
	}
	u, err := l.Store.UserByAddress(account)
	if err != nil {
		return nil, mailstore.Message{}, "", "", notFound
	}
	mb, err := u.Mailbox(mailbox)
	if err != nil {
		return nil, mailstore.Message{}, "", "", notFound
	}
	msg, err := mb.Message(uid)
	if err != nil {
		return nil, mailstore.Message{}, "", "", notFound
	}
	return mb, msg, account, mailbox, nil
}

// header is one header field, in message order.
type header struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

type attachment struct {
	Filename    string `json:"filename"`
	ContentType string `json:"content_type"`
	Size        int64  `json:"size"`
}

// messageView is a parsed message. Text and HTML are what the message
// holds, undecorated: a consumer must treat HTML as hostile.
type messageView struct {
	messageSummary
	Headers     []header     `json:"headers"`
	Text        []string     `json:"text"`
	HTML        []string     `json:"html"`
	Attachments []attachment `json:"attachments"`
	// ParseError says where MIME parsing stopped, if it did.
	ParseError string `json:"parse_error,omitempty"`
}

func (s *Server) getMessage(w http.ResponseWriter, r *http.Request) error {
	_, msg, account, mailbox, err := s.lookupMessage(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, parseMessage(account, mailbox, msg))
	return nil
}

// parseMessage walks the MIME tree with go-message: inline text/plain and
// text/html parts become text and HTML; other parts are attachments.
func parseMessage(account, mailbox string, msg mailstore.Message) messageView {
	v := messageView{messageSummary: summarize(account, mailbox, msg), Headers: []header{}, Text: []string{}, HTML: []string{}, Attachments: []attachment{}}
	mr, err := mail.CreateReader(bytes.NewReader(msg.Data))
	if mr == nil {
		v.ParseError = err.Error()
		return v
	}
	fields := mr.Header.Fields()
	for fields.Next() {
		val, err := fields.Text()
		if err != nil {
			val = fields.Value()
		}
		v.Headers = append(v.Headers, header{Name: fields.Key(), Value: val})
	}
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			v.ParseError = err.Error()
			break
		}
		switch h := p.Header.(type) {
		case *mail.InlineHeader:
			ct, _, _ := h.ContentType()
			if ct == "" {
				ct = "text/plain"
			}
			if ct == "text/plain" || ct == "text/html" {
				body, err := io.ReadAll(io.LimitReader(p.Body, maxPartText))
				if err != nil && v.ParseError == "" {
					v.ParseError = err.Error()
				}
				if ct == "text/plain" {
					v.Text = append(v.Text, string(body))
				} else {
					v.HTML = append(v.HTML, string(body))
				}
				continue
			}
			n, _ := io.Copy(io.Discard, p.Body)
			v.Attachments = append(v.Attachments, attachment{ContentType: ct, Size: n})
		case *mail.AttachmentHeader:
			name, _ := h.Filename()
			ct, _, _ := h.ContentType()
			n, _ := io.Copy(io.Discard, p.Body)
			v.Attachments = append(v.Attachments, attachment{Filename: name, ContentType: ct, Size: n})
		}
	}
	return v
}

func (s *Server) rawMessage(w http.ResponseWriter, r *http.Request) error {
	_, msg, _, _, err := s.lookupMessage(r)
	if err != nil {
		return err
	}
	// message/rfc822 with attachment disposition: a browser downloads it
	// instead of rendering hostile content.
	w.Header().Set("Content-Type", "message/rfc822")
	w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": fmt.Sprintf("%d.eml", msg.UID)}))
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Write(msg.Data)
	return nil
}

func (s *Server) deleteMessage(w http.ResponseWriter, r *http.Request) error {
	mb, msg, _, _, err := s.lookupMessage(r)
	if err != nil {
		return err
	}
	if _, err := mb.Expunge([]uint32{msg.UID}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// clearMessages removes every message of every account of the lab.
func (s *Server) clearMessages(w http.ResponseWriter, r *http.Request) error {
	_, l, err := s.runningLab(r)
	if err != nil {
		return err
	}
	removed := 0
	for _, u := range l.Store.Users() {
		for _, name := range u.Mailboxes() {
			mb, err := u.Mailbox(name)
			if err != nil {
				continue
			}
			var uids []uint32
			for _, m := range mb.Messages() {
				uids = append(uids, m.UID)
			}
			if len(uids) == 0 {
				continue
			}
			gone, err := mb.Expunge(uids)
			if err != nil {
				return err
			}
			removed += len(gone)
		}
	}
	writeJSON(w, http.StatusOK, map[string]int{"removed": removed})
	return nil
}
