package maillab

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/maillab/maillab/serve"
)

// TestServeClient drives an in-process serve through the client RunServe
// returns: create, CA copy on this machine, fault at runtime, delete.
func TestServeClient(t *testing.T) {
	srv, err := serve.New(serve.Options{DataDir: t.TempDir(), CloseGrace: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	defer srv.Close()
	defer hs.Close()
	ctx := context.Background()
	c := NewServeClient(hs.URL, srv.Token())
	defer c.Close()

	l, err := c.CreateLab(ctx, "expired-cert")
	if err != nil {
		t.Fatalf("CreateLab: %v", err)
	}
	if l.ExpectedRootCause != "TLS_CERT_EXPIRED" || l.Settings == nil {
		t.Fatalf("CreateLab = %+v", l)
	}
	pem, err := os.ReadFile(l.Settings.CAFile)
	if err != nil {
		t.Fatalf("CA copy: %v", err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	svc := l.Settings.Services["imaps"]
	conn, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", svc.Port), &tls.Config{RootCAs: pool, ServerName: svc.Host})
	var cve *tls.CertificateVerificationError
	if !errors.As(err, &cve) {
		if conn != nil {
			conn.Close()
		}
		t.Fatalf("imaps of expired-cert with the copied CA: %v, want a certificate error", err)
	}
	ch, err := c.AddFault(ctx, l.ID, "lockout", map[string]any{"threshold": 2})
	if err != nil || !ch.Restarted || ch.Fault == nil || ch.Fault.Type != "lockout" {
		t.Fatalf("AddFault = %+v, %v", ch, err)
	}
	if _, err := c.AddFault(ctx, l.ID, "nope", nil); err == nil {
		t.Errorf("AddFault(nope) = nil error")
	} else if ae := (*APIError)(nil); !errors.As(err, &ae) || ae.Status != 400 || ae.Field != "type" {
		t.Errorf("AddFault(nope) = %v, want a 400 on field type", err)
	}
	labs, err := c.Labs(ctx)
	if err != nil || len(labs) != 1 {
		t.Fatalf("Labs = %+v, %v", labs, err)
	}
	if err := c.DeleteLab(ctx, l.ID); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", svc.Port))
	if err != nil {
		t.Errorf("port still taken after DeleteLab: %v", err)
	} else {
		ln.Close()
	}
	var ae *APIError
	if err := c.DeleteLab(ctx, l.ID); !errors.As(err, &ae) || ae.Status != 404 {
		t.Errorf("second DeleteLab = %v, want 404", err)
	}
}
