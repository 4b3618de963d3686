package console_test

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/maillab/maillab/serve"
)

// startServe starts a real serve.Server (the console mounted on it) on a
// test HTTP server, closed with the test.
func startServe(t *testing.T) (*serve.Server, *httptest.Server) {
	t.Helper()
	srv, err := serve.New(serve.Options{DataDir: t.TempDir(), CloseGrace: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { ts.CloseClientConnections(); ts.Close(); srv.Close() })
	return srv, ts
}

// newBrowser is a client with its own cookies that does not follow
// redirects (the tests read Location).
func newBrowser() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// browserGet fetches url and returns the status, headers and body.
func browserGet(t *testing.T, hc *http.Client, url string) (int, http.Header, string) {
	t.Helper()
	resp, err := hc.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// browserPost sends form with the csrf token as a same-origin form POST
// from the page at base, as a browser does.
func browserPost(t *testing.T, hc *http.Client, base, path, csrf string, form url.Values) *http.Response {
	t.Helper()
	form.Set("csrf", csrf)
	req, _ := http.NewRequest("POST", base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", base)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}
