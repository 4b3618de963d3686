package scenarios_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/maillab/maillab/scenarios"
)

const goodScenario = `name: customer-1234
title: Branch office cannot send
section: "4"
root_cause: TLS_CERT_EXPIRED
story: Outlook warns about the certificate.
fix: Renew it.
faults:
  - type: expired-certificate
    services: [submission]
    expired_for: 72h
  - drop
customer:
  services: [submission, imaps]
  override:
    submission: {security: none}
  client: {max_tls: "1.2", message: {attachment: a.pdf, size: 2MiB}}
`

func TestParseGood(t *testing.T) {
	sc, err := scenarios.Parse("customer-1234.yaml", []byte(goodScenario))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if sc.Name != "customer-1234" || len(sc.Faults) != 2 || sc.Faults[1].Type != "drop" ||
		sc.Customer.Client.Message.Size != 2<<20 || sc.Customer.Override["submission"].Security != "none" {
		t.Errorf("Parse = %+v", sc)
	}
}

func TestParseSecondary(t *testing.T) {
	data := strings.Replace(goodScenario, "root_cause: TLS_CERT_EXPIRED", "root_cause: TLS_CERT_EXPIRED\nsecondary: [AUTH_FAILED, STARTTLS_STRIPPED]", 1)
	sc, err := scenarios.Parse("x.yaml", []byte(data))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if want := []string{"AUTH_FAILED", "STARTTLS_STRIPPED"}; !slices.Equal(sc.Secondary, want) {
		t.Errorf("Secondary = %v, want %v", sc.Secondary, want)
	}
}

// TestParseErrors: every kind of bad file gives an error naming the file,
// the line and the field, with the valid choices where there are some.
func TestParseErrors(t *testing.T) {
	replace := func(old, new string) string { return strings.Replace(goodScenario, old, new, 1) }
	tests := []struct {
		name string
		data string
		want []string
	}{
		{"syntax error", replace("title: Branch", "title: [Branch"), []string{"x.yaml:", "invalid YAML"}},
		{"not a mapping", "- a\n- b\n", []string{"x.yaml:1", "mapping"}},
		{"empty", "", []string{"x.yaml", "empty"}},
		{"unknown fault", replace("type: expired-certificate", "type: expird-certificate"),
			[]string{"x.yaml:8", "faults[0]", "unknown fault \"expird-certificate\"", "did you mean expired-certificate", "valid:"}},
		{"unknown short fault", replace("  - drop", "  - dorp"), []string{"x.yaml:11", "unknown fault \"dorp\"", "drop"}},
		{"missing field", replace("fix: Renew it.\n", ""), []string{"x.yaml:1", "fix", "missing"}},
		{"unknown top-level key", replace("fix: Renew it.", "fix: Renew it.\nfixes: x"), []string{"x.yaml:7", "unknown field \"fixes\"", "valid:"}},
		{"unknown root cause", replace("TLS_CERT_EXPIRED", "CERT_EXPIRED"), []string{"x.yaml:4", "root_cause", "unknown root cause \"CERT_EXPIRED\"", "TLS_CERT_EXPIRED"}},
		{"wrong type", replace("expired_for: 72h", "expired_for: [72h]"), []string{"x.yaml:10", "expired_for", "duration"}},
		{"unknown fault parameter", replace("expired_for: 72h", "expires: 72h"), []string{"x.yaml:10", "unknown field \"expires\"", "expired_for"}},
		{"service the fault cannot act on", replace("services: [submission]", "services: [dns]"), []string{"x.yaml:8", "cannot act on service \"dns\"", "valid:"}},
		{"knob a fault does not take", replace("  - drop", "  - type: dns-servfail\n    services: [imaps]"), []string{"x.yaml:11", "takes no services"}},
		{"per-connection knob on a whole-service fault", replace("  - drop", "  - type: expired-certificate\n    one_in: 2"), []string{"x.yaml:11", "not per connection"}},
		{"bad customer service", replace("services: [submission, imaps]", "services: [submission, imap4]"), []string{"x.yaml", "customer.services", "unknown service \"imap4\"", "valid:"}},
		{"bad security", replace("security: none", "security: ssl"), []string{"customer.override.submission.security", "unknown security \"ssl\"", "none, starttls, tls"}},
		{"bad TLS version", replace(`max_tls: "1.2"`, `max_tls: "2.0"`), []string{"customer.client.max_tls", "1.0, 1.1, 1.2, 1.3"}},
		{"bad size", replace("size: 2MiB", "size: lots"), []string{"x.yaml:16", "size"}},
		{"bad name", replace("name: customer-1234", "name: Customer 1234"), []string{"x.yaml:1", "name", "lower-case"}},
		{"unknown secondary", replace("root_cause: TLS_CERT_EXPIRED", "root_cause: TLS_CERT_EXPIRED\nsecondary: [AUTH_FAILED, AUTH_FAIL]"),
			[]string{"x.yaml:5", "secondary[1]", "unknown root cause \"AUTH_FAIL\"", "did you mean AUTH_FAILED", "valid:"}},
		{"secondary is the primary", replace("root_cause: TLS_CERT_EXPIRED", "root_cause: TLS_CERT_EXPIRED\nsecondary: [TLS_CERT_EXPIRED]"),
			[]string{"x.yaml:5", "secondary[0]", "primary"}},
		{"secondary HEALTHY", replace("root_cause: TLS_CERT_EXPIRED", "root_cause: TLS_CERT_EXPIRED\nsecondary: [HEALTHY]"),
			[]string{"x.yaml:5", "secondary[0]", "HEALTHY"}},
		{"secondary twice", replace("root_cause: TLS_CERT_EXPIRED", "root_cause: TLS_CERT_EXPIRED\nsecondary: [AUTH_FAILED, AUTH_FAILED]"),
			[]string{"x.yaml:5", "secondary[1]", "twice"}},
		{"secondary not a list", replace("root_cause: TLS_CERT_EXPIRED", "root_cause: TLS_CERT_EXPIRED\nsecondary: {a: b}"),
			[]string{"x.yaml:5", "secondary"}},
		{"fault parameter out of range", replace("expired_for: 72h", "expired_for: -1h"), []string{"x.yaml:8", "expired_for must be positive"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := scenarios.Parse("x.yaml", []byte(tt.data))
			if err == nil {
				t.Fatalf("Parse(%s) = nil error, want one", tt.name)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Parse(%s) = %q, want it to contain %q", tt.name, err, w)
				}
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error spans lines: %q", err)
			}
		})
	}
}

// FuzzParse: no input makes the loader panic, and what it accepts is a
// valid scenario.
func FuzzParse(f *testing.F) {
	f.Add([]byte(goodScenario))
	cat, _ := scenarios.Catalog()
	for _, sc := range cat[:10] {
		f.Add([]byte("name: " + sc.Name + "\ntitle: t\nroot_cause: " + sc.RootCause + "\nstory: s\nfix: f\n"))
	}
	f.Add([]byte("faults:\n  - {type: drop, one_in: -1}\n"))
	f.Add([]byte("&a [*a, *a]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		sc, err := scenarios.Parse("fuzz.yaml", data)
		if err != nil {
			return
		}
		if sc.Name == "" || sc.RootCause == "" {
			t.Fatalf("accepted a scenario without name or root cause: %q", data)
		}
		if _, err := sc.LabFaults(); err != nil {
			t.Fatalf("accepted a scenario whose faults do not build: %v", err)
		}
	})
}
