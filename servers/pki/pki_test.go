package pki_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/maillab/maillab/servers/pki"
)

func newCA(t *testing.T) *pki.CA {
	t.Helper()
	ca, err := pki.NewCA("maillab test CA", pki.CAOptions{Organization: "maillab"})
	if err != nil {
		t.Fatalf("NewCA() = %v", err)
	}
	return ca
}

func issue(t *testing.T, ca *pki.CA, spec pki.LeafSpec) *pki.Leaf {
	t.Helper()
	leaf, err := ca.Issue(spec)
	if err != nil {
		t.Fatalf("Issue(%+v) = %v", spec, err)
	}
	return leaf
}

func TestNewCA(t *testing.T) {
	now := time.Now()
	ca := newCA(t)
	c := ca.Cert
	if !c.IsCA || !c.BasicConstraintsValid {
		t.Errorf("CA IsCA=%v BasicConstraintsValid=%v, want both", c.IsCA, c.BasicConstraintsValid)
	}
	if c.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Errorf("CA KeyUsage = %b, want CertSign", c.KeyUsage)
	}
	if c.Subject.CommonName != "maillab test CA" || !slices.Equal(c.Subject.Organization, []string{"maillab"}) {
		t.Errorf("CA subject = %v, want CN maillab test CA, O maillab", c.Subject)
	}
	if !c.NotBefore.Before(now) || c.NotAfter.Before(now.AddDate(9, 11, 0)) {
		t.Errorf("CA valid %v to %v, want from before now for about ten years", c.NotBefore, c.NotAfter)
	}
	if err := c.CheckSignatureFrom(c); err != nil {
		t.Errorf("CA is not self-signed: %v", err)
	}
	if len(c.SubjectKeyId) == 0 {
		t.Errorf("CA has no SubjectKeyId (RFC 5280 §4.2.1.2)")
	}
	if _, ok := ca.Key.(*ecdsa.PrivateKey); !ok {
		t.Errorf("CA key is %T, want ECDSA", ca.Key)
	}

	nb := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	old, err := pki.NewCA("old", pki.CAOptions{NotBefore: nb, NotAfter: nb.AddDate(1, 0, 0)})
	if err != nil {
		t.Fatal(err)
	}
	if !old.Cert.NotBefore.Equal(nb) || !old.Cert.NotAfter.Equal(nb.AddDate(1, 0, 0)) {
		t.Errorf("CA with NotBefore/NotAfter = valid %v to %v, want %v to %v", old.Cert.NotBefore, old.Cert.NotAfter, nb, nb.AddDate(1, 0, 0))
	}
}

