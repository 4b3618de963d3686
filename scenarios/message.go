package scenarios

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"mime"
	"strings"
	"time"
)

// BuildMessage makes an RFC 5322 message from from to to, with an
// attachment of the given name (none if empty), padded so that the whole
// message is about size octets (0: no padding).
func BuildMessage(from, to, attachment string, size int) []byte {
	var b bytes.Buffer
	boundary := "maillab-boundary-42"
	fmt.Fprintf(&b, "From: %s\r\nTo: %s\r\nSubject: Quarterly figures\r\nDate: %s\r\nMessage-ID: <customer-message@maillab>\r\nMIME-Version: 1.0\r\n",
		from, to, time.Now().UTC().Format(time.RFC1123Z))
	body := "Hello,\r\n\r\nplease find the file attached.\r\n\r\nRegards\r\n"
	if attachment == "" && size == 0 {
		fmt.Fprintf(&b, "Content-Type: text/plain; charset=utf-8\r\n\r\n%s", body)
		return b.Bytes()
	}
	name := attachment
	if name == "" {
		name = "figures.pdf"
	}
	fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=%q\r\n\r\n", boundary)
	fmt.Fprintf(&b, "--%s\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n%s\r\n", boundary, body)
	ctype := mime.TypeByExtension(name[strings.LastIndex(name, "."):])
	if ctype == "" || !strings.Contains(name, ".") {
		ctype = "application/octet-stream"
	}
	fmt.Fprintf(&b, "--%s\r\nContent-Type: %s; name=%q\r\nContent-Disposition: attachment; filename=%q\r\nContent-Transfer-Encoding: base64\r\n\r\n",
		boundary, ctype, name, name)
	// Pad the attachment so the message reaches size; base64 grows 4/3
	// and adds CRLF every 76 characters.
	raw := 1024
	if size > 0 {
		if rest := size - b.Len() - 64; rest > 0 {
			raw = rest * 57 / 78
		}
	}
	content := bytes.Repeat([]byte("maillab test attachment content. "), raw/33+1)[:raw]
	enc := base64.StdEncoding.EncodeToString(content)
	for len(enc) > 76 {
		b.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	b.WriteString(enc + "\r\n")
	fmt.Fprintf(&b, "--%s--\r\n", boundary)
	return b.Bytes()
}
