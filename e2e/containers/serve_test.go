//go:build e2e

package containers

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/testcontainers/testcontainers-go"
	tclog "github.com/testcontainers/testcontainers-go/log"

	"github.com/maillab/maillab/testcontainers/maillab"
)

// TestServeContainer starts `maillab serve` in a container with
// maillab.RunServe and creates labs through its API, including the two
// second-provider scenarios a lab container cannot run (serve runs on the
// host's network).
func TestServeContainer(t *testing.T) {
	requireDocker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ctr, err := maillab.RunServe(ctx, image, testcontainers.WithLogger(tclog.TestLogger(t)))
	testcontainers.CleanupContainer(t, ctr)
	if err != nil {
		t.Fatalf("maillab.RunServe: %v", err)
	}
	for _, name := range []string{"dns-poisoned", "imap-generic-host", "dns-poisoned"} {
		l, err := ctr.CreateLab(ctx, name)
		if err != nil {
			t.Fatalf("CreateLab(%s): %v", name, err)
		}
		if l.Scenario != name {
			t.Errorf("CreateLab(%s) = %+v", name, l)
		}
	}
	l, err := ctr.CreateLab(ctx, "expired-cert")
	if err != nil {
		t.Fatalf("CreateLab(expired-cert): %v", err)
	}
	pem, err := os.ReadFile(l.Settings.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	svc := l.Settings.Services["imaps"]
	c, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", svc.Port), &tls.Config{RootCAs: pool, ServerName: svc.Host})
	var cve *tls.CertificateVerificationError
	if !errors.As(err, &cve) {
		if c != nil {
			c.Close()
		}
		t.Fatalf("imaps of expired-cert in the serve container: %v, want a certificate error", err)
	}
	labs, err := ctr.Labs(ctx)
	if err != nil || len(labs) != 4 {
		t.Fatalf("Labs = %d labs, %v; want 4", len(labs), err)
	}
	for _, l := range labs {
		if err := ctr.DeleteLab(ctx, l.ID); err != nil {
			t.Errorf("DeleteLab(%s): %v", l.ID, err)
		}
	}
}