func TestLeafVerify(t *testing.T) {
	ca := newCA(t)
	now := time.Now()
	roots := pki.Pool(ca.Cert)
	loopback := net.IPv4(127, 0, 0, 1)

	tests := []struct {
		name     string
		spec     pki.LeafSpec
		dnsName  string // what the client verifies; an IP literal checks IP SANs
		at       time.Time
		wantErr  func(error) bool
		wantCN   string
		wantBits int // RSA modulus size; 0 for ECDSA
	}{
		{name: "name", spec: pki.LeafSpec{DNSNames: []string{"mail.example.test", "imap.example.test"}}, dnsName: "imap.example.test", at: now, wantCN: "mail.example.test"},
		{name: "IP address", spec: pki.LeafSpec{DNSNames: []string{"mail.example.test"}, IPs: []net.IP{loopback}}, dnsName: "127.0.0.1", at: now, wantCN: "mail.example.test"},
		{name: "explicit common name", spec: pki.LeafSpec{CommonName: "Mail Server", DNSNames: []string{"mail.example.test"}}, dnsName: "mail.example.test", at: now, wantCN: "Mail Server"},
		{name: "RSA-2048", spec: pki.LeafSpec{DNSNames: []string{"mail.example.test"}, Key: pki.KeyRSA2048}, dnsName: "mail.example.test", at: now, wantCN: "mail.example.test", wantBits: 2048},
		// Go accepts 1024-bit keys; OpenSSL at security level 2 does not.
		{name: "RSA-1024", spec: pki.LeafSpec{DNSNames: []string{"mail.example.test"}, Key: pki.KeyRSA1024}, dnsName: "mail.example.test", at: now, wantCN: "mail.example.test", wantBits: 1024},
		{name: "wrong name", spec: pki.LeafSpec{DNSNames: []string{"www.example.test"}}, dnsName: "mail.example.test", at: now,
			wantErr: isErr[x509.HostnameError]},
		{name: "IP without IP SAN", spec: pki.LeafSpec{DNSNames: []string{"mail.example.test"}}, dnsName: "127.0.0.1", at: now,
			wantErr: isErr[x509.HostnameError]},
		{name: "expired", spec: pki.LeafSpec{DNSNames: []string{"mail.example.test"}, NotBefore: now.AddDate(0, 0, -100), NotAfter: now.AddDate(0, 0, -10)},
			dnsName: "mail.example.test", at: now, wantErr: isInvalid(x509.Expired)},
		{name: "not yet valid", spec: pki.LeafSpec{DNSNames: []string{"mail.example.test"}, NotBefore: now.AddDate(0, 0, 10)},
			dnsName: "mail.example.test", at: now, wantErr: isInvalid(x509.Expired)},
		{name: "default validity is 90 days", spec: pki.LeafSpec{DNSNames: []string{"mail.example.test"}}, dnsName: "mail.example.test",
			at: now.AddDate(0, 0, 91), wantErr: isInvalid(x509.Expired)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			leaf := issue(t, ca, tt.spec)
			_, err := leaf.Cert.Verify(x509.VerifyOptions{Roots: roots, DNSName: tt.dnsName, CurrentTime: tt.at})
			if tt.wantErr != nil {
				if !tt.wantErr(err) {
					t.Errorf("Verify(%s at %v) = %v, want %s", tt.dnsName, tt.at, err, tt.name)
				}
				return
			}
			if err != nil {
				t.Fatalf("Verify(%s) = %v, want nil", tt.dnsName, err)
			}
			c := leaf.Cert
			if c.Subject.CommonName != tt.wantCN {
				t.Errorf("CommonName = %q, want %q", c.Subject.CommonName, tt.wantCN)
			}
			if c.IsCA || !slices.Equal(c.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}) {
				t.Errorf("leaf IsCA=%v ExtKeyUsage=%v, want a server-auth end entity", c.IsCA, c.ExtKeyUsage)
			}
			if !slices.Equal(c.AuthorityKeyId, ca.Cert.SubjectKeyId) {
				t.Errorf("AuthorityKeyId = %x, want the CA's SubjectKeyId %x", c.AuthorityKeyId, ca.Cert.SubjectKeyId)
			}
			switch pub := c.PublicKey.(type) {
			case *rsa.PublicKey:
				if pub.N.BitLen() != tt.wantBits {
					t.Errorf("RSA key of %d bits, want %d", pub.N.BitLen(), tt.wantBits)
				}
				if c.KeyUsage&x509.KeyUsageKeyEncipherment == 0 {
					t.Errorf("RSA leaf KeyUsage = %b, want KeyEncipherment for RSA key exchange", c.KeyUsage)
				}
			case *ecdsa.PublicKey:
				if tt.wantBits != 0 {
					t.Errorf("ECDSA key, want RSA-%d", tt.wantBits)
				}
			default:
				t.Errorf("public key %T", pub)
			}
		})
	}
}

func isErr[E error](err error) bool {
	var e E
	return errors.As(err, &e)
}

func isInvalid(reason x509.InvalidReason) func(error) bool {
	return func(err error) bool {
		var cie x509.CertificateInvalidError
		return errors.As(err, &cie) && cie.Reason == reason
	}
}

