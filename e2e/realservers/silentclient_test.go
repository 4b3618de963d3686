//go:build e2e

package realservers

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestSilentClientOnImplicitTLS measures what real implicit-TLS ports do
// with a client that speaks plaintext and so waits for a greeting without
// sending a ClientHello (scenario plain-on-993): how long Dovecot's imaps
// and pop3s and Postfix's submissions (smtpd_tls_wrappermode) wait, and
// whether they then close (FIN) or reset. It only logs what it measured:
// the numbers are the servers' configuration defaults, which the lab's
// lab.Options.HandshakeTimeout default follows. It takes minutes, so it
// runs only with MAILLAB_MEASURE_SILENT=1.
func TestSilentClientOnImplicitTLS(t *testing.T) {
	if os.Getenv("MAILLAB_MEASURE_SILENT") != "1" {
		t.Skip("a measurement of several minutes; set MAILLAB_MEASURE_SILENT=1 to run it")
	}
	site := StartSite(t, SiteOptions{Users: []string{"silent"}})
	t.Logf("software: %s", site.Versions.Header())
	var wg sync.WaitGroup
	for _, b := range []string{DovecotBackend(DovecotGood, "imaps"), DovecotBackend(DovecotGood, "pop3s"), ListenerSubmissions} {
		// The backends expect the PROXY header their fronts send.
		addr := site.NewFront(t, b).Addr
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Errorf("%s: %v", b, err)
				return
			}
			defer conn.Close()
			start := time.Now()
			conn.SetReadDeadline(start.Add(10 * time.Minute))
			got, err := io.ReadAll(conn)
			how := "closed (FIN)"
			var ne net.Error
			switch {
			case errors.Is(err, syscall.ECONNRESET):
				how = "reset (RST)"
			case errors.As(err, &ne) && ne.Timeout():
				how = "still open at the 10-minute cap"
			case err != nil:
				how = err.Error()
			}
			t.Logf("%s (%s): %s after %s, %d bytes sent first %q", b, addr, how, time.Since(start).Round(100*time.Millisecond), len(got), got)
		}()
	}
	wg.Wait()
	// What the servers logged about these connections.
	t.Logf("dovecot:\n%s", site.Dovecot[DovecotGood].proc.logTail(12))
	t.Logf("postfix:\n%s", site.Postfix.proc.logTail(12))
}
