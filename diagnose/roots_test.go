package diagnose

import (
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/maillab/maillab/diagnose/internal/testpki"
)

func TestLoadRoots(t *testing.T) {
	a := testpki.NewRoot(t, "Root A", testpki.Opts{})
	b := testpki.NewRoot(t, "Root B", testpki.Opts{})
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	junk := []byte("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n")
	tests := []struct {
		name    string
		cfg     Config
		certs   []*x509.Certificate
		wantErr string // the UsageError field, "" for none
	}{
		{"file and PEM", Config{CAFile: write("a.pem", a.PEM()), CAPEM: b.PEM()}, []*x509.Certificate{a.Cert, b.Cert}, ""},
		{"bundle with a broken block", Config{CAFile: write("ab.pem", append(append(append([]byte("# comment\n"), junk...), a.PEM()...), b.PEM()...))}, []*x509.Certificate{a.Cert, b.Cert}, ""},
		{"no roots", Config{}, nil, ""},
		{"file without a certificate", Config{CAFile: write("junk.pem", junk)}, nil, "--ca"},
		{"missing file", Config{CAFile: filepath.Join(dir, "missing.pem")}, nil, "--ca"},
		{"PEM without a certificate", Config{CAPEM: []byte("nothing")}, nil, "ca"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.NoSystemRoots = true
			pool, certs, err := loadRoots(tt.cfg)
			var ue *UsageError
			switch {
			case tt.wantErr != "":
				if !errors.As(err, &ue) || ue.Field != tt.wantErr {
					t.Fatalf("loadRoots(%s) error = %v, want a usage error of %s", tt.name, err, tt.wantErr)
				}
				return
			case err != nil:
				t.Fatalf("loadRoots(%s): %v", tt.name, err)
			}
			if len(certs) != len(tt.certs) {
				t.Fatalf("loadRoots(%s) returned %d certificates, want %d", tt.name, len(certs), len(tt.certs))
			}
			for i, c := range certs {
				if !c.Equal(tt.certs[i]) {
					t.Errorf("certificate %d is %q, want %q", i, c.Subject, tt.certs[i].Subject)
				}
				if _, err := c.Verify(x509.VerifyOptions{Roots: pool}); err != nil {
					t.Errorf("certificate %q is not in the pool: %v", c.Subject, err)
				}
			}
		})
	}
}

// FuzzParsePEMCerts checks that the --ca parser finds a certificate
// exactly when crypto/x509's pool would, on any bytes.
func FuzzParsePEMCerts(f *testing.F) {
	ca := testpki.NewRoot(f, "Fuzz Root", testpki.Opts{})
	f.Add(ca.PEM())
	f.Add(append([]byte("Bag Attributes\n    friendlyName: root\nsubject=/CN=root\n"), ca.PEM()...))
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nProc-Type: 4,ENCRYPTED\n\nAAAA\n-----END CERTIFICATE-----\n"))
	f.Add([]byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		certs := parsePEMCerts(data)
		pool := x509.NewCertPool()
		if got, want := len(certs) > 0, pool.AppendCertsFromPEM(data); got != want {
			t.Fatalf("parsePEMCerts found %d certificates, AppendCertsFromPEM says %v", len(certs), want)
		}
		for _, c := range certs {
			if c == nil || len(c.Raw) == 0 {
				t.Fatalf("empty certificate in %v", certs)
			}
		}
	})
}
