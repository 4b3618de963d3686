package diagnose

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/maillab/maillab/rootcause"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

// goldenReports are reports as Run builds them, with fixed times.
var goldenReports = map[string]*Report{
	"expired-cert": {
		RootCause: rootcause.TLSCertExpired,
		Summary:   "imaps (mail.example.test port 993, SSL/TLS): the server's certificate expired on 2026-01-31 (10 days ago)",
		Fix:       "The server's certificate has expired: the administrator must renew it. Do not add a security exception in the client.",
		Services: []ServiceReport{
			{Service: "submission", Host: "mail.example.test", Port: 587, Security: "starttls", OK: true, Steps: []Step{
				{Step: StepDNS, OK: true, Evidence: "mail.example.test → 192.0.2.25 (answered by 192.0.2.53:53)", ElapsedMS: 1.2},
				{Step: StepTCP, OK: true, Evidence: "connected to 192.0.2.25:587 in 12.1ms", ElapsedMS: 12.1},
				{Step: StepGreeting, OK: true, Evidence: "220 mail.example.test ESMTP Postfix (Debian/GNU)", ElapsedMS: 30.4},
				{Step: StepCapabilities, OK: true, Evidence: "EHLO: mail.example.test PIPELINING SIZE 10240000 STARTTLS ENHANCEDSTATUSCODES", ElapsedMS: 11.9},
				{Step: StepStartTLS, OK: true, Evidence: "220 2.0.0 Ready to start TLS; TLS 1.3, TLS_AES_128_GCM_SHA256", ElapsedMS: 25},
				{Step: StepAuth, OK: true, Evidence: "AUTH PLAIN: 235 2.7.0 Authentication successful", ElapsedMS: 40.3},
				{Step: StepSend, OK: true, Evidence: "MAIL FROM:<alice@example.test> SIZE=350 → 250 2.1.0 Ok; RCPT TO:<alice@example.test> → 250 2.1.5 Ok; DATA → 354 End data with <CR><LF>.<CR><LF>; 353 bytes in 300µs → 250 2.0.0 Ok: queued as 4Fj2kR0mXyz", ElapsedMS: 61.7},
			}},
			{Service: "imaps", Host: "mail.example.test", Port: 993, Security: "tls", OK: false, Steps: []Step{
				{Step: StepDNS, OK: true, Evidence: "mail.example.test → 192.0.2.25 (answered by 192.0.2.53:53)", ElapsedMS: 1.2},
				{Step: StepTCP, OK: true, Evidence: "connected to 192.0.2.25:993 in 11.8ms", ElapsedMS: 11.8},
				{Step: StepTLS, OK: false, Code: rootcause.TLSCertExpired, Evidence: "TLS 1.3, TLS_AES_128_GCM_SHA256; certificate subject \"CN=mail.example.test\" issued by \"CN=R11,O=Let's Encrypt,C=US\"; names mail.example.test; valid 2025-11-02 to 2026-01-31 (expired); ECDSA-P-256 SHA256-RSA", ElapsedMS: 35.5},
				{Step: StepGreeting, OK: true, Evidence: "* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN] Dovecot (Debian) ready.", ElapsedMS: 0.4},
				{Step: StepCapabilities, OK: true, Evidence: "from the greeting: IMAP4REV1 SASL-IR AUTH=PLAIN", ElapsedMS: 0},
				{Step: StepAuth, OK: true, Skipped: true, Evidence: "skipped: the server's certificate is not trusted, so the password could be read by whoever holds its key", ElapsedMS: 0},
				{Step: StepFetch, OK: true, Skipped: true, Evidence: "skipped: no login", ElapsedMS: 0},
			}},
		},
		Findings: []Finding{
			{Code: rootcause.TLSProtocolTooOld, Service: "submission", Severity: SeverityWarning, Summary: "the server speaks at most TLS 1.0, which current mail clients refuse", Evidence: "TLS 1.0, TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", Fix: "The server speaks only old TLS versions that current clients refuse: the administrator must enable TLS 1.2 or 1.3 on the server."},
		},
	},
	"plain-on-993": {
		RootCause: rootcause.PortSecurityMismatchPlainOnTLS,
		Summary:   "imaps (mail.example.test port 993, no encryption): port 993 expects SSL/TLS from the first byte, but the settings say no encryption",
		Fix:       "In the mail client, set the incoming server (IMAP) security to SSL/TLS for port 993.",
		Services: []ServiceReport{
			{Service: "imaps", Host: "mail.example.test", Port: 993, Security: "none", OK: false, Steps: []Step{
				{Step: StepDNS, OK: true, Evidence: "mail.example.test → 192.0.2.25 (answered by 192.0.2.53:53)", ElapsedMS: 2.7},
				{Step: StepTCP, OK: true, Evidence: "connected to 192.0.2.25:993 in 700µs", ElapsedMS: 0.7},
				{Step: StepGreeting, OK: false, Code: rootcause.PortSecurityMismatchPlainOnTLS, Evidence: "no greeting within 3s; a TLS handshake on a new connection succeeded (TLS 1.3, TLS_AES_128_GCM_SHA256)", ElapsedMS: 3001.2},
				{Step: StepCapabilities, OK: true, Skipped: true, Evidence: "skipped: no greeting"},
				{Step: StepAuth, OK: true, Skipped: true, Evidence: "skipped: no greeting"},
				{Step: StepFetch, OK: true, Skipped: true, Evidence: "skipped: no greeting"},
			}},
		},
	},
	"healthy": {
		RootCause: rootcause.Healthy,
		Summary:   "every configured service works: pop3s",
		Fix:       "Nothing to fix on the server side: the account connects, encrypts, logs in and sends or fetches mail. If the mail client still fails, compare its settings with the ones tested here.",
		Services: []ServiceReport{
			{Service: "pop3s", Host: "127.0.0.1", Port: 995, Security: "tls", OK: true, Steps: []Step{
				{Step: StepDNS, OK: true, Evidence: "127.0.0.1 is an IP address; no lookup"},
				{Step: StepTCP, OK: true, Evidence: "connected to 127.0.0.1:995 in 500µs", ElapsedMS: 0.5},
				{Step: StepTLS, OK: true, Evidence: "TLS 1.3, TLS_AES_128_GCM_SHA256", ElapsedMS: 34.6},
				{Step: StepGreeting, OK: true, Evidence: "+OK Dovecot (Debian) ready."},
				{Step: StepCapabilities, OK: true, Evidence: "AUTH-RESP-CODE, CAPA, PIPELINING, RESP-CODES, SASL PLAIN LOGIN, TOP, UIDL, USER", ElapsedMS: 0.2},
				{Step: StepAuth, OK: true, Evidence: "AUTH PLAIN: +OK Logged in.", ElapsedMS: 28.3},
				{Step: StepFetch, OK: true, Evidence: "STAT: +OK 0 0", ElapsedMS: 1},
			}},
		},
	},
}

