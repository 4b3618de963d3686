package faults

import (
	"slices"
	"testing"
)

func TestAttachmentNames(t *testing.T) {
	tests := []struct {
		name string
		msg  string
		want []string
	}{
		{"plain", "Subject: x\r\n\r\nhello\r\n", nil},
		{"disposition filename", "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"invoice.exe\"\r\n\r\nMZ\r\n--b--\r\n", []string{"invoice.exe"}},
		{"content-type name", "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: application/javascript; name=run.js\r\n\r\nx\r\n--b--\r\n", []string{"run.js"}},
		{"nested", "Content-Type: multipart/mixed; boundary=o\r\n\r\n--o\r\nContent-Type: multipart/mixed; boundary=i\r\n\r\n--i\r\nContent-Disposition: attachment; filename=a.pdf\r\n\r\nx\r\n--i--\r\n--o\r\nContent-Disposition: attachment; filename=b.scr\r\n\r\ny\r\n--o--\r\n", []string{"a.pdf", "b.scr"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := attachmentNames([]byte(tt.msg)); !slices.Equal(got, tt.want) {
				t.Errorf("attachmentNames = %v, want %v", got, tt.want)
			}
		})
	}
}

func FuzzAttachmentNames(f *testing.F) {
	f.Add([]byte("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Disposition: attachment; filename=x.exe\r\n\r\nMZ\r\n--b--\r\n"))
	f.Fuzz(func(t *testing.T, msg []byte) { attachmentNames(msg) })
}
