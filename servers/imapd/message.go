package imapd

import (
	"bufio"
	"bytes"
	"io"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	gomessage "github.com/emersion/go-message"
	"github.com/emersion/go-message/textproto"
)

// This file derives FETCH data from the raw bytes of a stored message.
// Messages come from any client (SMTP, APPEND) and may be malformed; every
// function here returns something a client can parse, never fails, and is
// fuzzed (FuzzMessage).

// maxMIMEDepth bounds the nesting of multiparts walked by SEARCH.
const maxMIMEDepth = 32

// readHeader parses the header of a message; a malformed header yields the
// fields read before the error.
func readHeader(data []byte) (textproto.Header, *bufio.Reader) {
	br := bufio.NewReader(bytes.NewReader(data))
	h, _ := textproto.ReadHeader(br)
	return h, br
}

// envelope returns the ENVELOPE of a message (RFC 3501 §7.4.2).
func envelope(data []byte) *imap.Envelope {
	h, _ := readHeader(data)
	return imapserver.ExtractEnvelope(h)
}

// bodyStructure returns the BODYSTRUCTURE of a message (RFC 3501 §7.4.2),
// repaired where go-imap's extraction would produce what the grammar
// forbids: a part without a media type, or a multipart without parts
// (an unparsable boundary), which is shown as the text/plain it would be
// to a MIME reader (RFC 2046 §5.1.1 leaves it undefined).
func bodyStructure(data []byte) imap.BodyStructure {
	bs := imapserver.ExtractBodyStructure(bytes.NewReader(data))
	_, br := readHeader(data)
	body, _ := io.ReadAll(br)
	return repairStructure(bs, body)
}

func repairStructure(bs imap.BodyStructure, body []byte) imap.BodyStructure {
	switch bs := bs.(type) {
	case *imap.BodyStructureMultiPart:
		if len(bs.Children) == 0 {
			return &imap.BodyStructureSinglePart{
				Type: "text", Subtype: "plain",
				Params:   map[string]string{"charset": "us-ascii"},
				Size:     uint32(len(body)),
				Text:     &imap.BodyStructureText{NumLines: int64(bytes.Count(body, []byte("\n")))},
				Extended: &imap.BodyStructureSinglePartExt{},
			}
		}
		if bs.Subtype == "" {
			bs.Subtype = "mixed"
		}
		for i, child := range bs.Children {
			bs.Children[i] = repairStructure(child, nil)
		}
		if bs.Extended == nil {
			bs.Extended = &imap.BodyStructureMultiPartExt{}
		}
	case *imap.BodyStructureSinglePart:
		if bs.Type == "" || bs.Subtype == "" {
			bs.Type, bs.Subtype = "text", "plain"
			if bs.Text == nil {
				bs.Text = &imap.BodyStructureText{}
			}
		}
		if bs.Extended == nil {
			bs.Extended = &imap.BodyStructureSinglePartExt{}
		}
		if bs.MessageRFC822 != nil {
			if bs.MessageRFC822.Envelope == nil {
				bs.MessageRFC822.Envelope = &imap.Envelope{}
			}
			bs.MessageRFC822.BodyStructure = repairStructure(bs.MessageRFC822.BodyStructure, nil)
		}
	case nil:
		return repairStructure(&imap.BodyStructureSinglePart{}, body)
	}
	return bs
}

// bodySection returns a BODY[...] section (RFC 3501 §6.4.5). The whole
// message is returned as stored, even when its header cannot be parsed.
func bodySection(data []byte, sec *imap.FetchItemBodySection) []byte {
	if len(sec.Part) == 0 && sec.Specifier == imap.PartSpecifierNone {
		return partial(data, sec.Partial)
	}
	return imapserver.ExtractBodySection(bytes.NewReader(data), sec)
}

// partial applies a <offset.size> partial (RFC 3501 §6.4.5).
func partial(b []byte, p *imap.SectionPartial) []byte {
	if p == nil {
		return b
	}
	if p.Offset < 0 || p.Offset > int64(len(b)) {
		return nil
	}
	end := int64(len(b))
	if p.Size >= 0 && p.Size < end-p.Offset {
		end = p.Offset + p.Size
	}
	return b[p.Offset:end]
}

// knownEncodings are the Content-Transfer-Encodings BINARY can decode
// (RFC 2045 §6.1).
var knownEncodings = map[string]bool{"": true, "7bit": true, "8bit": true, "binary": true, "quoted-printable": true, "base64": true}

// errUnknownCTE answers BINARY for a part whose encoding the server
// cannot decode (RFC 3516 §4.3).
var errUnknownCTE = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeUnknownCTE,
	Text: "Unknown Content-Transfer-Encoding"}

// binarySection returns a BINARY[part] section: the part with its
// transfer encoding removed (RFC 3516 §4.2).
func binarySection(data []byte, part []int, p *imap.SectionPartial) ([]byte, error) {
	if err := checkEncoding(data, part); err != nil {
		return nil, err
	}
	return imapserver.ExtractBinarySection(bytes.NewReader(data), &imap.FetchItemBinarySection{Part: part, Partial: p}), nil
}

// binarySize returns BINARY.SIZE[part] (RFC 3516 §4.2).
func binarySize(data []byte, part []int) (uint32, error) {
	if err := checkEncoding(data, part); err != nil {
		return 0, err
	}
	return imapserver.ExtractBinarySectionSize(bytes.NewReader(data), &imap.FetchItemBinarySectionSize{Part: part}), nil
}

func checkEncoding(data []byte, part []int) error {
	var h textproto.Header
	if len(part) == 0 {
		h, _ = readHeader(data)
	} else {
		mime := imapserver.ExtractBodySection(bytes.NewReader(data), &imap.FetchItemBodySection{Part: part, Specifier: imap.PartSpecifierMIME})
		h, _ = readHeader(mime)
	}
	if !knownEncodings[strings.ToLower(strings.TrimSpace(h.Get("Content-Transfer-Encoding")))] {
		return errUnknownCTE
	}
	return nil
}

// texts returns the decoded header fields and the decoded text of the
// body parts of a message, for SEARCH HEADER, BODY and TEXT (RFC 3501
// §6.4.4). Parts that are not text are skipped; a message that is not
// MIME at all is searched as stored.
func texts(data []byte) (header gomessage.Header, body []byte) {
	// An unknown charset or encoding still yields an entity to read
	// (undecoded); only an unparsable header yields none.
	e, _ := gomessage.Read(bytes.NewReader(data))
	if e == nil {
		h, br := readHeader(data)
		raw, _ := io.ReadAll(br)
		return gomessage.Header{Header: h}, raw
	}
	var buf bytes.Buffer
	collectText(e, &buf, 0)
	return e.Header, buf.Bytes()
}

func collectText(e *gomessage.Entity, buf *bytes.Buffer, depth int) {
	if depth > maxMIMEDepth {
		return
	}
	if mr := e.MultipartReader(); mr != nil {
		for {
			p, _ := mr.NextPart()
			if p == nil {
				return // io.EOF, or a part that cannot be read
			}
			collectText(p, buf, depth+1)
		}
	}
	t, _, _ := e.Header.ContentType()
	if t != "" && !strings.HasPrefix(t, "text/") && !strings.HasPrefix(t, "message/") {
		return
	}
	io.Copy(buf, e.Body)
	buf.WriteByte('\n')
}
