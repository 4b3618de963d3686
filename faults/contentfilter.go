package faults

// The content-filter fault: the SMTP server refuses messages with
// executable attachments, as mail gateways do.

import (
	"bytes"
	"context"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/emersion/go-message"
	"github.com/emersion/go-smtp"

	"github.com/maillab/maillab/lab"
	"github.com/maillab/maillab/servers/smtpd"
)

type contentFilterParams struct {
	// Extensions are the refused attachment file types.
	Extensions []string `yaml:"extensions"`
}

// attachmentNames lists the file names of a message's parts.
func attachmentNames(msg []byte) []string {
	e, err := message.Read(bytes.NewReader(msg))
	if err != nil && !message.IsUnknownCharset(err) && !message.IsUnknownEncoding(err) {
		return nil
	}
	var names []string
	e.Walk(func(_ []int, part *message.Entity, err error) error {
		if err != nil {
			return nil
		}
		if _, params, err := part.Header.ContentDisposition(); err == nil && params["filename"] != "" {
			names = append(names, params["filename"])
		} else if _, params, err := part.Header.ContentType(); err == nil && params["name"] != "" {
			names = append(names, params["name"])
		}
		return nil
	})
	return names
}

func init() {
	Register(Definition{
		Name:      "content-filter",
		Summary:   "the SMTP server refuses messages with executable attachments: 550 5.7.1",
		Layer:     LayerPolicy,
		Protocols: []string{"smtp"},
		Params: func() any {
			return &contentFilterParams{Extensions: []string{"exe", "scr", "bat", "cmd", "com", "pif", "js", "vbs", "msi", "jar"}}
		},
		Apply: func(l *lab.Lab, sel *Selection, p any) error {
			exts := p.(*contentFilterParams).Extensions
			l.SMTPChecks = append(l.SMTPChecks, smtpd.CheckFuncs{
				Data: func(ctx context.Context, env *smtpd.Envelope, msg []byte) error {
					if !sel.Has(env.Service) {
						return nil
					}
					for _, name := range attachmentNames(msg) {
						ext := strings.ToLower(strings.TrimPrefix(path.Ext(name), "."))
						if slices.Contains(exts, ext) {
							return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1},
								Message: fmt.Sprintf("Message content rejected: executable attachment %q (.%s) is not allowed", name, ext)}
						}
					}
					return nil
				},
			})
			return nil
		},
	})
}
