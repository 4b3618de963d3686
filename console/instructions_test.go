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
		"ADDR_smtp_example_test=$(dig +short +time=3 +tries=1 -p 5353 @127.0.0.1 smtp.example.test A | grep -E '^[0-9.]+$' | tail -n 1)",
		"curl -v --url smtps://smtp.example.test:465 --cacert ca.pem --resolve smtp.example.test:465:${ADDR_smtp_example_test:?no address for smtp.example.test from DNS server 127.0.0.1:5353} --user 'alice@example.test:p'\\''w'",
		"curl -v --url pop3://mail.example.test:110/ --ssl-reqd --cacert ca.pem --resolve mail.example.test:110:${ADDR_mail_example_test:?",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("curl lines lack %q:\n%s", want, got)
		}
	}
}

// TestCurlLinesStopAtDNS: when the lab's DNS server gives no address (a
// DNS fault), sh stops before curl and says why.
func TestCurlLinesStopAtDNS(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	s := settings{Accounts: []account{{Email: "a@example.test", Username: "a", Password: "p"}},
		Services: map[string]service{"submission": {Host: "mail.example.test", Port: 587, Security: "starttls"}}}
	lines := curlLines(s, "127.0.0.1:5353")
	// Replace dig and curl by stand-ins: dig answers nothing, curl must
	// not run.
	script := "dig() { :; }\ncurl() { echo CURL RAN; }\n" + strings.Join(lines, "\n")
	cmd := exec.Command(sh, "-c", script)
	cmd.Dir = t.TempDir() // the lines write mail.txt
	out, err := cmd.CombinedOutput()
	if err == nil || strings.Contains(string(out), "CURL RAN") || !strings.Contains(string(out), "no address for mail.example.test from DNS server 127.0.0.1:5353") {
		t.Errorf("sh with an empty DNS answer: err %v, output %q; want a stop naming the host", err, out)
	}
}

// TestCurlLinesResolve: with the lab DNS answering (after a CNAME line,
// which dig +short also prints), curl is pinned to the address.
func TestCurlLinesResolve(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	s := settings{Accounts: []account{{Email: "a@example.test", Username: "a", Password: "p"}},
		Services: map[string]service{"submission": {Host: "smtp.example.test", Port: 587, Security: "starttls"}}}
	script := "dig() { echo mail.example.test.; echo 127.0.0.9; }\ncurl() { echo \"$@\"; }\n" + strings.Join(curlLines(s, "127.0.0.1:5353"), "\n")
	cmd := exec.Command(sh, "-c", script)
	cmd.Dir = t.TempDir() // the lines write mail.txt
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--resolve smtp.example.test:587:127.0.0.9 ") {
		t.Errorf("sh: err %v, output %q; want curl --resolve smtp.example.test:587:127.0.0.9", err, out)
	}
}
