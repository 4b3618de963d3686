package lab

import (
	"bytes"
	"crypto/tls"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/maillab/maillab/internal/netx"
	"github.com/maillab/maillab/servers/transcript"
	"github.com/maillab/maillab/settings"
)

// Account set-up documents: what a mail client's account wizard looks up
// before it connects. Thunderbird asks Mozilla autoconfig
// (https://autoconfig.DOMAIN/mail/config-v1.1.xml?emailaddress=...) and
// the domain's well-known URL
// (https://DOMAIN/.well-known/autoconfig/mail/config-v1.1.xml); Outlook
// POSTs an Autodiscover request (the "plain old XML" schema of Exchange
// 2007) to https://autodiscover.DOMAIN/autodiscover/autodiscover.xml or
// https://DOMAIN/autodiscover/autodiscover.xml. Each provider of the lab
// publishes both over HTTP and HTTPS (the provider's certificate names
// the web hosts) on its own address, beside the RFC 6186 SRV records it
// already has.

// Paths of the set-up documents.
const (
	AutoconfigPath   = "/mail/config-v1.1.xml"
	WellKnownPath    = "/.well-known/autoconfig" + AutoconfigPath
	AutodiscoverPath = "/autodiscover/autodiscover.xml"
)

// Autodiscover schemas (Exchange 2007 POX Autodiscover).
const (
	autodiscoverResponseNS = "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006"
	// AutodiscoverOutlookSchema is the response schema Outlook asks for in
	// AcceptableResponseSchema and the lab answers in.
	AutodiscoverOutlookSchema = "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"
)

// maxAutodiscoverRequest bounds an Autodiscover request body; a real one
// is a few hundred bytes.
const maxAutodiscoverRequest = 64 << 10

// Setup is what a provider publishes for account set-up. Between New and
// Start faults may change it (a stale document, no HTTPS, a redirect).
type Setup struct {
	// Hosts are the web host names: autoconfig.DOMAIN, autodiscover.DOMAIN
	// and DOMAIN itself. They resolve to the provider's address in the
	// lab's DNS and are named by its certificate.
	Hosts []string
	// HTTPPort and HTTPSPort are where the documents are served.
	HTTPPort, HTTPSPort int
	// Publish, when set, replaces the services the documents list (e.g.
	// stale ones still naming the servers of before a migration); nil
	// lists what the provider really serves.
	Publish []SetupService
	// NoHTTP and NoHTTPS refuse connections on that web port instead of
	// serving (a provider that publishes over one scheme only, or not
	// at all).
	NoHTTP, NoHTTPS bool
	// Middleware wraps the set-up handler in order (the first sees a
	// request first), for faults that redirect, refuse or hide documents.
	Middleware []func(http.Handler) http.Handler

	httpLn, httpsLn net.Listener
}

// bindSetup binds the provider's web ports.
func (p *Provider) bindSetup(l *Lab, ports map[string]int) error {
	p.Setup = &Setup{Hosts: []string{"autoconfig." + p.Domain, "autodiscover." + p.Domain, p.Domain}}
	for _, name := range []string{"http", "https"} {
		ln, err := listenTCP(p.IP, ports[name])
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		l.onClose(ln.Close)
		port := ln.Addr().(*net.TCPAddr).Port
		if name == "http" {
			p.Setup.httpLn, p.Setup.HTTPPort = ln, port
		} else {
			p.Setup.httpsLn, p.Setup.HTTPSPort = ln, port
		}
	}
	return nil
}

