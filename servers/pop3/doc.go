// Package pop3 is a POP3 server library: RFC 1939 (the base protocol),
// RFC 2449 (CAPA, response codes, PIPELINING), RFC 3206 (the AUTH and SYS
// response codes), RFC 2595 §4 (STLS) and RFC 5034 (SASL AUTH).
//
// It is shaped like github.com/emersion/go-smtp's server: a Server speaks the
// protocol and a Backend supplies one Session per connection, which logs the
// user in, lists the maildrop, hands out message contents and applies
// deletions. Optional capabilities are extra interfaces found by type
// assertion (AuthSession adds SASL mechanisms), and protocol failures are
// typed errors (*Error) that carry the wire response code.
//
// A minimal server:
//
//	srv := &pop3.Server{
//		Backend:   pop3.BackendFunc(func(c *pop3.Conn) (pop3.Session, error) { return newSession(c), nil }),
//		Hostname:  "mail.example.test",
//		TLSConfig: tlsConfig, // enables STLS
//	}
//	ln, _ := net.Listen("tcp", "127.0.0.1:110")
//	go srv.Serve(ln)                          // port 110 style: plaintext, STLS
//	go srv.Serve(tls.NewListener(ln995, cfg)) // port 995 style: implicit TLS
//	defer srv.Close()
//
// The package has no dependency on the rest of maillab and can be used by any
// program that needs a small, strict POP3 server.
package pop3
