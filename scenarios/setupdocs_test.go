package scenarios_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/xml"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/maillab/maillab/internal/golden"
	"github.com/maillab/maillab/lab"
	"github.com/maillab/maillab/scenarios"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// setupScenarios are the account set-up scenarios of the catalog.
var setupScenarios = []string{
	"autoconfig-stale", "autodiscover-foreign", "setup-nothing-published",
	"autoconfig-http-only", "autodiscover-loop", "srv-target-mismatch",
}

// TestSetupDocumentsGolden fetches, for each set-up scenario, what a
// wizard fetches (Thunderbird's autoconfig URLs over HTTPS and HTTP,
// Outlook's two Autodiscover POSTs, the RFC 6186 SRV records), through the
// lab's DNS and with the lab CA, without following redirects. Every XML
// document must pass the strict checks of its documented structure, and
// the whole exchange is kept as one golden per scenario under
// testdata/setup/ (ports replaced by their names).
func TestSetupDocumentsGolden(t *testing.T) {
	for _, name := range setupScenarios {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			sc, err := scenarios.Lookup(name)
			if err != nil {
				t.Fatal(err)
			}
			r, err := sc.Start(lab.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			got := fetchSetup(t, r)
			setupGolden(t, name+".txt", got)
		})
	}
}

// fetchSetup returns the transcript of a wizard's fetches on r's lab.
func fetchSetup(t *testing.T, r *scenarios.Running) []byte {
	t.Helper()
	s := r.Lab.Settings()
	d, domain, email := s.Discovery, r.Lab.Domain, s.Account0().Email
	resolver := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, s.Resolver)
	}}
	client := &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: r.Lab.CertPool()},
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				host, port, _ := net.SplitHostPort(addr)
				ips, err := resolver.LookupHost(ctx, host)
				if err != nil {
					return nil, err
				}
				return (&net.Dialer{Timeout: 3 * time.Second}).DialContext(ctx, network, net.JoinHostPort(ips[0], port))
			},
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	https, http1 := strconv.Itoa(d.HTTPSPort), strconv.Itoa(d.HTTPPort)
	q := "?emailaddress=" + url.QueryEscape(email)
	request := `<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"><Request><EMailAddress>` +
		email + `</EMailAddress><AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema></Request></Autodiscover>`
	fetches := []struct{ method, url, kind string }{
		{"GET", "https://" + net.JoinHostPort("autoconfig."+domain, https) + "/mail/config-v1.1.xml" + q, "autoconfig"},
		{"GET", "https://" + net.JoinHostPort(domain, https) + "/.well-known/autoconfig/mail/config-v1.1.xml" + q, "autoconfig"},
		{"GET", "http://" + net.JoinHostPort("autoconfig."+domain, http1) + "/mail/config-v1.1.xml" + q, "autoconfig"},
		{"POST", "https://" + net.JoinHostPort(domain, https) + lab.AutodiscoverPath, "autodiscover"},
		{"POST", "https://" + net.JoinHostPort("autodiscover."+domain, https) + lab.AutodiscoverPath, "autodiscover"},
	}
	var b bytes.Buffer
	for _, f := range fetches {
		fmt.Fprintf(&b, "== %s %s\n", f.method, f.url)
		var body io.Reader
		if f.method == "POST" {
			body = strings.NewReader(request)
		}
		req, err := http.NewRequest(f.method, f.url, body)
		if err != nil {
			t.Fatal(err)
		}
		if body != nil {
			req.Header.Set("Content-Type", "text/xml")
		}
		resp, err := client.Do(req)
		if err != nil {
			fmt.Fprintf(&b, "error: %s\n\n", fetchError(err))
			continue
		}
		doc, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if err != nil {
			t.Fatalf("read %s: %v", f.url, err)
		}
		fmt.Fprintf(&b, "%s %s\n", resp.Proto, resp.Status)
		if loc := resp.Header.Get("Location"); loc != "" {
			fmt.Fprintf(&b, "Location: %s\n", loc)
		}
		if resp.StatusCode == http.StatusOK {
			var problems []string
			if f.kind == "autoconfig" {
				problems = validateClientConfig(doc)
			} else {
				problems = validateAutodiscover(doc)
			}
			for _, p := range problems {
				t.Errorf("%s: %s", f.url, p)
			}
		}
		b.Write(doc)
		b.WriteString("\n")
	}
	for _, label := range []string{"_imaps._tcp", "_submission._tcp"} {
		name := label + "." + domain + "."
		fmt.Fprintf(&b, "== SRV %s\n", name)
		m := new(dns.Msg)
		m.SetQuestion(name, dns.TypeSRV)
		in, err := dns.Exchange(m, s.Resolver)
		if err != nil {
			t.Fatalf("SRV %s: %v", name, err)
		}
		fmt.Fprintf(&b, "%s\n", dns.RcodeToString[in.Rcode])
		for _, rr := range in.Answer {
			if srv, ok := rr.(*dns.SRV); ok {
				fmt.Fprintf(&b, "%d %d %d %s\n", srv.Priority, srv.Weight, srv.Port, srv.Target)
			}
		}
		b.WriteString("\n")
	}
	return portNames(b.Bytes(), r)
}