// startSetup serves the set-up documents on the provider's web ports.
func (l *Lab) startSetup(p *Provider) error {
	s := p.Setup
	var h http.Handler = &setupHandler{lab: l, p: p}
	for i := len(s.Middleware) - 1; i >= 0; i-- {
		h = s.Middleware[i](h)
	}
	for _, scheme := range []string{"http", "https"} {
		ln := s.httpLn
		if scheme == "https" {
			ln = s.httpsLn
		}
		if (scheme == "http" && s.NoHTTP) || (scheme == "https" && s.NoHTTPS) {
			r, err := netx.RefuserBeside(ln)
			if err != nil {
				return fmt.Errorf("%s: %w", scheme, err)
			}
			ln.Close()
			l.onClose(r.Close)
			continue
		}
		if scheme == "https" {
			// net/http does the handshake in the connection's goroutine.
			ln = tls.NewListener(s.httpsLn, tlsConfig(p.Certificate, 0, 0))
		}
		srv := &http.Server{
			Handler:           logRequests(l, p, scheme, h),
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       30 * time.Second,
			WriteTimeout:      30 * time.Second,
			IdleTimeout:       60 * time.Second,
			MaxHeaderBytes:    16 << 10,
		}
		l.mu.Lock()
		l.shutdown = append(l.shutdown, srv.Shutdown)
		l.closers = append(l.closers, srv.Close)
		l.mu.Unlock()
		l.goServe(scheme, func() error {
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		})
	}
	return nil
}

// setupHandler serves the generated documents.
type setupHandler struct {
	lab *Lab
	p   *Provider
}

func (h *setupHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := strings.ToLower(r.URL.Path)
	switch path {
	case AutoconfigPath, WellKnownPath:
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		// The document is the domain's, whoever asks
		// (?emailaddress= is for providers that answer per user).
		body := AutoconfigXML(h.p.Domain, h.p.SetupServices())
		w.Header().Set("Content-Type", "text/xml; charset=utf-8")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body)
	case AutodiscoverPath:
		h.autodiscover(w, r)
	default:
		http.NotFound(w, r)
	}
}

// SetupServices is what the documents list: Setup.Publish, or what the
// provider really serves, in settings order.
func (p *Provider) SetupServices() []SetupService {
	if p.Setup.Publish != nil {
		return p.Setup.Publish
	}
	var out []SetupService
	for _, name := range p.Order {
		svc := p.Services[name]
		out = append(out, SetupService{Name: name, Service: settings.Service{Host: svc.Host, Port: svc.Port, Security: svc.Security}})
	}
	return out
}

// SetupService is one service as a set-up document lists it.
type SetupService struct {
	// Name is the settings service name, e.g. "imaps".
	Name string
	settings.Service
}

// autodiscoverRequest is the POX request Outlook sends.
type autodiscoverRequest struct {
	XMLName xml.Name `xml:"Autodiscover"`
	Request struct {
		EMailAddress             string `xml:"EMailAddress"`
		AcceptableResponseSchema string `xml:"AcceptableResponseSchema"`
	} `xml:"Request"`
}

func (h *setupHandler) autodiscover(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	if r.Method != http.MethodPost {
		// Exchange answers a GET with its "Invalid Request" error document.
		w.Write(AutodiscoverErrorXML(600, "Invalid Request"))
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxAutodiscoverRequest+1))
	if err != nil {
		return
	}
	if len(body) > maxAutodiscoverRequest {
		http.Error(w, "request too large", http.StatusRequestEntityTooLarge)
		return
	}
	var req autodiscoverRequest
	if err := xml.Unmarshal(body, &req); err != nil || req.Request.EMailAddress == "" {
		w.Write(AutodiscoverErrorXML(600, "Invalid Request"))
		return
	}
	if schema := req.Request.AcceptableResponseSchema; schema != "" && schema != AutodiscoverOutlookSchema {
		w.Write(AutodiscoverErrorXML(601, "Requested schema version not supported"))
		return
	}
	email := req.Request.EMailAddress
	at := strings.LastIndexByte(email, '@')
	if at < 0 || !strings.EqualFold(email[at+1:], h.p.Domain) {
		w.Write(AutodiscoverErrorXML(500, "The e-mail address cannot be found."))
		return
	}
	w.Write(AutodiscoverXML(email, h.p.SetupServices()))
}

// logRequests notes every set-up request in the transcript, so a trainer
// sees which documents a client's wizard fetched.
func logRequests(l *Lab, p *Provider, scheme string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		addr, _ := net.ResolveTCPAddr("tcp", r.RemoteAddr)
		var remote net.Addr
		if addr != nil {
			remote = addr
		}
		ts := transcript.NewSession(l.sink, scheme, remote)
		ts.Log(transcript.Client, fmt.Sprintf("%s %s://%s%s", r.Method, scheme, r.Host, r.URL.RequestURI()))
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		note := ""
		if loc := rec.Header().Get("Location"); loc != "" {
			note = " → " + loc
		}
		ts.Log(transcript.Server, fmt.Sprintf("%d %s (%s, %d bytes)%s", rec.status, http.StatusText(rec.status), p.Domain, rec.n, note))
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
	n      int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	n, err := s.ResponseWriter.Write(b)
	s.n += n
	return n, err
}

