package certcheck

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// MaxIssuerBytes bounds an AIA download; a CA certificate is a few KiB.
const MaxIssuerBytes = 64 << 10

// HTTPFetcher returns a FetchIssuer that downloads a certificate (DER, as
// RFC 5280 §4.2.2.1 asks, or PEM, which some CAs serve) over plain HTTP
// within timeout and MaxIssuerBytes. Only http URLs are followed: an https
// AIA URL would need the very chain being completed.
func HTTPFetcher(timeout time.Duration) func(ctx context.Context, url string) (*x509.Certificate, error) {
	client := &http.Client{
		Timeout: timeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 3 {
				return fmt.Errorf("more than 3 redirects")
			}
			return nil
		},
	}
	return func(ctx context.Context, url string) (*x509.Certificate, error) {
		if !strings.HasPrefix(strings.ToLower(url), "http://") {
			return nil, fmt.Errorf("not an http URL: %s", url)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return nil, fmt.Errorf("fetch %s: %w", url, err)
		}
		resp, err := client.Do(req)
		if err != nil {
			return nil, fmt.Errorf("fetch %s: %w", url, err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("fetch %s: HTTP %d", url, resp.StatusCode)
		}
		data, err := io.ReadAll(io.LimitReader(resp.Body, MaxIssuerBytes+1))
		if err != nil {
			return nil, fmt.Errorf("fetch %s: %w", url, err)
		}
		if len(data) > MaxIssuerBytes {
			return nil, fmt.Errorf("fetch %s: more than %d bytes", url, MaxIssuerBytes)
		}
		return ParseCertificate(data)
	}
}

// ParseCertificate parses one certificate in DER or PEM form (PKCS #7
// bundles, which a few CAs serve, are not supported).
func ParseCertificate(data []byte) (*x509.Certificate, error) {
	if block, _ := pem.Decode(data); block != nil {
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("PEM block %q is not a certificate", block.Type)
		}
		data = block.Bytes
	}
	c, err := x509.ParseCertificate(data)
	if err != nil {
		return nil, fmt.Errorf("parse certificate: %w", err)
	}
	return c, nil
}