// fetchError is the class of a failed fetch, stable across runs.
func fetchError(err error) string {
	var dnsErr *net.DNSError
	switch {
	case errors.As(err, &dnsErr) && dnsErr.IsNotFound:
		return "no such host " + dnsErr.Name
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	}
	return err.Error()
}

// portNames replaces the lab's random ports by PORT:name.
func portNames(b []byte, r *scenarios.Running) []byte {
	s := r.Lab.Settings()
	ports := map[int]string{s.Discovery.HTTPSPort: "https", s.Discovery.HTTPPort: "http"}
	for name, svc := range s.Services {
		ports[svc.Port] = name
	}
	return regexp.MustCompile(`\b[1-9][0-9]{3,4}\b`).ReplaceAllFunc(b, func(m []byte) []byte {
		n, _ := strconv.Atoi(string(m))
		if name, ok := ports[n]; ok {
			return []byte("PORT:" + name)
		}
		return m
	})
}

func setupGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	golden.Check(t, filepath.Join("testdata", "setup", name), got, *update)
}

// node is an XML element as the validators see it.
type node struct {
	name     xml.Name
	attrs    map[string]string
	children []*node
	text     string
}

// parseTree reads one XML document into a tree of elements.
func parseTree(doc []byte) (*node, error) {
	dec := xml.NewDecoder(bytes.NewReader(doc))
	var stack []*node
	var root *node
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			n := &node{name: tok.Name, attrs: map[string]string{}}
			for _, a := range tok.Attr {
				n.attrs[a.Name.Local] = a.Value
			}
			if len(stack) > 0 {
				parent := stack[len(stack)-1]
				parent.children = append(parent.children, n)
			} else if root != nil {
				return nil, errors.New("more than one root element")
			} else {
				root = n
			}
			stack = append(stack, n)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 {
				stack[len(stack)-1].text += string(tok)
			}
		}
	}
	if root == nil {
		return nil, errors.New("no root element")
	}
	return root, nil
}

// rule is what the documented format allows inside one element: each
// child's least and most count (max 0: unbounded), and the values a
// child's text may take (none: any non-empty text).
type rule struct {
	children map[string][2]int
	values   map[string][]string
}

// check applies r to n's children and returns what breaks it; children
// without a rule of their own are checked for text only.
func (r rule) check(path string, n *node, rules map[string]rule) []string {
	var problems []string
	count := map[string]int{}
	for _, c := range n.children {
		count[c.name.Local]++
		if _, ok := r.children[c.name.Local]; !ok {
			problems = append(problems, fmt.Sprintf("%s: element <%s> is not in the documented format", path, c.name.Local))
			continue
		}
		if sub, ok := rules[c.name.Local]; ok {
			problems = append(problems, sub.check(path+"/"+c.name.Local, c, rules)...)
			continue
		}
		text := strings.TrimSpace(c.text)
		if allowed, ok := r.values[c.name.Local]; ok && !slices.Contains(allowed, text) {
			problems = append(problems, fmt.Sprintf("%s/%s: %q is not one of %v", path, c.name.Local, text, allowed))
		} else if text == "" {
			problems = append(problems, fmt.Sprintf("%s/%s: empty", path, c.name.Local))
		}
	}
	names := make([]string, 0, len(r.children))
	for name := range r.children {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		lim := r.children[name]
		if count[name] < lim[0] {
			problems = append(problems, fmt.Sprintf("%s: %d <%s>, want at least %d", path, count[name], name, lim[0]))
		}
		if lim[1] > 0 && count[name] > lim[1] {
			problems = append(problems, fmt.Sprintf("%s: %d <%s>, want at most %d", path, count[name], name, lim[1]))
		}
	}
	return problems
}

