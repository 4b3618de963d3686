package faults

// The weak-certificate fault: a certificate with a small RSA key and a
// SHA-1 signature, which current clients refuse (OpenSSL at security level
// 2: "ee key too small" / "ca md too weak"; Go: "insecure algorithm").

import (
	"crypto/x509"
	"fmt"

	"github.com/maillab/maillab/lab"
	"github.com/maillab/maillab/servers/pki"
)

type weakParams struct {
	// Key is rsa-1024 (weak) or ecdsa-p256.
	Key string `yaml:"key"`
	// Signature is sha1 (weak) or sha256.
	Signature string `yaml:"signature"`
}

func (p *weakParams) validate() error {
	if p.Key != "rsa-1024" && p.Key != "ecdsa-p256" {
		return fmt.Errorf("key %q: valid: rsa-1024, ecdsa-p256", p.Key)
	}
	if p.Signature != "sha1" && p.Signature != "sha256" {
		return fmt.Errorf("signature %q: valid: sha1, sha256", p.Signature)
	}
	if p.Key != "rsa-1024" && p.Signature != "sha1" {
		return fmt.Errorf("nothing weak: choose key rsa-1024 or signature sha1")
	}
	return nil
}

func init() {
	Register(Definition{
		Name:    "weak-certificate",
		Summary: "the server's certificate has an RSA-1024 key and a SHA-1 signature (both adjustable)",
		Layer:   LayerTLS,
		TLSOnly: true,
		Params:  func() any { return &weakParams{Key: "rsa-1024", Signature: "sha1"} },
		Apply: func(l *lab.Lab, sel *Selection, p any) error {
			params := p.(*weakParams)
			spec := labLeafSpec(l)
			if params.Key == "rsa-1024" {
				spec.Key = pki.KeyRSA1024
			}
			if params.Signature == "sha1" {
				// The lab CA's key is ECDSA, so SHA-1 means ECDSA-with-SHA1.
				spec.SignatureAlgorithm = x509.ECDSAWithSHA1
			}
			leaf, err := l.CA.Issue(spec)
			if err != nil {
				return err
			}
			presentCertificate(sel, leaf)
			return nil
		},
	})
}