// setupSettings says where the provider's set-up documents are.
func (s *Setup) settings(domain string) *settings.Discovery {
	https := func(host string, port int, path string) string {
		u := url.URL{Scheme: "https", Host: host, Path: path}
		if port != 443 {
			u.Host = net.JoinHostPort(host, strconv.Itoa(port))
		}
		return u.String()
	}
	return &settings.Discovery{
		Autoconfig:   https("autoconfig."+domain, s.HTTPSPort, AutoconfigPath),
		WellKnown:    https(domain, s.HTTPSPort, WellKnownPath),
		Autodiscover: https("autodiscover."+domain, s.HTTPSPort, AutodiscoverPath),
		HTTPPort:     s.HTTPPort,
		HTTPSPort:    s.HTTPSPort,
	}
}

// AutoconfigXML is a Mozilla autoconfig document (clientConfig version
// 1.1) for domain listing services: IMAP and POP3 as incomingServer,
// SMTP submission as outgoingServer, implicit TLS first as Thunderbird
// prefers. The relay port (smtp, no login) is not listed: clients must
// not submit there.
func AutoconfigXML(domain string, services []SetupService) []byte {
	var b bytes.Buffer
	b.WriteString(xml.Header)
	b.WriteString(`<clientConfig version="1.1">` + "\n")
	fmt.Fprintf(&b, "  <emailProvider id=%q>\n", xmlEscape(domain))
	fmt.Fprintf(&b, "    <domain>%s</domain>\n", xmlEscape(domain))
	fmt.Fprintf(&b, "    <displayName>%s mail (maillab)</displayName>\n", xmlEscape(domain))
	fmt.Fprintf(&b, "    <displayShortName>%s</displayShortName>\n", xmlEscape(domain))
	write := func(elem, typ string, s settings.Service) {
		fmt.Fprintf(&b, "    <%s type=%q>\n", elem, typ)
		fmt.Fprintf(&b, "      <hostname>%s</hostname>\n", xmlEscape(s.Host))
		fmt.Fprintf(&b, "      <port>%d</port>\n", s.Port)
		fmt.Fprintf(&b, "      <socketType>%s</socketType>\n", autoconfigSocketType(s.Security))
		b.WriteString("      <authentication>password-cleartext</authentication>\n")
		b.WriteString("      <username>%EMAILADDRESS%</username>\n")
		fmt.Fprintf(&b, "    </%s>\n", elem)
	}
	for _, proto := range []string{settings.ProtocolIMAP, settings.ProtocolPOP3} {
		for _, s := range setupOrder(services, proto) {
			write("incomingServer", proto, s.Service)
		}
	}
	for _, s := range setupOrder(services, settings.ProtocolSMTP) {
		if s.Name == "smtp" {
			continue
		}
		write("outgoingServer", "smtp", s.Service)
	}
	b.WriteString("  </emailProvider>\n</clientConfig>\n")
	return b.Bytes()
}

// setupOrder lists the services of one protocol, implicit TLS first, then
// STARTTLS, then plaintext.
func setupOrder(services []SetupService, proto string) []SetupService {
	var out []SetupService
	for _, sec := range []string{settings.SecurityTLS, settings.SecurityStartTLS, settings.SecurityNone} {
		for _, s := range services {
			info, ok := settings.LookupService(s.Name)
			if ok && info.Protocol == proto && s.Security == sec {
				out = append(out, s)
			}
		}
	}
	return out
}

// autoconfigSocketType names a security mode as clientConfig 1.1 does.
func autoconfigSocketType(sec string) string {
	switch sec {
	case settings.SecurityTLS:
		return "SSL"
	case settings.SecurityStartTLS:
		return "STARTTLS"
	}
	return "plain"
}

