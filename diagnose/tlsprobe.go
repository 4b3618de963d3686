package diagnose

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/maillab/maillab/diagnose/wire"
)

// recordingConn keeps the first bytes the server sends during a TLS
// handshake, so a failure can be judged from the bytes (a plaintext banner,
// an alert record) rather than from the TLS library's error text.
type recordingConn struct {
	net.Conn
	mu    sync.Mutex
	data  []byte
	limit int
}

// Read reads from the connection and records what it read.
func (c *recordingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.mu.Lock()
	if room := c.limit - len(c.data); room > 0 && n > 0 {
		c.data = append(c.data, b[:min(n, room)]...)
	}
	c.mu.Unlock()
	return n, err
}

func (c *recordingConn) recorded() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]byte(nil), c.data...)
}

// hsResult is the outcome of one TLS handshake.
type hsResult struct {
	conn *tls.Conn
	// raw is the TCP connection under conn, for fresh connections.
	raw     net.Conn
	state   tls.ConnectionState
	err     error
	kind    netKind
	elapsed time.Duration
	// plaintext holds the server's bytes when they are not TLS (a banner).
	plaintext []byte
	// alert is the alert the server sent, if one could be read.
	alert *wire.Alert
}

func (h hsResult) ok() bool { return h.err == nil }

// stalled reports a handshake that hit its deadline with no failure from
// the server.
func (h hsResult) stalled() bool {
	return h.err != nil && h.kind == nkTimeout && h.alert == nil && h.plaintext == nil
}

// describe says what happened, for evidence.
func (h hsResult) describe() string {
	switch {
	case h.err == nil:
		return fmt.Sprintf("%s, %s", tlsVersionName(h.state.Version), tls.CipherSuiteName(h.state.CipherSuite))
	case h.plaintext != nil:
		return fmt.Sprintf("the server sent plaintext instead of TLS: %q", wire.Sniff(h.plaintext).Line)
	case h.alert != nil:
		return fmt.Sprintf("the server aborted the TLS handshake with alert %s", h.alert)
	case h.kind == nkTimeout:
		return fmt.Sprintf("the TLS handshake did not complete within %s", h.elapsed.Round(time.Millisecond))
	case h.kind == nkEOF:
		return "the server closed the connection during the TLS handshake"
	case h.kind == nkReset:
		return "the connection was reset during the TLS handshake"
	}
	var rhe tls.RecordHeaderError
	if errors.As(h.err, &rhe) {
		return fmt.Sprintf("the server sent bytes that are not TLS: % x", rhe.RecordHeader[:])
	}
	return fmt.Sprintf("the TLS handshake failed: %v", h.err)
}

// tlsParams are the versions a handshake offers.
type tlsParams struct {
	min, max uint16
	// insecureCiphers adds the suites Go leaves out by default (3DES,
	// RC4), to learn whether an old server has anything in common.
	insecureCiphers bool
}

// clientParams returns the versions of the client being reproduced: up to
// ClientMaxTLS (1.3 when unset) and down to Go's default minimum (1.2), or
// down to the maximum when that is lower.
func clientParams(maxTLS string) tlsParams {
	p := tlsParams{min: tls.VersionTLS12, max: tls.VersionTLS13}
	if v := tlsVersionOf(maxTLS); v != 0 {
		p.max = v
		if v < p.min {
			p.min = tls.VersionTLS10
		}
	}
	return p
}

// wideParams offer everything from TLS 1.0 to 1.3, to learn what the
// server speaks.
var wideParams = tlsParams{min: tls.VersionTLS10, max: tls.VersionTLS13}

// handshake runs a TLS client handshake on raw with verification off (the
// chain is classified afterwards by package certcheck).
func handshake(ctx context.Context, raw net.Conn, host string, p tlsParams, timeout time.Duration) hsResult {
	rec := &recordingConn{Conn: raw, limit: 16 << 10}
	cfg := &tls.Config{
		// Verification is done by certcheck on the presented chain, so
		// that each failure gets its own diagnosis.
		InsecureSkipVerify: true, //nolint:gosec
		MinVersion:         p.min,
		MaxVersion:         p.max,
	}
	if net.ParseIP(host) == nil {
		cfg.ServerName = host
	}
	if p.insecureCiphers {
		for _, cs := range tls.CipherSuites() {
			cfg.CipherSuites = append(cfg.CipherSuites, cs.ID)
		}
		for _, cs := range tls.InsecureCipherSuites() {
			cfg.CipherSuites = append(cfg.CipherSuites, cs.ID)
		}
	}
	tc := tls.Client(rec, cfg)
	start := time.Now()
	raw.SetDeadline(start.Add(timeout))
	hctx, cancel := context.WithTimeout(ctx, timeout)
	err := tc.HandshakeContext(hctx)
	cancel()
	raw.SetDeadline(time.Time{})
	h := hsResult{conn: tc, err: err, elapsed: time.Since(start)}
	if err == nil {
		h.state = tc.ConnectionState()
		return h
	}
	h.kind = netErrKind(err)
	data := rec.recorded()
	switch {
	case len(data) > 0 && !wire.IsTLSRecord(data):
		h.plaintext = data
	case len(data) > 0:
		if a, ok := wire.FindAlert(data); ok {
			h.alert = &a
		}
	}
	return h
}

func tlsVersionOf(s string) uint16 {
	switch s {
	case "1.0":
		return tls.VersionTLS10
	case "1.1":
		return tls.VersionTLS11
	case "1.2":
		return tls.VersionTLS12
	case "1.3":
		return tls.VersionTLS13
	}
	return 0
}

func tlsVersionName(v uint16) string {
	switch v {
	case tls.VersionTLS10:
		return "TLS 1.0"
	case tls.VersionTLS11:
		return "TLS 1.1"
	case tls.VersionTLS12:
		return "TLS 1.2"
	case tls.VersionTLS13:
		return "TLS 1.3"
	case 0x0300:
		return "SSL 3.0"
	}
	return fmt.Sprintf("TLS version 0x%04x", v)
}

var _ net.Conn = (*recordingConn)(nil)
