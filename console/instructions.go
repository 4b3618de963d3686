package console

import (
	"fmt"
	"strings"
)

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("@%+=:,./-_", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// curlLines are the commands that try the customer's settings with curl:
// the lab's names resolve only through the DNS server of the settings
// (the lab's, unless the scenario gives the customer another), so the
// first line asks it (dig) and curl is pinned to that answer with --resolve. A lab
// whose fault is in DNS fails already there, as a mail client would.
func curlLines(s settings, dns string) []string {
	if dns == "" {
		dns = s.Resolver
	}
	var user, pass, email string
	if len(s.Accounts) > 0 {
		user, pass, email = s.Accounts[0].Username, s.Accounts[0].Password, s.Accounts[0].Email
	}
	dnsHost, dnsPort := dns, "53"
	if i := strings.LastIndex(dns, ":"); i >= 0 {
		dnsHost, dnsPort = dns[:i], dns[i+1:]
	}
	var lines []string
	looked := map[string]bool{}
	// A name that DNS server does not resolve (or a DNS server that does
	// not answer) stops the commands there, saying so: that is the
	// customer's failure.
	lookup := func(host string) string {
		v := "ADDR_" + strings.NewReplacer(".", "_", "-", "_").Replace(host)
		if !looked[host] {
			looked[host] = true
			lines = append(lines, fmt.Sprintf("%s=$(dig +short +time=3 +tries=1 -p %s @%s %s A | grep -E '^[0-9.]+$' | tail -n 1)", v, dnsPort, dnsHost, shellQuote(host)))
		}
		return "${" + v + ":?no address for " + host + " from DNS server " + dns + "}"
	}
	for _, name := range []string{"submission", "submissions", "smtp"} {
		sv, ok := s.Services[name]
		if !ok {
			continue
		}
		scheme, tls := "smtp", ""
		switch sv.Security {
		case "tls":
			scheme = "smtps"
		case "starttls":
			tls = " --ssl-reqd"
		}
		addr := lookup(sv.Host)
		lines = append(lines, "printf 'Subject: test\\r\\n\\r\\nhello\\r\\n' > mail.txt")
		lines = append(lines, fmt.Sprintf("curl -v --url %s://%s:%d%s --cacert ca.pem --resolve %s:%d:%s --user %s --mail-from %s --mail-rcpt %s --upload-file mail.txt",
			scheme, sv.Host, sv.Port, tls, sv.Host, sv.Port, addr, shellQuote(user+":"+pass), shellQuote(email), shellQuote(email)))
		break
	}
	for _, name := range []string{"imaps", "imap", "pop3s", "pop3"} {
		sv, ok := s.Services[name]
		if !ok {
			continue
		}
		scheme, tls, path := strings.TrimSuffix(name, "s"), "", "/INBOX"
		if strings.HasPrefix(name, "pop3") {
			scheme, path = "pop3", "/"
		}
		switch sv.Security {
		case "tls":
			scheme += "s"
		case "starttls":
			tls = " --ssl-reqd"
		}
		addr := lookup(sv.Host)
		lines = append(lines, fmt.Sprintf("curl -v --url %s://%s:%d%s%s --cacert ca.pem --resolve %s:%d:%s --user %s",
			scheme, sv.Host, sv.Port, path, tls, sv.Host, sv.Port, addr, shellQuote(user+":"+pass)))
		break
	}
	return lines
}