// AutodiscoverXML is a POX Autodiscover response (Outlook schema 2006a)
// for email with one Protocol element per protocol: the first service of
// each in setupOrder. <SSL> is the Exchange 2007 flag; <Encryption>
// (Outlook 2010 and later, which prefer it) tells SSL (implicit TLS) from
// TLS (STARTTLS).
func AutodiscoverXML(email string, services []SetupService) []byte {
	var b bytes.Buffer
	b.WriteString(xml.Header)
	fmt.Fprintf(&b, "<Autodiscover xmlns=%q>\n", autodiscoverResponseNS)
	fmt.Fprintf(&b, "  <Response xmlns=%q>\n", AutodiscoverOutlookSchema)
	b.WriteString("    <Account>\n      <AccountType>email</AccountType>\n      <Action>settings</Action>\n")
	for _, p := range []struct{ proto, typ string }{
		{settings.ProtocolIMAP, "IMAP"}, {settings.ProtocolPOP3, "POP3"}, {settings.ProtocolSMTP, "SMTP"},
	} {
		for _, s := range setupOrder(services, p.proto) {
			if s.Name == "smtp" {
				continue
			}
			ssl, enc := "off", "None"
			switch s.Security {
			case settings.SecurityTLS:
				ssl, enc = "on", "SSL"
			case settings.SecurityStartTLS:
				ssl, enc = "on", "TLS"
			}
			b.WriteString("      <Protocol>\n")
			fmt.Fprintf(&b, "        <Type>%s</Type>\n", p.typ)
			fmt.Fprintf(&b, "        <Server>%s</Server>\n", xmlEscape(s.Host))
			fmt.Fprintf(&b, "        <Port>%d</Port>\n", s.Port)
			fmt.Fprintf(&b, "        <LoginName>%s</LoginName>\n", xmlEscape(email))
			b.WriteString("        <DomainRequired>off</DomainRequired>\n        <SPA>off</SPA>\n")
			fmt.Fprintf(&b, "        <SSL>%s</SSL>\n        <Encryption>%s</Encryption>\n", ssl, enc)
			b.WriteString("        <AuthRequired>on</AuthRequired>\n")
			if p.proto == settings.ProtocolSMTP {
				b.WriteString("        <UsePOPAuth>off</UsePOPAuth>\n        <SMTPLast>off</SMTPLast>\n")
			}
			b.WriteString("      </Protocol>\n")
			break
		}
	}
	b.WriteString("    </Account>\n  </Response>\n</Autodiscover>\n")
	return b.Bytes()
}

// AutodiscoverRedirectXML is an Autodiscover answer sending the client to
// another Autodiscover URL (Action redirectUrl).
func AutodiscoverRedirectXML(target string) []byte {
	var b bytes.Buffer
	b.WriteString(xml.Header)
	fmt.Fprintf(&b, "<Autodiscover xmlns=%q>\n", autodiscoverResponseNS)
	fmt.Fprintf(&b, "  <Response xmlns=%q>\n", AutodiscoverOutlookSchema)
	b.WriteString("    <Account>\n      <AccountType>email</AccountType>\n      <Action>redirectUrl</Action>\n")
	fmt.Fprintf(&b, "      <RedirectUrl>%s</RedirectUrl>\n", xmlEscape(target))
	b.WriteString("    </Account>\n  </Response>\n</Autodiscover>\n")
	return b.Bytes()
}

// AutodiscoverErrorXML is an Autodiscover error response: 500 (address
// not found), 600 (invalid request), 601 (schema not supported).
func AutodiscoverErrorXML(code int, msg string) []byte {
	var b bytes.Buffer
	b.WriteString(xml.Header)
	fmt.Fprintf(&b, "<Autodiscover xmlns=%q>\n", autodiscoverResponseNS)
	b.WriteString("  <Response>\n")
	fmt.Fprintf(&b, "    <Error Time=%q Id=\"1\">\n", time.Now().UTC().Format("15:04:05.0000000"))
	fmt.Fprintf(&b, "      <ErrorCode>%d</ErrorCode>\n      <Message>%s</Message>\n      <DebugData />\n", code, xmlEscape(msg))
	b.WriteString("    </Error>\n  </Response>\n</Autodiscover>\n")
	return b.Bytes()
}

func xmlEscape(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	return b.String()
}
