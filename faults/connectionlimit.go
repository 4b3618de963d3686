package faults

// The connection-limit fault: the SMTP server allows only so many
// simultaneous connections from one client address and greets the others
// with "421 4.7.0 ... Error: too many connections from IP" (Postfix's
// smtpd_client_connection_count_limit), as happens when many devices of an
// office share one public address. With max_connections 0 every
// connection is over the limit (the others' devices hold them all).

import (
	"fmt"
	"net"

	"github.com/maillab/maillab/internal/netx"
	"github.com/maillab/maillab/lab"
	"github.com/maillab/maillab/servers/transcript"
)

type connectionLimitParams struct {
	MaxConnections int `yaml:"max_connections"`
}

func (p *connectionLimitParams) validate() error {
	if p.MaxConnections < 0 {
		return fmt.Errorf("max_connections must not be negative")
	}
	return nil
}

// refusedConn is a connection the limit turned away: the 421 greeting is
// written and the connection closed before the server sees it, so the
// server's reads and writes fail at once.
type refusedConn struct{ netx.Wrapped }

func (refusedConn) Read([]byte) (int, error)  { return 0, net.ErrClosed }
func (refusedConn) Write([]byte) (int, error) { return 0, net.ErrClosed }

func init() {
	Register(Definition{
		Name:      "connection-limit",
		Summary:   "SMTP greets connections over max_connections per client address with 421 4.7.0 too many connections",
		Layer:     LayerPolicy,
		Protocols: []string{"smtp"},
		PlainOnly: true,
		Params:    func() any { return &connectionLimitParams{} },
		Apply: func(l *lab.Lab, sel *Selection, p any) error {
			limit := p.(*connectionLimitParams).MaxConnections
			for _, svc := range sel.Services {
				// The same counting as the lab's own connection limits
				// (Options.MaxConnectionsPerClient), with a lower limit.
				limiter := netx.NewConnLimiter(limit, -1)
				host := svc.Provider.MailHost
				svc.ConnWrappers = append(svc.ConnWrappers, func(c net.Conn, ts *transcript.Session) net.Conn {
					counted, over := limiter.Admit(c)
					if over == nil {
						return counted
					}
					line := fmt.Sprintf("421 4.7.0 %s Error: too many connections from %s", host, over.Client)
					ts.Log(transcript.Server, line)
					ts.Eventf("fault connection-limit: %d connections from %s already open", limit, over.Client)
					c.Write([]byte(line + "\r\n"))
					c.Close()
					return refusedConn{netx.Wrapped{Conn: c}}
				})
			}
			return nil
		},
	})
}
