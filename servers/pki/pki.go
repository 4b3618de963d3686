// Package pki makes the lab's throw-away certificate authority and the
// certificates its servers present: the good one and the deliberately
// broken ones (expired, not yet valid, self-signed, untrusted, missing
// intermediate, wrong name, weak). Nothing here is ever written to the
// repository; every lab run makes fresh keys.
package pki

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"sync"
	"time"
)

// KeyType selects the key algorithm of a certificate.
type KeyType int

// Key types. The zero value is ECDSA P-256, the lab's default.
const (
	KeyECDSAP256 KeyType = iota
	KeyRSA2048
	// KeyRSA1024 is too weak for modern clients (OpenSSL at security level
	// 2 refuses it with "ee key too small"). Go accepts 1024-bit keys; only
	// keys under 1024 bits need GODEBUG=rsa1024min=0, which the lab never
	// uses.
	KeyRSA1024
)

func (k KeyType) String() string {
	switch k {
	case KeyRSA2048:
		return "RSA-2048"
	case KeyRSA1024:
		return "RSA-1024"
	}
	return "ECDSA-P256"
}

// RSA keys are slow to make (tens of milliseconds), so each size is made
// once per process and shared by every certificate that asks for it.
var (
	rsaMu   sync.Mutex
	rsaKeys = map[int]*rsa.PrivateKey{}
)

func rsaKey(bits int) (*rsa.PrivateKey, error) {
	rsaMu.Lock()
	defer rsaMu.Unlock()
	if k, ok := rsaKeys[bits]; ok {
		return k, nil
	}
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		return nil, err
	}
	rsaKeys[bits] = k
	return k, nil
}

func newKey(t KeyType) (crypto.Signer, error) {
	switch t {
	case KeyRSA2048:
		return rsaKey(2048)
	case KeyRSA1024:
		return rsaKey(1024)
	}
	return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
}

func serial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
}

func subjectKeyID(pub crypto.PublicKey) []byte {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil
	}
	sum := sha1.Sum(der) // RFC 5280 §4.2.1.2 method (1); not a security use
	return sum[:]
}

// CA is a certificate authority: a root or an intermediate.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// CAOptions configures NewCA. The zero value makes an ECDSA P-256 root
// valid from an hour ago for ten years.
type CAOptions struct {
	Organization string
	NotBefore    time.Time
	NotAfter     time.Time
}

// NewCA makes a self-signed root CA named commonName.
func NewCA(commonName string, opts CAOptions) (*CA, error) {
	key, err := newKey(KeyECDSAP256)
	if err != nil {
		return nil, err
	}
	tmpl, err := caTemplate(commonName, opts)
	if err != nil {
		return nil, err
	}
	tmpl.SubjectKeyId = subjectKeyID(key.Public())
	cert, err := create(tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("create CA %q: %w", commonName, err)
	}
	return &CA{Cert: cert, Key: key}, nil
}

