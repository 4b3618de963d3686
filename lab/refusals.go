package lab

import (
	"context"
	"time"

	"github.com/maillab/maillab/servers/auth"
	"github.com/maillab/maillab/servers/mailstore"
	"github.com/maillab/maillab/servers/transcript"
)

// RefusalPrefix starts the transcript note of a refused login, e.g.
// "login refused: account temporarily locked: try again in 15 minutes".
const RefusalPrefix = "login refused: "

// noteRefusals is the outermost authentication middleware: it notes every
// refused login, with the reason the policies gave, in the transcript
// (the wire reply alone often hides it, e.g. a lockout behind 535).
func (l *Lab) noteRefusals(next auth.Authenticator) auth.Authenticator {
	return auth.Func(func(ctx context.Context, req *auth.Request) (*mailstore.User, error) {
		u, err := next.Authenticate(ctx, req)
		if auth.KindOf(err) != 0 {
			remote := ""
			if req.Remote != nil {
				remote = req.Remote.String()
			}
			l.sink.Record(transcript.Entry{Time: time.Now(), Service: req.Service, Remote: remote, Dir: transcript.Event, Text: RefusalPrefix + err.Error()})
		}
		return u, err
	})
}
