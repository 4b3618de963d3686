//go:build e2e

package realservers

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/maillab/maillab/servers/pki"
)

// Cert names one of the server certificates of a CertSet.
type Cert string

// The certificates a CertSet makes. Each names the test domain's mail
// hosts unless its name says otherwise.
const (
	// CertGood is issued by the test CA, valid now, for every mail host
	// and 127.0.0.1.
	CertGood Cert = "good"
	// CertExpired is issued by the test CA and expired a day ago.
	CertExpired Cert = "expired"
	// CertNotYetValid is issued by the test CA and becomes valid in 30 days.
	CertNotYetValid Cert = "not-yet-valid"
	// CertSelfSigned signs itself (a "snakeoil" certificate).
	CertSelfSigned Cert = "self-signed"
	// CertWrongName is issued by the test CA for www.<domain> only.
	CertWrongName Cert = "wrong-name"
	// CertUntrusted is issued by a second CA that clients do not trust;
	// the server sends that CA's root after the leaf.
	CertUntrusted Cert = "untrusted"
	// CertNoIntermediate is issued by an intermediate of the test CA, and
	// the server is given the leaf without the intermediate.
	CertNoIntermediate Cert = "no-intermediate"
	// CertWeak is issued by the test CA with an RSA-1024 key, which
	// OpenSSL at Debian's security level refuses to load: its servers
	// lower it (WeakTLSCipherList).
	CertWeak Cert = "weak"
)

// WeakTLSCipherList is the OpenSSL cipher list (Postfix
// tls_medium_cipherlist, Dovecot ssl_cipher_list) of a server that keeps
// an old certificate or old TLS versions working: security level 0, as
// admins set it when OpenSSL refuses "ee key too small" or TLS 1.0.
const WeakTLSCipherList = "DEFAULT:@SECLEVEL=0"

// AllCerts lists every Cert a CertSet makes.
var AllCerts = []Cert{CertGood, CertExpired, CertNotYetValid, CertSelfSigned, CertWrongName, CertUntrusted, CertNoIntermediate, CertWeak}

// CertSet is a test CA and the server certificates issued for one domain,
// written as PEM files that Dovecot and Postfix read.
type CertSet struct {
	// Domain is the mail domain, e.g. "realmail.test".
	Domain string
	// Hosts are the names the good certificate covers.
	Hosts []string
	// CA is the root clients trust.
	CA *pki.CA
	// CAFile is the PEM file of CA.
	CAFile string
	dir    string
	leaves map[Cert]*x509.Certificate
}

// NewCertSet makes the test CA and every certificate of AllCerts for
// hosts (the first is the main host name) under dir.
func NewCertSet(dir, domain string, hosts []string) (*CertSet, error) {
	now := time.Now()
	// The CAs predate every leaf they sign, as real ones do: a verifier
	// judging a leaf at a time within its validity must find its issuer
	// valid then too.
	caValidity := func(org string) pki.CAOptions {
		return pki.CAOptions{Organization: org, NotBefore: now.AddDate(-2, 0, 0), NotAfter: now.AddDate(8, 0, 0)}
	}
	ca, err := pki.NewCA("maillab e2e realservers CA", caValidity("maillab e2e"))
	if err != nil {
		return nil, err
	}
	other, err := pki.NewCA("Other Corp Private CA", caValidity("Other Corp"))
	if err != nil {
		return nil, err
	}
	inter, err := ca.NewIntermediate("maillab e2e realservers Intermediate", caValidity("maillab e2e"))
	if err != nil {
		return nil, err
	}
	s := &CertSet{Domain: domain, Hosts: hosts, CA: ca, CAFile: filepath.Join(dir, "ca.pem"), dir: dir, leaves: map[Cert]*x509.Certificate{}}
	if err := pki.WritePEM(s.CAFile, ca.Cert); err != nil {
		return nil, err
	}
	spec := pki.LeafSpec{DNSNames: hosts, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, Organization: "maillab e2e"}
	expired, notYet, wrong, weak := spec, spec, spec, spec
	weak.Key = pki.KeyRSA1024
	expired.NotBefore, expired.NotAfter = now.AddDate(0, 0, -90), now.AddDate(0, 0, -1)
	notYet.NotBefore, notYet.NotAfter = now.AddDate(0, 0, 30), now.AddDate(0, 0, 120)
	wrong.DNSNames, wrong.IPs = []string{"www." + domain}, nil
	// Servers are given their leaf alone (for CertNoIntermediate that is
	// the fault), except CertUntrusted: its server sends the private root
	// too, a complete chain that ends at a root the client does not trust.
	makers := map[Cert]func() (*pki.Leaf, error){
		CertGood:           func() (*pki.Leaf, error) { return ca.Issue(spec) },
		CertExpired:        func() (*pki.Leaf, error) { return ca.Issue(expired) },
		CertNotYetValid:    func() (*pki.Leaf, error) { return ca.Issue(notYet) },
		CertWrongName:      func() (*pki.Leaf, error) { return ca.Issue(wrong) },
		CertUntrusted:      func() (*pki.Leaf, error) { return other.Issue(spec) },
		CertNoIntermediate: func() (*pki.Leaf, error) { return inter.Issue(spec) },
		CertSelfSigned:     func() (*pki.Leaf, error) { return pki.SelfSigned(spec) },
		CertWeak:           func() (*pki.Leaf, error) { return ca.Issue(weak) },
	}
	for _, name := range AllCerts {
		leaf, err := makers[name]()
		if err != nil {
			return nil, fmt.Errorf("certificate %s: %w", name, err)
		}
		chain := []*x509.Certificate{leaf.Cert}
		if name == CertUntrusted {
			chain = append(chain, other.Cert)
		}
		if err := pki.WritePEM(s.CertFile(name), chain...); err != nil {
			return nil, err
		}
		der, err := x509.MarshalPKCS8PrivateKey(leaf.Key)
		if err != nil {
			return nil, fmt.Errorf("certificate %s: marshal key: %w", name, err)
		}
		key := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
		if err := os.WriteFile(s.KeyFile(name), key, 0o600); err != nil {
			return nil, fmt.Errorf("certificate %s: %w", name, err)
		}
		s.leaves[name] = leaf.Cert
	}
	return s, nil
}

// CertFile is the PEM file of the certificate chain the server presents.
func (s *CertSet) CertFile(c Cert) string { return filepath.Join(s.dir, string(c)+".crt") }

// KeyFile is the PEM file of the certificate's private key (mode 0600).
func (s *CertSet) KeyFile(c Cert) string { return filepath.Join(s.dir, string(c)+".key") }

// Leaf returns the parsed leaf certificate.
func (s *CertSet) Leaf(c Cert) *x509.Certificate { return s.leaves[c] }

// Pool returns a pool holding the test CA.
func (s *CertSet) Pool() *x509.CertPool { return pki.Pool(s.CA.Cert) }
