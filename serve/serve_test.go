package serve

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/maillab/maillab/settings"
)

// testServer is a serve.Server behind httptest, with a client that sends
// the token and checks every exchange against the OpenAPI document.
type testServer struct {
	t    *testing.T
	srv  *Server
	http *httptest.Server
	dir  string
}

func newTestServer(t *testing.T, opts Options) *testServer {
	t.Helper()
	if opts.DataDir == "" {
		opts.DataDir = t.TempDir()
	}
	if opts.CloseGrace == 0 {
		opts.CloseGrace = 50 * time.Millisecond
	}
	srv, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ts := &testServer{t: t, srv: srv, http: httptest.NewServer(srv.Handler()), dir: opts.DataDir}
	t.Cleanup(ts.close)
	return ts
}

func (ts *testServer) close() {
	ts.http.CloseClientConnections()
	ts.http.Close()
	ts.srv.Close()
}

// do sends a request with the token (unless noAuth) and returns the
// status and body. The exchange is validated against the OpenAPI document.
func (ts *testServer) do(method, path string, body any, noAuth ...bool) (int, []byte) {
	ts.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		data, _ := json.Marshal(b)
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, ts.http.URL+path, rd)
	if err != nil {
		ts.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if len(noAuth) == 0 || !noAuth[0] {
		req.Header.Set("Authorization", "Bearer "+ts.srv.Token())
	}
	resp, err := openAPIClient(ts.t).Do(req)
	if err != nil {
		ts.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, data
}

// must sends a request and fails the test unless the status is want;
// the JSON answer is decoded into out (if not nil).
func (ts *testServer) must(want int, method, path string, body, out any) []byte {
	ts.t.Helper()
	code, data := ts.do(method, path, body)
	if code != want {
		ts.t.Fatalf("%s %s = %d %s, want %d", method, path, code, data, want)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			ts.t.Fatalf("%s %s: decode %s: %v", method, path, data, err)
		}
	}
	return data
}

type labResp struct {
	ID                string             `json:"id"`
	Scenario          string             `json:"scenario"`
	ExpectedRootCause string             `json:"expected_root_cause"`
	Ports             map[string]int     `json:"ports"`
	Faults            []FaultSpec        `json:"faults"`
	Settings          *settings.Settings `json:"settings"`
	Lab               *settings.Settings `json:"lab"`
}

func (ts *testServer) create(body any) labResp {
	ts.t.Helper()
	var l labResp
	ts.must(http.StatusCreated, "POST", "/api/v1/labs", body, &l)
	return l
}

// caPool fetches the lab's CA.
func (ts *testServer) caPool(id string) (*x509.CertPool, []byte) {
	ts.t.Helper()
	data := ts.must(http.StatusOK, "GET", "/api/v1/labs/"+id+"/ca.pem", nil, nil)
	b, _ := pem.Decode(data)
	if b == nil {
		ts.t.Fatalf("ca.pem is not PEM: %q", data)
	}
	cert, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		ts.t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return pool, data
}

// submit logs in on the submission port (STARTTLS) and sends one message
// from the settings' account to rcpt; it returns the SMTP error, if any.
func submit(t *testing.T, s *settings.Settings, pool *x509.CertPool, rcpt, subject string) error {
	t.Helper()
	svc := s.Services["submission"]
	addr := net.JoinHostPort("127.0.0.1", fmt.Sprint(svc.Port))
	c, err := smtp.DialStartTLS(addr, &tls.Config{RootCAs: pool, ServerName: svc.Host})
	if err != nil {
		return err
	}
	defer c.Close()
	c.CommandTimeout = 10 * time.Second
	a := s.Accounts[0]
	if err := c.Auth(sasl.NewPlainClient("", a.Username, a.Password)); err != nil {
		return err
	}
	msg := "From: " + a.Email + "\r\nTo: " + rcpt + "\r\nSubject: " + subject + "\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhello from the test\r\n" +
		"--b\r\nContent-Type: text/html\r\n\r\n<p>hello <script>x=1</script></p>\r\n" +
		"--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"invoice.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--b--\r\n"
	return c.SendMail(a.Email, []string{rcpt}, strings.NewReader(msg))
}

func TestAuth(t *testing.T) {
	ts := newTestServer(t, Options{})
	tests := []struct {
		name   string
		header string
		want   int
	}{
		{"no token", "", http.StatusUnauthorized},
		{"wrong token", "Bearer nope", http.StatusUnauthorized},
		{"basic instead of bearer", "Basic " + ts.srv.Token(), http.StatusUnauthorized},
		{"bearer", "Bearer " + ts.srv.Token(), http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", ts.http.URL+"/api/v1/labs", nil)
			if tt.header != "" {
				req.Header.Set("Authorization", tt.header)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Errorf("GET /api/v1/labs with %q = %d, want %d", tt.header, resp.StatusCode, tt.want)
			}
		})
	}
	t.Run("console URL sets the cookie", func(t *testing.T) {
		noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := noRedirect.Get(ts.http.URL + "/?token=" + ts.srv.Token())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
			t.Fatalf("GET /?token= = %d Location %q, want 303 to /", resp.StatusCode, resp.Header.Get("Location"))
		}
		cookies := resp.Cookies()
		if len(cookies) != 1 || !cookies[0].HttpOnly || cookies[0].SameSite != http.SameSiteStrictMode {
			t.Fatalf("cookies = %+v, want one HttpOnly SameSite=Strict cookie", cookies)
		}
		req, _ := http.NewRequest("GET", ts.http.URL+"/api/v1/scenarios", nil)
		req.AddCookie(cookies[0])
		resp, err = http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("API with the cookie = %d, want 200", resp.StatusCode)
		}
		resp, err = noRedirect.Get(ts.http.URL + "/?token=wrong")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || len(resp.Cookies()) != 0 {
			t.Errorf("GET /?token=wrong = %d with %d cookies, want 401 and none", resp.StatusCode, len(resp.Cookies()))
		}
	})
}