// Mozilla's clientConfig 1.1 (wiki.mozilla.org/Thunderbird:Autoconfiguration:ConfigFileFormat):
// the elements a mail provider's document holds, with their counts and
// the values Thunderbird's readFromXML accepts.
var (
	serverRule = func() rule {
		return rule{
			children: map[string][2]int{"hostname": {1, 1}, "port": {1, 1}, "socketType": {1, 1}, "authentication": {1, 0}, "username": {0, 1}, "password": {0, 1}, "pop3": {0, 1}},
			values: map[string][]string{
				"socketType":     {"plain", "SSL", "STARTTLS"},
				"authentication": {"password-cleartext", "plain", "password-encrypted", "secure", "NTLM", "GSSAPI", "client-IP-address", "TLS-client-cert", "OAuth2", "smtp-after-pop", "none"},
			},
		}
	}
	autoconfigRules = map[string]rule{
		"emailProvider": {
			children: map[string][2]int{"domain": {1, 0}, "displayName": {1, 1}, "displayShortName": {0, 1}, "incomingServer": {1, 0}, "outgoingServer": {1, 0}, "documentation": {0, 0}, "enable": {0, 0}},
		},
		"incomingServer": serverRule(),
		"outgoingServer": serverRule(),
	}
)

// validateClientConfig checks an autoconfig document against clientConfig
// 1.1: the root, its version, the provider's id and every server's
// elements, type, port and values.
func validateClientConfig(doc []byte) []string {
	root, err := parseTree(doc)
	if err != nil {
		return []string{"not XML: " + err.Error()}
	}
	var problems []string
	if root.name.Local != "clientConfig" || root.attrs["version"] != "1.1" {
		return []string{fmt.Sprintf("root <%s version=%q>, want <clientConfig version=\"1.1\">", root.name.Local, root.attrs["version"])}
	}
	top := rule{children: map[string][2]int{"emailProvider": {1, 1}, "oAuth2": {0, 1}, "webMail": {0, 1}, "addressBook": {0, 0}, "calendar": {0, 0}}}
	problems = append(problems, top.check("clientConfig", root, autoconfigRules)...)
	for _, p := range root.children {
		if p.name.Local != "emailProvider" {
			continue
		}
		if p.attrs["id"] == "" {
			problems = append(problems, "emailProvider: no id attribute")
		}
		for _, s := range p.children {
			want := map[string][]string{"incomingServer": {"imap", "pop3"}, "outgoingServer": {"smtp"}}[s.name.Local]
			if want == nil {
				continue
			}
			if !slices.Contains(want, s.attrs["type"]) {
				problems = append(problems, fmt.Sprintf("%s type %q, want one of %v", s.name.Local, s.attrs["type"], want))
			}
			for _, c := range s.children {
				if c.name.Local == "port" {
					if n, err := strconv.Atoi(strings.TrimSpace(c.text)); err != nil || n < 1 || n > 65535 {
						problems = append(problems, fmt.Sprintf("%s port %q is not a port number", s.name.Local, c.text))
					}
				}
			}
		}
	}
	return problems
}

// Autodiscover POX response schemas ([MS-OXDSCLI] §2.2.4.1).
const (
	autodiscoverNS = "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006"
	outlookNS      = "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"
)

var onOff = []string{"on", "off"}

var autodiscoverRules = map[string]rule{
	"Response": {children: map[string][2]int{"User": {0, 1}, "Account": {0, 1}, "Error": {0, 1}}},
	"User":     {children: map[string][2]int{"DisplayName": {0, 1}, "LegacyDN": {0, 1}, "AutoDiscoverSMTPAddress": {0, 1}, "DeploymentId": {0, 1}}},
	"Account": {
		children: map[string][2]int{"AccountType": {1, 1}, "Action": {1, 1}, "RedirectUrl": {0, 1}, "RedirectAddr": {0, 1}, "Protocol": {0, 0}, "Image": {0, 1}, "ServiceHome": {0, 1}},
		values:   map[string][]string{"AccountType": {"email"}, "Action": {"settings", "redirectUrl", "redirectAddr"}},
	},
	"Protocol": {
		children: map[string][2]int{"Type": {1, 1}, "Server": {1, 1}, "Port": {1, 1}, "LoginName": {0, 1}, "DomainRequired": {0, 1}, "DomainName": {0, 1}, "SPA": {0, 1}, "SSL": {0, 1}, "Encryption": {0, 1}, "AuthRequired": {0, 1}, "UsePOPAuth": {0, 1}, "SMTPLast": {0, 1}, "TTL": {0, 1}},
		values: map[string][]string{"Type": {"IMAP", "POP3", "SMTP"}, "DomainRequired": onOff, "SPA": onOff, "SSL": onOff,
			"Encryption": {"None", "SSL", "TLS", "Auto"}, "AuthRequired": onOff, "UsePOPAuth": onOff, "SMTPLast": onOff},
	},
	"Error": {children: map[string][2]int{"ErrorCode": {1, 1}, "Message": {1, 1}, "DebugData": {0, 1}}},
}