// TestNotYetValidVsExpired pins how a diagnoser tells the two apart: both
// fail with x509.Expired; the time is before NotBefore or after NotAfter.
func TestNotYetValidVsExpired(t *testing.T) {
	ca := newCA(t)
	now := time.Now()
	tests := []struct {
		name         string
		spec         pki.LeafSpec
		beforeStart  bool
		afterExpired bool
	}{
		{"expired", pki.LeafSpec{DNSNames: []string{"m.example.test"}, NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-24 * time.Hour)}, false, true},
		{"not yet valid", pki.LeafSpec{DNSNames: []string{"m.example.test"}, NotBefore: now.Add(24 * time.Hour), NotAfter: now.Add(48 * time.Hour)}, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			leaf := issue(t, ca, tt.spec)
			_, err := leaf.Cert.Verify(x509.VerifyOptions{Roots: pki.Pool(ca.Cert), DNSName: "m.example.test", CurrentTime: now})
			var cie x509.CertificateInvalidError
			if !errors.As(err, &cie) || cie.Reason != x509.Expired {
				t.Fatalf("Verify() = %v, want x509.Expired", err)
			}
			if got := now.Before(cie.Cert.NotBefore); got != tt.beforeStart {
				t.Errorf("now before NotBefore = %v, want %v", got, tt.beforeStart)
			}
			if got := now.After(cie.Cert.NotAfter); got != tt.afterExpired {
				t.Errorf("now after NotAfter = %v, want %v", got, tt.afterExpired)
			}
		})
	}
}

func TestSHA1Signature(t *testing.T) {
	ca := newCA(t)
	leaf := issue(t, ca, pki.LeafSpec{DNSNames: []string{"mail.example.test"}, SignatureAlgorithm: x509.ECDSAWithSHA1})
	if leaf.Cert.SignatureAlgorithm != x509.ECDSAWithSHA1 {
		t.Fatalf("SignatureAlgorithm = %v, want %v", leaf.Cert.SignatureAlgorithm, x509.ECDSAWithSHA1)
	}
	// Go refuses SHA-1 signatures on certificates.
	if err := leaf.Cert.CheckSignatureFrom(ca.Cert); !isErr[x509.InsecureAlgorithmError](err) {
		t.Errorf("CheckSignatureFrom(CA) = %v, want x509.InsecureAlgorithmError", err)
	}
	if _, err := leaf.Cert.Verify(x509.VerifyOptions{Roots: pki.Pool(ca.Cert), DNSName: "mail.example.test"}); err == nil {
		t.Errorf("Verify() of a SHA-1 signed leaf = nil, want an error")
	}
	good := issue(t, ca, pki.LeafSpec{DNSNames: []string{"mail.example.test"}})
	if good.Cert.SignatureAlgorithm != x509.ECDSAWithSHA256 {
		t.Errorf("default SignatureAlgorithm = %v, want %v", good.Cert.SignatureAlgorithm, x509.ECDSAWithSHA256)
	}
}

func TestSelfSigned(t *testing.T) {
	ca := newCA(t)
	leaf, err := pki.SelfSigned(pki.LeafSpec{DNSNames: []string{"mail.example.test"}})
	if err != nil {
		t.Fatalf("SelfSigned() = %v", err)
	}
	c := leaf.Cert
	if c.Issuer.String() != c.Subject.String() {
		t.Errorf("self-signed Issuer %q != Subject %q", c.Issuer, c.Subject)
	}
	if err := c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature); err != nil {
		t.Errorf("self-signed certificate does not verify with its own key: %v", err)
	}
	if _, err := c.Verify(x509.VerifyOptions{Roots: pki.Pool(ca.Cert), DNSName: "mail.example.test"}); !isErr[x509.UnknownAuthorityError](err) {
		t.Errorf("Verify(lab CA) of a self-signed leaf = %v, want x509.UnknownAuthorityError", err)
	}
	if _, err := c.Verify(x509.VerifyOptions{Roots: pki.Pool(c), DNSName: "mail.example.test"}); err != nil {
		t.Errorf("Verify(itself as root) = %v, want nil (a user who trusts it explicitly)", err)
	}
}