func TestScenarios(t *testing.T) {
	ts := newTestServer(t, Options{})
	var list []scenarioJSON
	ts.must(http.StatusOK, "GET", "/api/v1/scenarios", nil, &list)
	found := false
	for _, sc := range list {
		found = found || sc.Name == "expired-cert" && sc.RootCause == "TLS_CERT_EXPIRED"
	}
	if !found {
		t.Errorf("GET /api/v1/scenarios lacks expired-cert with TLS_CERT_EXPIRED: %+v", list)
	}
	var sc scenarioJSON
	ts.must(http.StatusOK, "GET", "/api/v1/scenarios/expired-cert", nil, &sc)
	if sc.Cause == "" || len(sc.Faults) != 1 || sc.Faults[0].Type != "expired-certificate" {
		t.Errorf("GET /api/v1/scenarios/expired-cert = %+v, want cause and the expired-certificate fault", sc)
	}
	var fts []faultTypeJSON
	ts.must(http.StatusOK, "GET", "/api/v1/faults", nil, &fts)
	if len(fts) < 30 {
		t.Errorf("GET /api/v1/faults lists %d fault types", len(fts))
	}
	code, data := ts.do("GET", "/api/v1/scenarios/expird-cert", nil)
	if code != http.StatusNotFound || !strings.Contains(string(data), "expired-cert") {
		t.Errorf("unknown scenario = %d %s, want 404 suggesting expired-cert", code, data)
	}
}

func TestLabLifecycle(t *testing.T) {
	ts := newTestServer(t, Options{})
	l := ts.create(map[string]string{"scenario": "expired-cert"})
	if l.Scenario != "expired-cert" || l.ExpectedRootCause != "TLS_CERT_EXPIRED" || l.Settings == nil || l.Lab == nil {
		t.Fatalf("POST /labs = %+v", l)
	}
	if l.Settings.ExpectedRootCause != "TLS_CERT_EXPIRED" || len(l.Settings.Accounts) != 1 {
		t.Errorf("customer settings = %+v, want the scenario's customer", l.Settings)
	}
	// settings.json is the --settings-out format: settings.Parse reads it.
	data := ts.must(http.StatusOK, "GET", "/api/v1/labs/"+l.ID+"/settings.json", nil, nil)
	s, err := settings.Parse("settings.json", data)
	if err != nil {
		t.Fatalf("settings.json does not parse: %v", err)
	}
	pool, _ := ts.caPool(l.ID)
	err = submit(t, s, pool, s.Accounts[0].Email, "x")
	var cve *tls.CertificateVerificationError
	if err == nil || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("submission against expired-cert: err = %v (%T %v), want an expired certificate", err, err, cve)
	}
	var list []labResp
	ts.must(http.StatusOK, "GET", "/api/v1/labs", nil, &list)
	if len(list) != 1 || list[0].ID != l.ID {
		t.Fatalf("GET /labs = %+v, want the one lab", list)
	}
	// The failure is in the transcript.
	// (The server notes the failed handshake just after the client gave up.)
	var lines []byte
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		lines = ts.must(http.StatusOK, "GET", "/api/v1/labs/"+l.ID+"/transcript?since=0", nil, nil)
		if bytes.Contains(lines, []byte("STARTTLS")) && bytes.Contains(lines, []byte("connection closed")) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("transcript lacks the failed STARTTLS handshake:\n%s", lines)
		}
	}
	var last Event
	for _, line := range bytes.Split(bytes.TrimSpace(lines), []byte("\n")) {
		if err := json.Unmarshal(line, &last); err != nil {
			t.Fatalf("transcript line %q: %v", line, err)
		}
	}
	if more := ts.must(http.StatusOK, "GET", fmt.Sprintf("/api/v1/labs/%s/transcript?since=%d", l.ID, last.Seq), nil, nil); len(bytes.TrimSpace(more)) != 0 {
		t.Errorf("transcript?since=last = %s, want nothing", more)
	}

	ts.must(http.StatusNoContent, "DELETE", "/api/v1/labs/"+l.ID, nil, nil)
	for name, port := range l.Ports {
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", fmt.Sprint(port)))
		if err != nil {
			t.Errorf("port %d of %s still taken after DELETE: %v", port, name, err)
			continue
		}
		ln.Close()
	}
	code, body := ts.do("GET", "/api/v1/labs/"+l.ID, nil)
	if code != http.StatusNotFound {
		t.Errorf("GET deleted lab = %d %s, want 404", code, body)
	}
}