// create signs tmpl with parent's key and parses the result.
func create(tmpl, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) (*x509.Certificate, error) {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

func caTemplate(commonName string, opts CAOptions) (*x509.Certificate, error) {
	sn, err := serial()
	if err != nil {
		return nil, err
	}
	nb, na := opts.NotBefore, opts.NotAfter
	if nb.IsZero() {
		nb = time.Now().Add(-time.Hour)
	}
	if na.IsZero() {
		na = nb.AddDate(10, 0, 0)
	}
	name := pkix.Name{CommonName: commonName}
	if opts.Organization != "" {
		name.Organization = []string{opts.Organization}
	}
	return &x509.Certificate{
		SerialNumber:          sn,
		Subject:               name,
		NotBefore:             nb,
		NotAfter:              na,
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}, nil
}

// NewIntermediate makes a CA signed by ca.
func (ca *CA) NewIntermediate(commonName string, opts CAOptions) (*CA, error) {
	key, err := newKey(KeyECDSAP256)
	if err != nil {
		return nil, err
	}
	tmpl, err := caTemplate(commonName, opts)
	if err != nil {
		return nil, err
	}
	tmpl.MaxPathLenZero = true
	tmpl.SubjectKeyId = subjectKeyID(key.Public())
	tmpl.AuthorityKeyId = ca.Cert.SubjectKeyId
	cert, err := create(tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return nil, fmt.Errorf("create intermediate %q: %w", commonName, err)
	}
	return &CA{Cert: cert, Key: key}, nil
}

// LeafSpec describes a server certificate. The zero value of each field
// picks the lab default.
type LeafSpec struct {
	// CommonName defaults to the first DNS name.
	CommonName string
	DNSNames   []string
	IPs        []net.IP
	// NotBefore defaults to an hour ago, NotAfter to NotBefore + 90 days.
	NotBefore time.Time
	NotAfter  time.Time
	Key       KeyType
	// SignatureAlgorithm overrides the issuer's default, e.g.
	// x509.ECDSAWithSHA1 for a SHA-1 signed (weak) certificate.
	SignatureAlgorithm x509.SignatureAlgorithm
	// IssuingCertificateURL is the AIA caIssuers URL (RFC 5280 §4.2.2.1)
	// where a client may fetch a missing intermediate.
	IssuingCertificateURL []string
	Organization          string
}

// Leaf is an issued end-entity certificate and its key.
type Leaf struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

func leafTemplate(spec LeafSpec, pub crypto.PublicKey) (*x509.Certificate, error) {
	sn, err := serial()
	if err != nil {
		return nil, err
	}
	nb, na := spec.NotBefore, spec.NotAfter
	if nb.IsZero() {
		nb = time.Now().Add(-time.Hour)
	}
	if na.IsZero() {
		na = nb.AddDate(0, 0, 90)
	}
	cn := spec.CommonName
	if cn == "" && len(spec.DNSNames) > 0 {
		cn = spec.DNSNames[0]
	}
	name := pkix.Name{CommonName: cn}
	if spec.Organization != "" {
		name.Organization = []string{spec.Organization}
	}
	usage := x509.KeyUsageDigitalSignature
	if _, ok := pub.(*rsa.PublicKey); ok {
		usage |= x509.KeyUsageKeyEncipherment
	}
	return &x509.Certificate{
		SerialNumber:          sn,
		Subject:               name,
		DNSNames:              spec.DNSNames,
		IPAddresses:           spec.IPs,
		NotBefore:             nb,
		NotAfter:              na,
		KeyUsage:              usage,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		SignatureAlgorithm:    spec.SignatureAlgorithm,
		IssuingCertificateURL: spec.IssuingCertificateURL,
		SubjectKeyId:          subjectKeyID(pub),
	}, nil
}

// Issue signs a leaf certificate.
func (ca *CA) Issue(spec LeafSpec) (*Leaf, error) {
	key, err := newKey(spec.Key)
	if err != nil {
		return nil, err
	}
	tmpl, err := leafTemplate(spec, key.Public())
	if err != nil {
		return nil, err
	}
	tmpl.AuthorityKeyId = ca.Cert.SubjectKeyId
	cert, err := create(tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return nil, fmt.Errorf("issue certificate for %v: %w", spec.DNSNames, err)
	}
	return &Leaf{Cert: cert, Key: key}, nil
}

// SelfSigned makes a leaf that signs itself, as a server's default
// "snakeoil" certificate does.
func SelfSigned(spec LeafSpec) (*Leaf, error) {
	key, err := newKey(spec.Key)
	if err != nil {
		return nil, err
	}
	tmpl, err := leafTemplate(spec, key.Public())
	if err != nil {
		return nil, err
	}
	cert, err := create(tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("self-sign certificate for %v: %w", spec.DNSNames, err)
	}
	return &Leaf{Cert: cert, Key: key}, nil
}

// TLSCertificate returns the certificate a server presents: the leaf
// followed by chain (intermediates, and a root if the server is
// misconfigured to send it).
func (l *Leaf) TLSCertificate(chain ...*x509.Certificate) tls.Certificate {
	c := tls.Certificate{
		Certificate: [][]byte{l.Cert.Raw},
		PrivateKey:  l.Key,
		Leaf:        l.Cert,
	}
	for _, ca := range chain {
		c.Certificate = append(c.Certificate, ca.Raw)
	}
	return c
}

// EncodePEM returns certificates as concatenated PEM blocks.
func EncodePEM(certs ...*x509.Certificate) []byte {
	var b bytes.Buffer
	for _, c := range certs {
		pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	return b.Bytes()
}

// WritePEM writes certificates to path (mode 0644: they are public).
func WritePEM(path string, certs ...*x509.Certificate) error {
	if len(certs) == 0 {
		return errors.New("write PEM: no certificates")
	}
	if err := os.WriteFile(path, EncodePEM(certs...), 0o644); err != nil {
		return fmt.Errorf("write PEM: %w", err)
	}
	return nil
}

// Pool returns a pool holding the given certificates.
func Pool(certs ...*x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range certs {
		p.AddCert(c)
	}
	return p
}
