package faults

// The tls-interception fault: a proxy between client and server (an
// antivirus "mail shield", a corporate TLS-inspection firewall) terminates
// TLS with a certificate it mints on the fly for the same names, signed by
// its own root, and talks TLS to the real server itself. A client that does
// not trust that root sees the server's name with a foreign issuer. On
// STARTTLS ports the proxy relays the plaintext phase and intercepts after
// the upgrade, as mail shields do.

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/maillab/maillab/lab"
	"github.com/maillab/maillab/servers/pki"
	"github.com/maillab/maillab/servers/transcript"
)

type interceptionParams struct {
	// Issuer is the common name of the proxy's root.
	Issuer string `yaml:"issuer"`
	// Organization of the proxy's root.
	Organization string `yaml:"organization"`
}

type interceptor struct {
	svc   *lab.Service
	ca    *pki.CA
	roots *x509.CertPool

	mu     sync.Mutex
	forged map[string]*tls.Certificate // by the real leaf's fingerprint
}

// forge mints the proxy's copy of the real server certificate: same
// subject and names, the proxy's issuer, fresh validity (as products do).
func (m *interceptor) forge(real *x509.Certificate) (*tls.Certificate, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	key := string(real.Raw)
	if c, ok := m.forged[key]; ok {
		return c, nil
	}
	leaf, err := m.ca.Issue(pki.LeafSpec{
		CommonName:   real.Subject.CommonName,
		DNSNames:     real.DNSNames,
		IPs:          real.IPAddresses,
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().AddDate(1, 0, 0),
		Organization: firstOr(real.Subject.Organization, ""),
	})
	if err != nil {
		return nil, err
	}
	c := leaf.TLSCertificate()
	m.forged[key] = &c
	return &c, nil
}

func firstOr(s []string, def string) string {
	if len(s) > 0 {
		return s[0]
	}
	return def
}

// intercept terminates TLS on both sides.
func (m *interceptor) intercept(client, server net.Conn, ts *transcript.Session) (net.Conn, net.Conn, error) {
	up := tls.Client(server, &tls.Config{RootCAs: m.roots, ServerName: m.svc.Host})
	up.SetDeadline(time.Now().Add(10 * time.Second))
	if err := up.Handshake(); err != nil {
		return nil, nil, fmt.Errorf("proxy to server: %w", err)
	}
	up.SetDeadline(time.Time{})
	cert, err := m.forge(up.ConnectionState().PeerCertificates[0])
	if err != nil {
		return nil, nil, err
	}
	down := tls.Server(client, &tls.Config{Certificates: []tls.Certificate{*cert}, MinVersion: tls.VersionTLS12})
	down.SetDeadline(time.Now().Add(10 * time.Second))
	if err := down.Handshake(); err != nil {
		ts.Eventf("fault tls-interception: client refused the proxy's certificate: %v", err)
		return nil, nil, err
	}
	down.SetDeadline(time.Time{})
	ts.Eventf("fault tls-interception: TLS re-signed by %q; the proxy reads the session", m.ca.Cert.Subject.CommonName)
	return down, up, nil
}

func (m *interceptor) Serve(client net.Conn, ts *transcript.Session, dial func() (net.Conn, error)) {
	server, err := dial()
	if err != nil {
		ts.Eventf("fault tls-interception: cannot reach the server: %v", err)
		client.Close()
		return
	}
	if m.svc.TLS() {
		c, s, err := m.intercept(client, server, ts)
		if err != nil {
			client.Close()
			server.Close()
			return
		}
		pipe(c, s)
		return
	}
	r := &lineRelay{proto: m.svc.Protocol, ts: ts, name: "tls-interception"}
	r.upgrade = func(c, s net.Conn) (net.Conn, net.Conn, error) { return m.intercept(c, s, ts) }
	r.serve(client, server)
}

func init() {
	Register(Definition{
		Name:    "tls-interception",
		Summary: "a TLS-inspecting proxy re-signs the server's certificate with its own root (antivirus mail shield / inspection firewall style issuer)",
		Layer:   LayerTLS,
		TLSOnly: true,
		Params: func() any {
			return &interceptionParams{
				Issuer:       "Mail Shield Root (generated for SSL/TLS scanning)",
				Organization: "Antivirus Web/Mail Shield",
			}
		},
		Apply: func(l *lab.Lab, sel *Selection, p any) error {
			params := p.(*interceptionParams)
			ca, err := pki.NewCA(params.Issuer, pki.CAOptions{Organization: params.Organization})
			if err != nil {
				return err
			}
			for _, svc := range sel.Services {
				svc.Middlebox = &interceptor{svc: svc, ca: ca, roots: l.CertPool(), forged: map[string]*tls.Certificate{}}
			}
			return nil
		},
	})
}