// validateAutodiscover checks an Autodiscover POX response: the two
// namespaces, an Account or an Error, and for an Account the elements its
// Action requires (settings: Protocols with a port; redirectUrl: an HTTPS
// RedirectUrl; redirectAddr: a RedirectAddr).
func validateAutodiscover(doc []byte) []string {
	root, err := parseTree(doc)
	if err != nil {
		return []string{"not XML: " + err.Error()}
	}
	if root.name.Local != "Autodiscover" || root.name.Space != autodiscoverNS {
		return []string{fmt.Sprintf("root {%s}%s, want {%s}Autodiscover", root.name.Space, root.name.Local, autodiscoverNS)}
	}
	if len(root.children) != 1 || root.children[0].name.Local != "Response" {
		return []string{"Autodiscover: want exactly one <Response>"}
	}
	resp := root.children[0]
	var problems []string
	if resp.name.Space != outlookNS && !slices.ContainsFunc(resp.children, func(c *node) bool { return c.name.Local == "Error" }) {
		problems = append(problems, fmt.Sprintf("Response namespace %q, want %q", resp.name.Space, outlookNS))
	}
	problems = append(problems, autodiscoverRules["Response"].check("Response", resp, autodiscoverRules)...)
	var account *node
	var hasError bool
	for _, c := range resp.children {
		switch c.name.Local {
		case "Account":
			account = c
		case "Error":
			hasError = true
		}
	}
	if (account == nil) == !hasError {
		problems = append(problems, "Response: want an <Account> or an <Error>, exactly one of them")
	}
	if account == nil {
		return problems
	}
	child := func(n *node, name string) []*node {
		var out []*node
		for _, c := range n.children {
			if c.name.Local == name {
				out = append(out, c)
			}
		}
		return out
	}
	text := func(n *node, name string) string {
		if c := child(n, name); len(c) > 0 {
			return strings.TrimSpace(c[0].text)
		}
		return ""
	}
	switch text(account, "Action") {
	case "settings":
		if len(child(account, "Protocol")) == 0 {
			problems = append(problems, "Account: Action settings without a <Protocol>")
		}
		for _, p := range child(account, "Protocol") {
			if n, err := strconv.Atoi(text(p, "Port")); err != nil || n < 1 || n > 65535 {
				problems = append(problems, fmt.Sprintf("Protocol %s: Port %q is not a port number", text(p, "Type"), text(p, "Port")))
			}
		}
	case "redirectUrl":
		if u, err := url.Parse(text(account, "RedirectUrl")); err != nil || u.Scheme != "https" || u.Host == "" {
			problems = append(problems, fmt.Sprintf("Account: RedirectUrl %q is not an HTTPS URL", text(account, "RedirectUrl")))
		}
	case "redirectAddr":
		if !strings.Contains(text(account, "RedirectAddr"), "@") {
			problems = append(problems, fmt.Sprintf("Account: RedirectAddr %q is not an address", text(account, "RedirectAddr")))
		}
	}
	return problems
}