func TestIntermediates(t *testing.T) {
	root := newCA(t)
	inter, err := root.NewIntermediate("maillab intermediate", pki.CAOptions{})
	if err != nil {
		t.Fatalf("NewIntermediate() = %v", err)
	}
	ic := inter.Cert
	if !ic.IsCA || ic.MaxPathLen != 0 || !ic.MaxPathLenZero {
		t.Errorf("intermediate IsCA=%v MaxPathLen=%d MaxPathLenZero=%v, want a CA with path length 0", ic.IsCA, ic.MaxPathLen, ic.MaxPathLenZero)
	}
	if err := ic.CheckSignatureFrom(root.Cert); err != nil {
		t.Errorf("intermediate not signed by the root: %v", err)
	}
	aia := []string{"http://127.0.0.1:8080/intermediate.crt"}
	leaf := issue(t, inter, pki.LeafSpec{DNSNames: []string{"mail.example.test"}, IssuingCertificateURL: aia})
	if !slices.Equal(leaf.Cert.IssuingCertificateURL, aia) {
		t.Errorf("leaf AIA caIssuers = %q, want %q (RFC 5280 §4.2.2.1)", leaf.Cert.IssuingCertificateURL, aia)
	}
	if got := issue(t, inter, pki.LeafSpec{DNSNames: []string{"m"}}).Cert.IssuingCertificateURL; len(got) != 0 {
		t.Errorf("leaf without AIA has caIssuers %q", got)
	}

	tests := []struct {
		name          string
		intermediates []*x509.Certificate
		wantErr       bool
	}{
		{"with the intermediate", []*x509.Certificate{ic}, false},
		{"missing intermediate", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			chains, err := leaf.Cert.Verify(x509.VerifyOptions{
				Roots: pki.Pool(root.Cert), Intermediates: pki.Pool(tt.intermediates...), DNSName: "mail.example.test"})
			if tt.wantErr {
				if !isErr[x509.UnknownAuthorityError](err) {
					t.Errorf("Verify() = %v, want x509.UnknownAuthorityError", err)
				}
				return
			}
			if err != nil || len(chains) != 1 || len(chains[0]) != 3 || !chains[0][1].Equal(ic) || !chains[0][2].Equal(root.Cert) {
				t.Errorf("Verify() = %d chains, %v, want leaf → intermediate → root", len(chains), err)
			}
		})
	}

	// A CA with path length 0 cannot make another CA that issues.
	sub, err := inter.NewIntermediate("too deep", pki.CAOptions{})
	if err != nil {
		t.Fatal(err)
	}
	deep := issue(t, sub, pki.LeafSpec{DNSNames: []string{"mail.example.test"}})
	if _, err := deep.Cert.Verify(x509.VerifyOptions{Roots: pki.Pool(root.Cert), Intermediates: pki.Pool(ic, sub.Cert), DNSName: "mail.example.test"}); err == nil {
		t.Errorf("Verify() through two intermediates below a path-length-0 CA = nil, want an error")
	}
}

// TestTLSHandshake serves leaves the way the lab does and checks what a
// client trusting the lab CA sees.
func TestTLSHandshake(t *testing.T) {
	root := newCA(t)
	inter, err := root.NewIntermediate("maillab intermediate", pki.CAOptions{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	good := issue(t, inter, pki.LeafSpec{DNSNames: []string{"mail.example.test"}})
	expired := issue(t, root, pki.LeafSpec{DNSNames: []string{"mail.example.test"}, NotBefore: now.AddDate(-1, 0, 0), NotAfter: now.AddDate(0, -1, 0)})
	self, err := pki.SelfSigned(pki.LeafSpec{DNSNames: []string{"mail.example.test"}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		cert    tls.Certificate
		wantErr func(error) bool
	}{
		{"leaf with intermediate", good.TLSCertificate(inter.Cert), nil},
		{"leaf, intermediate and root", good.TLSCertificate(inter.Cert, root.Cert), nil},
		{"missing intermediate", good.TLSCertificate(), isErr[x509.UnknownAuthorityError]},
		{"expired", expired.TLSCertificate(), isInvalid(x509.Expired)},
		{"self-signed", self.TLSCertificate(), isErr[x509.UnknownAuthorityError]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.cert.Leaf == nil || len(tt.cert.Certificate) == 0 || !slices.Equal(tt.cert.Certificate[0], tt.cert.Leaf.Raw) {
				t.Fatalf("TLSCertificate() does not start with its leaf")
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{tt.cert}})
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			go func() {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				defer c.Close()
				c.(*tls.Conn).HandshakeContext(ctx)
			}()
			var d tls.Dialer
			d.Config = &tls.Config{RootCAs: pki.Pool(root.Cert), ServerName: "mail.example.test"}
			conn, err := d.DialContext(ctx, "tcp", ln.Addr().String())
			if conn != nil {
				defer conn.Close()
			}
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("handshake = %v, want nil", err)
				}
				if got := conn.(*tls.Conn).ConnectionState().PeerCertificates; len(got) != len(tt.cert.Certificate) {
					t.Errorf("client got %d certificates, server sent %d", len(got), len(tt.cert.Certificate))
				}
				return
			}
			var cve *tls.CertificateVerificationError
			if !errors.As(err, &cve) || !tt.wantErr(err) {
				t.Errorf("handshake = %v, want a *tls.CertificateVerificationError for %s", err, tt.name)
			}
		})
	}
}

