package lab_test

import (
	"crypto/tls"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/maillab/maillab/lab"
)

// BenchmarkStart measures a lab's start-to-ready time: CA and
// certificates, store, every port bound and every server accepting (the
// target is 20 ms). Close is not timed.
func BenchmarkStart(b *testing.B) {
	for i := 0; i < b.N; i++ {
		l, err := lab.Start(lab.Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		l.Close()
		b.StartTimer()
	}
}

// BenchmarkSubmissionSTARTTLS measures SMTP submission throughput with 4
// concurrent clients, each message a full session as mail clients do it:
// connect, EHLO, STARTTLS, AUTH PLAIN, MAIL, RCPT, DATA, QUIT. It reports
// messages per second.
func BenchmarkSubmissionSTARTTLS(b *testing.B) {
	l, err := lab.Start(lab.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	s := l.Settings()
	svc := s.Services["submission"]
	alice, bob := s.Accounts[0], s.Accounts[1]
	cfg := &tls.Config{RootCAs: l.CertPool(), ServerName: svc.Host}
	msg := "From: " + alice.Email + "\r\nTo: " + bob.Email + "\r\nSubject: bench\r\n\r\n" + strings.Repeat("benchmark line\r\n", 64)
	send := func() error {
		c, err := smtp.DialStartTLS(addr(svc), cfg)
		if err != nil {
			return err
		}
		defer c.Close()
		c.CommandTimeout = 10 * time.Second
		if err := c.Auth(sasl.NewPlainClient("", alice.Username, alice.Password)); err != nil {
			return err
		}
		if err := c.SendMail(alice.Email, []string{bob.Email}, strings.NewReader(msg)); err != nil {
			return err
		}
		return c.Quit()
	}
	const clients = 4
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for w := 0; w < clients; w++ {
		n := b.N / clients
		if w < b.N%clients {
			n++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < n; i++ {
				if err := send(); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
}