// TestValidators: the strict checks catch what the documented formats
// forbid, and pass the lab's own documents (the goldens above).
func TestValidators(t *testing.T) {
	for _, tc := range []struct {
		name, doc    string
		autodiscover bool
		want         string
	}{
		{"clientConfig version", `<clientConfig version="1.0"><emailProvider id="x"/></clientConfig>`, false, "want <clientConfig"},
		{"no outgoing", `<clientConfig version="1.1"><emailProvider id="x"><domain>x</domain><displayName>x</displayName><incomingServer type="imap"><hostname>h</hostname><port>993</port><socketType>SSL</socketType><authentication>password-cleartext</authentication></incomingServer></emailProvider></clientConfig>`, false, "0 <outgoingServer>, want at least 1"},
		{"socketType", `<clientConfig version="1.1"><emailProvider id="x"><domain>x</domain><displayName>x</displayName><incomingServer type="imap"><hostname>h</hostname><port>993</port><socketType>TLS</socketType><authentication>password-cleartext</authentication></incomingServer><outgoingServer type="smtp"><hostname>h</hostname><port>465</port><socketType>SSL</socketType><authentication>password-cleartext</authentication></outgoingServer></emailProvider></clientConfig>`, false, `"TLS" is not one of`},
		{"port", `<clientConfig version="1.1"><emailProvider id="x"><domain>x</domain><displayName>x</displayName><incomingServer type="imap"><hostname>h</hostname><port>99999</port><socketType>SSL</socketType><authentication>password-cleartext</authentication></incomingServer><outgoingServer type="smtp"><hostname>h</hostname><port>465</port><socketType>SSL</socketType><authentication>password-cleartext</authentication></outgoingServer></emailProvider></clientConfig>`, false, "is not a port number"},
		{"unknown element", `<clientConfig version="1.1"><emailProvider id="x"><domain>x</domain><displayName>x</displayName><server/><incomingServer type="imap"><hostname>h</hostname><port>993</port><socketType>SSL</socketType><authentication>password-cleartext</authentication></incomingServer><outgoingServer type="smtp"><hostname>h</hostname><port>465</port><socketType>SSL</socketType><authentication>password-cleartext</authentication></outgoingServer></emailProvider></clientConfig>`, false, "<server> is not in the documented format"},
		{"no id", `<clientConfig version="1.1"><emailProvider><domain>x</domain><displayName>x</displayName><incomingServer type="imap"><hostname>h</hostname><port>993</port><socketType>SSL</socketType><authentication>password-cleartext</authentication></incomingServer><outgoingServer type="smtp"><hostname>h</hostname><port>465</port><socketType>SSL</socketType><authentication>password-cleartext</authentication></outgoingServer></emailProvider></clientConfig>`, false, "no id attribute"},
		{"autodiscover namespace", `<Autodiscover><Response/></Autodiscover>`, true, "want {http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006}Autodiscover"},
		{"autodiscover redirect http", `<Autodiscover xmlns="` + autodiscoverNS + `"><Response xmlns="` + outlookNS + `"><Account><AccountType>email</AccountType><Action>redirectUrl</Action><RedirectUrl>http://x/a</RedirectUrl></Account></Response></Autodiscover>`, true, "is not an HTTPS URL"},
		{"autodiscover protocol type", `<Autodiscover xmlns="` + autodiscoverNS + `"><Response xmlns="` + outlookNS + `"><Account><AccountType>email</AccountType><Action>settings</Action><Protocol><Type>IMAPS</Type><Server>h</Server><Port>993</Port></Protocol></Account></Response></Autodiscover>`, true, `"IMAPS" is not one of`},
		{"autodiscover no port", `<Autodiscover xmlns="` + autodiscoverNS + `"><Response xmlns="` + outlookNS + `"><Account><AccountType>email</AccountType><Action>settings</Action><Protocol><Type>IMAP</Type><Server>h</Server></Protocol></Account></Response></Autodiscover>`, true, "0 <Port>, want at least 1"},
		{"autodiscover neither", `<Autodiscover xmlns="` + autodiscoverNS + `"><Response xmlns="` + outlookNS + `"></Response></Autodiscover>`, true, "exactly one of them"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			if tc.autodiscover {
				got = validateAutodiscover([]byte(tc.doc))
			} else {
				got = validateClientConfig([]byte(tc.doc))
			}
			if !slices.ContainsFunc(got, func(p string) bool { return strings.Contains(p, tc.want) }) {
				t.Errorf("validate(%s) = %q, want a problem containing %q", tc.name, got, tc.want)
			}
		})
	}
}

// FuzzValidateSetupDocuments: the validators never panic on any bytes a
// web server returns, and agree with themselves.
func FuzzValidateSetupDocuments(f *testing.F) {
	for _, name := range setupScenarios {
		b, err := os.ReadFile(filepath.Join("testdata", "setup", name+".txt"))
		if err != nil {
			f.Fatal(err)
		}
		for _, part := range strings.Split(string(b), "\n== ") {
			if i := strings.Index(part, "<?xml"); i >= 0 {
				f.Add([]byte(part[i:]))
			}
		}
	}
	f.Add([]byte(`<clientConfig version="1.1"><emailProvider id="x"></emailProvider></clientConfig>`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		a, b := validateClientConfig(doc), validateAutodiscover(doc)
		if !slices.Equal(a, validateClientConfig(doc)) || !slices.Equal(b, validateAutodiscover(doc)) {
			t.Fatal("validators are not deterministic")
		}
	})
}