func TestPEM(t *testing.T) {
	root := newCA(t)
	inter, err := root.NewIntermediate("inter", pki.CAOptions{})
	if err != nil {
		t.Fatal(err)
	}
	certs := []*x509.Certificate{inter.Cert, root.Cert}

	data := pki.EncodePEM(certs...)
	var got []*x509.Certificate
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			if len(rest) != 0 {
				t.Errorf("EncodePEM left %d undecodable bytes", len(rest))
			}
			break
		}
		if block.Type != "CERTIFICATE" {
			t.Errorf("PEM block type %q, want CERTIFICATE", block.Type)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, c)
	}
	if !slices.EqualFunc(got, certs, (*x509.Certificate).Equal) {
		t.Errorf("EncodePEM round trip = %d certificates, want the %d given in order", len(got), len(certs))
	}

	dir := t.TempDir()
	path := filepath.Join(dir, "ca.pem")
	if err := pki.WritePEM(path, root.Cert); err != nil {
		t.Fatalf("WritePEM() = %v", err)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o644 {
		t.Errorf("WritePEM mode = %v, want 0644", info.Mode().Perm())
	}
	pool := x509.NewCertPool()
	if written, _ := os.ReadFile(path); !pool.AppendCertsFromPEM(written) {
		t.Errorf("the written PEM file is not usable as a CA file")
	}
	if err := pki.WritePEM(filepath.Join(dir, "none.pem")); err == nil {
		t.Errorf("WritePEM() without certificates = nil, want an error")
	}
	if err := pki.WritePEM(filepath.Join(dir, "missing", "ca.pem"), root.Cert); err == nil {
		t.Errorf("WritePEM() into a missing directory = nil, want an error")
	}
}

func TestKeyType(t *testing.T) {
	tests := []struct {
		k    pki.KeyType
		want string
	}{
		{pki.KeyECDSAP256, "ECDSA-P256"},
		{pki.KeyRSA2048, "RSA-2048"},
		{pki.KeyRSA1024, "RSA-1024"},
		{pki.KeyType(42), "ECDSA-P256"},
	}
	for _, tt := range tests {
		if got := tt.k.String(); got != tt.want {
			t.Errorf("KeyType(%d).String() = %q, want %q", int(tt.k), got, tt.want)
		}
	}
}

// RSA keys are made once per size and shared; ECDSA keys are fresh.
func TestKeyReuse(t *testing.T) {
	ca := newCA(t)
	keyOf := func(k pki.KeyType) any {
		return issue(t, ca, pki.LeafSpec{DNSNames: []string{"m"}, Key: k}).Key.Public()
	}
	type equaler interface{ Equal(crypto.PublicKey) bool }
	if a, b := keyOf(pki.KeyRSA1024), keyOf(pki.KeyRSA1024); !a.(equaler).Equal(b) {
		t.Errorf("two RSA-1024 leaves have different keys, want the shared one")
	}
	if a, b := keyOf(pki.KeyECDSAP256), keyOf(pki.KeyECDSAP256); a.(equaler).Equal(b) {
		t.Errorf("two ECDSA leaves share a key, want fresh keys")
	}
	if a, b := keyOf(pki.KeyRSA1024), keyOf(pki.KeyRSA2048); a.(equaler).Equal(b) {
		t.Errorf("RSA-1024 and RSA-2048 leaves share a key")
	}
}
