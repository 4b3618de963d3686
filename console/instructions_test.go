package console

import (
	"os/exec"
	"strings"
	"testing"
)

// TestShellQuote: a quoted word reads back as itself in sh, whatever it
// holds (the curl lines carry passwords and addresses).
func TestShellQuote(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	for _, in := range []string{"plain", "alice@example.test:pw", "it's", `a"b`, "$(id)", "`id`", "a b\tc", "semi;colon", "back\\slash", "new\nline", "*", "", "!hist", "~"} {
		out, err := exec.Command(sh, "-c", "printf %s "+shellQuote(in)).Output()
		if err != nil {
			t.Fatalf("sh -c printf %s: %v", shellQuote(in), err)
		}
		if string(out) != in {
			t.Errorf("shellQuote(%q) = %s reads back as %q", in, shellQuote(in), out)
		}
	}
}

// TestCurlLines: the lines use the customer's settings (scheme from the
// security, the lab's DNS server for the lookup, the account), not the
// lab's real ones.
func TestCurlLines(t *testing.T) {
	s := settings{
		Accounts: []account{{Email: "alice@example.test", Username: "alice@example.test", Password: "p'w"}},
		Services: map[string]service{
			"submissions": {Host: "smtp.example.test", Port: 465, Security: "tls"},
			"pop3":        {Host: "mail.example.test", Port: 110, Security: "starttls"},
		},
	}
	got := strings.Join(curlLines(s, "127.0.0.1:5353"), "\n")
	for _, want := range []string{
		"dig +short -p 5353 @127.0.0.1 smtp.example.test A",
		"curl -v --url smtps://smtp.example.test:465 --cacert ca.pem --resolve smtp.example.test:465:$ADDR_smtp_example_test --user 'alice@example.test:p'\\''w'",
		"curl -v --url pop3://mail.example.test:110/ --ssl-reqd --cacert ca.pem --resolve mail.example.test:110:$ADDR_mail_example_test",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("curl lines lack %q:\n%s", want, got)
		}
	}
}