func TestReportGolden(t *testing.T) {
	for name, r := range goldenReports {
		t.Run(name, func(t *testing.T) {
			js, err := r.JSON()
			if err != nil {
				t.Fatal(err)
			}
			var text bytes.Buffer
			if err := r.WriteText(&text); err != nil {
				t.Fatal(err)
			}
			checkGolden(t, filepath.Join("testdata", "golden", name+".json"), js)
			checkGolden(t, filepath.Join("testdata", "golden", name+".txt"), text.Bytes())
		})
	}
}

func checkGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the rendering (go test -update rewrites it)\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// TestReportJSONShape checks the exact keys of issue 4's JSON.
func TestReportJSONShape(t *testing.T) {
	js, err := goldenReports["expired-cert"].JSON()
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(js, &m); err != nil {
		t.Fatal(err)
	}
	keys := func(v any) []string {
		var out []string
		for k := range v.(map[string]any) {
			out = append(out, k)
		}
		return out
	}
	wantKeys := map[string][]string{
		"report":  {"root_cause", "summary", "fix", "services", "findings"},
		"service": {"service", "host", "port", "security", "ok", "steps"},
		"step":    {"step", "ok", "code", "evidence", "elapsed_ms"},
		"finding": {"code", "service", "severity", "summary", "evidence", "fix"},
	}
	svc := m["services"].([]any)[0]
	step := svc.(map[string]any)["steps"].([]any)[0]
	finding := m["findings"].([]any)[0]
	for what, v := range map[string]any{"report": m, "service": svc, "step": step, "finding": finding} {
		got := keys(v)
		if len(got) != len(wantKeys[what]) {
			t.Errorf("%s keys = %v, want %v", what, got, wantKeys[what])
		}
		for _, k := range wantKeys[what] {
			if _, ok := v.(map[string]any)[k]; !ok {
				t.Errorf("%s lacks key %q", what, k)
			}
		}
	}
	empty, _ := (&Report{RootCause: rootcause.Healthy}).JSON()
	if !bytes.Contains(empty, []byte(`"services": []`)) || !bytes.Contains(empty, []byte(`"findings": []`)) {
		t.Errorf("empty report renders null lists: %s", empty)
	}
}
