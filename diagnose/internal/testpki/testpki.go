// Package testpki makes certificates for the diagnoser's tests: roots,
// intermediates and leaves that are expired, not yet valid, self-signed,
// weak, misnamed or carry an AIA URL. It is test support, not API.
package testpki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"
)

// CA is a certificate authority.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// PEM returns the CA certificate in PEM form.
func (ca *CA) PEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Cert.Raw})
}

// Pool returns a pool holding only this CA.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// Opts shape a certificate. Zero values give a valid ECDSA P-256 SHA-256
// certificate valid from an hour ago for a year.
type Opts struct {
	Subject   pkix.Name
	Names     []string // DNS names and IP literals
	NotBefore time.Time
	NotAfter  time.Time
	RSABits   int  // 0: ECDSA P-256
	SHA1      bool // sign with SHA1WithRSA (the issuer must be RSA)
	AIA       []string
}

var (
	rsaMu   sync.Mutex
	rsaKeys = map[int]*rsa.PrivateKey{}
)

// rsaKey returns one RSA key per size per process: generation is slow.
func rsaKey(t testing.TB, bits int) *rsa.PrivateKey {
	rsaMu.Lock()
	defer rsaMu.Unlock()
	if k, ok := rsaKeys[bits]; ok {
		return k
	}
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatal(err)
	}
	rsaKeys[bits] = k
	return k
}

func newKey(t testing.TB, rsaBits int) crypto.Signer {
	if rsaBits > 0 {
		return rsaKey(t, rsaBits)
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

var serial = big.NewInt(1000)
var serialMu sync.Mutex

func nextSerial() *big.Int {
	serialMu.Lock()
	defer serialMu.Unlock()
	serial = new(big.Int).Add(serial, big.NewInt(1))
	return new(big.Int).Set(serial)
}

func template(o Opts, isCA bool) *x509.Certificate {
	nb, na := o.NotBefore, o.NotAfter
	if nb.IsZero() {
		nb = time.Now().Add(-time.Hour)
	}
	if na.IsZero() {
		na = time.Now().Add(365 * 24 * time.Hour)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          nextSerial(),
		Subject:               o.Subject,
		NotBefore:             nb,
		NotAfter:              na,
		BasicConstraintsValid: true,
		IsCA:                  isCA,
		IssuingCertificateURL: o.AIA,
	}
	if isCA {
		tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature
	} else {
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	}
	for _, n := range o.Names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	if o.SHA1 {
		tmpl.SignatureAlgorithm = x509.SHA1WithRSA
	}
	return tmpl
}

func create(t testing.TB, tmpl, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) *x509.Certificate {
	t.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		t.Fatalf("create certificate %q: %v", tmpl.Subject.CommonName, err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// NewRoot returns a self-signed root CA named cn.
func NewRoot(t testing.TB, cn string, o Opts) *CA {
	t.Helper()
	if o.Subject.CommonName == "" {
		o.Subject = pkix.Name{CommonName: cn, Organization: []string{"maillab tests"}}
	}
	key := newKey(t, o.RSABits)
	tmpl := template(o, true)
	return &CA{Cert: create(t, tmpl, tmpl, key.Public(), key), Key: key}
}

// Intermediate returns a CA named cn signed by ca.
func (ca *CA) Intermediate(t testing.TB, cn string, o Opts) *CA {
	t.Helper()
	if o.Subject.CommonName == "" {
		o.Subject = pkix.Name{CommonName: cn, Organization: []string{"maillab tests"}}
	}
	key := newKey(t, o.RSABits)
	return &CA{Cert: create(t, template(o, true), ca.Cert, key.Public(), ca.Key), Key: key}
}

// Leaf is a server certificate with its key.
type Leaf struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// Leaf returns a server certificate signed by ca.
func (ca *CA) Leaf(t testing.TB, o Opts) *Leaf {
	t.Helper()
	if o.Subject.CommonName == "" && len(o.Names) > 0 {
		o.Subject = pkix.Name{CommonName: o.Names[0]}
	}
	key := newKey(t, o.RSABits)
	return &Leaf{Cert: create(t, template(o, false), ca.Cert, key.Public(), ca.Key), Key: key}
}

// SelfSigned returns a self-signed server certificate.
func SelfSigned(t testing.TB, o Opts) *Leaf {
	t.Helper()
	if o.Subject.CommonName == "" && len(o.Names) > 0 {
		o.Subject = pkix.Name{CommonName: o.Names[0]}
	}
	key := newKey(t, o.RSABits)
	tmpl := template(o, false)
	return &Leaf{Cert: create(t, tmpl, tmpl, key.Public(), key), Key: key}
}

// TLS returns a tls.Certificate that sends the leaf followed by extra
// (intermediates, or a root to send the whole chain).
func (l *Leaf) TLS(extra ...*CA) tls.Certificate {
	c := tls.Certificate{Certificate: [][]byte{l.Cert.Raw}, PrivateKey: l.Key, Leaf: l.Cert}
	for _, ca := range extra {
		c.Certificate = append(c.Certificate, ca.Cert.Raw)
	}
	return c
}

// Chain returns the parsed chain as a server sends it.
func (l *Leaf) Chain(extra ...*CA) []*x509.Certificate {
	out := []*x509.Certificate{l.Cert}
	for _, ca := range extra {
		out = append(out, ca.Cert)
	}
	return out
}
