package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/maillab/maillab/settings"
)

// securityLabel is how mail clients name a security mode.
func securityLabel(sec string) string {
	switch sec {
	case settings.SecurityTLS:
		return "SSL/TLS"
	case settings.SecurityStartTLS:
		return "STARTTLS"
	}
	return "no encryption"
}

var serviceNotes = map[string]string{
	"smtp":        "outgoing, relay port (no login; delivers to local mailboxes)",
	"submission":  "outgoing (recommended)",
	"submissions": "outgoing",
	"imap":        "incoming IMAP",
	"imaps":       "incoming IMAP (recommended)",
	"pop3":        "incoming POP3",
	"pop3s":       "incoming POP3",
}

// printSettings prints settings for a person to type into Thunderbird or
// Outlook.
func printSettings(w io.Writer, s *settings.Settings) {
	if len(s.Accounts) > 0 {
		fmt.Fprintln(w, "Accounts (user name = email address; authentication: normal password):")
		tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
		for _, a := range s.Accounts {
			user := a.Username
			if user == "" {
				user = "(none: the client does not log in)"
			}
			pass := a.Password
			if pass == "" {
				pass = "(none)"
			}
			fmt.Fprintf(tw, "  %s\tuser name: %s\tpassword: %s\n", a.Email, user, pass)
		}
		tw.Flush()
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w, "Servers:")
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  SERVICE\tHOST\tPORT\tSECURITY\t")
	hosts := map[string]string{}
	for _, name := range s.SortedServiceNames() {
		svc := s.Services[name]
		fmt.Fprintf(tw, "  %s\t%s\t%d\t%s\t%s\n", name, svc.Host, svc.Port, securityLabel(svc.Security), serviceNotes[name])
		if svc.Address != "" && svc.Address != svc.Host {
			hosts[svc.Host] = svc.Address
		}
	}
	tw.Flush()
	fmt.Fprintln(w)
	if s.CAFile != "" {
		fmt.Fprintf(w, "Trust the lab's certificate authority: %s\n", s.CAFile)
		fmt.Fprintln(w, "  (Thunderbird: Settings > Privacy & Security > Manage Certificates > Authorities > Import;")
		fmt.Fprintln(w, "   curl: --cacert; openssl s_client: -CAfile)")
	}
	if s.Resolver != "" {
		fmt.Fprintf(w, "DNS server: %s (dig @%s -p %s mail.%s)\n", s.Resolver, hostOf(s.Resolver), portOf(s.Resolver), s.Domain)
	}
	if d := s.Discovery; d != nil {
		fmt.Fprintln(w, "Account set-up documents (what a client's wizard looks up; names resolve through the lab's DNS):")
		fmt.Fprintf(w, "  Thunderbird autoconfig: %s\n", d.Autoconfig)
		fmt.Fprintf(w, "                          %s\n", d.WellKnown)
		fmt.Fprintf(w, "  Outlook Autodiscover:   %s (POST)\n", d.Autodiscover)
		fmt.Fprintf(w, "  also over plain HTTP on port %d; SRV records: _imaps._tcp.%s and the others of RFC 6186/8314\n", d.HTTPPort, s.Domain)
	}
	if len(hosts) > 0 {
		var pairs []string
		for h, a := range hosts {
			pairs = append(pairs, a+" "+h)
		}
		fmt.Fprintf(w, "Host names resolve through the lab's DNS only. A client on the system resolver can use the\n")
		fmt.Fprintf(w, "address instead of the name (the certificate names the address too) or add to /etc/hosts: %s\n", strings.Join(uniq(pairs), "; "))
	}
	if s.Client != nil {
		if s.Client.MaxTLS != "" {
			fmt.Fprintf(w, "Client limit: highest TLS version %s\n", s.Client.MaxTLS)
		}
		if len(s.Client.AuthMechs) > 0 {
			fmt.Fprintf(w, "Client limit: authentication methods %s only\n", strings.Join(s.Client.AuthMechs, ", "))
		}
		if s.Client.SendTo != "" {
			fmt.Fprintf(w, "The customer sends to: %s\n", s.Client.SendTo)
		}
		if s.Client.MessageFile != "" {
			fmt.Fprintf(w, "The message the customer sends: %s\n", s.Client.MessageFile)
		}
	}
}

func uniq(in []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

func hostOf(hp string) string {
	i := strings.LastIndex(hp, ":")
	if i < 0 {
		return hp
	}
	return strings.Trim(hp[:i], "[]")
}

func portOf(hp string) string {
	i := strings.LastIndex(hp, ":")
	if i < 0 {
		return "53"
	}
	return hp[i+1:]
}
