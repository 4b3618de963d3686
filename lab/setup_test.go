package lab_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/xml"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/maillab/maillab/diagnose"
	"github.com/maillab/maillab/internal/golden"
	"github.com/maillab/maillab/lab"
	"github.com/maillab/maillab/servers/transcript"
	"github.com/maillab/maillab/settings"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

// webClient reaches the lab's web hosts by name, as a client whose DNS is
// the lab's would, and trusts the lab CA.
func webClient(l *lab.Lab) *http.Client {
	ip := l.Primary.AdvertisedIP
	d := &net.Dialer{Timeout: 5 * time.Second}
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: l.CertPool()},
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				_, port, _ := net.SplitHostPort(addr)
				return d.DialContext(ctx, network, net.JoinHostPort(ip, port))
			},
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// portless replaces the lab's random ports in a document by PORT:name so
// goldens stay stable.
func portless(body []byte, s *settings.Settings) []byte {
	for name, svc := range s.Services {
		body = bytes.ReplaceAll(body, []byte(">"+strconv.Itoa(svc.Port)+"<"), []byte(">PORT:"+name+"<"))
	}
	return body
}

func setupGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	golden.Check(t, filepath.Join("testdata", "setup", name), got, *update)
}

func TestSetupAutoconfig(t *testing.T) {
	l := startLab(t, lab.Options{})
	s := l.Settings()
	if s.Discovery == nil {
		t.Fatal("settings lack discovery")
	}
	hc := webClient(l)
	alice := s.Accounts[0]
	plain := fmt.Sprintf("http://autoconfig.example.test:%d%s", s.Discovery.HTTPPort, lab.AutoconfigPath)
	for _, url := range []string{s.Discovery.Autoconfig, s.Discovery.WellKnown, plain} {
		t.Run(url, func(t *testing.T) {
			resp, err := hc.Get(url + "?emailaddress=" + alice.Email)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/xml") {
				t.Fatalf("GET %s: %s %s", url, resp.Status, resp.Header.Get("Content-Type"))
			}
			ac, err := diagnose.ParseAutoconfig(url, body)
			if err != nil {
				t.Fatalf("ParseAutoconfig: %v\n%s", err, body)
			}
			// What the document lists must be what the lab serves, implicit
			// TLS first; never the relay port.
			var listed []string
			for _, srv := range append(ac.Incoming, ac.Outgoing...) {
				listed = append(listed, fmt.Sprintf("%s %s:%d %s", srv.Type, srv.Hostname, srv.Port, srv.Security))
			}
			var want []string
			for _, name := range []string{"imaps", "imap", "pop3s", "pop3", "submissions", "submission"} {
				svc := s.Services[name]
				info, _ := settings.LookupService(name)
				want = append(want, fmt.Sprintf("%s %s:%d %s", info.Protocol, svc.Host, svc.Port, svc.Security))
			}
			if strings.Join(listed, "\n") != strings.Join(want, "\n") {
				t.Errorf("autoconfig lists\n%s\nwant\n%s", strings.Join(listed, "\n"), strings.Join(want, "\n"))
			}
			if ac.Incoming[0].Username != "%EMAILADDRESS%" || ac.Incoming[0].Authentication[0] != "password-cleartext" {
				t.Errorf("incoming login = %q/%v, want %%EMAILADDRESS%%/password-cleartext", ac.Incoming[0].Username, ac.Incoming[0].Authentication)
			}
			if url == s.Discovery.Autoconfig {
				setupGolden(t, "autoconfig.xml", portless(body, s))
			}
		})
	}
}

// autodiscoverResponse is the part of a POX response a client reads.
type autodiscoverResponse struct {
	Response struct {
		Account struct {
			Action   string `xml:"Action"`
			Protocol []struct {
				Type       string
				Server     string
				Port       int
				LoginName  string
				SSL        string
				Encryption string
			} `xml:"Protocol"`
		} `xml:"Account"`
		Error struct {
			ErrorCode int
			Message   string
		} `xml:"Error"`
	} `xml:"Response"`
}

func postAutodiscover(t *testing.T, hc *http.Client, url, email, schema string) (*http.Response, []byte) {
	t.Helper()
	req := fmt.Sprintf(`<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006">
  <Request>
    <EMailAddress>%s</EMailAddress>
    <AcceptableResponseSchema>%s</AcceptableResponseSchema>
  </Request>
</Autodiscover>`, email, schema)
	resp, err := hc.Post(url, "text/xml", strings.NewReader(req))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, body
}

func TestSetupAutodiscover(t *testing.T) {
	l := startLab(t, lab.Options{})
	s := l.Settings()
	hc := webClient(l)
	alice := s.Accounts[0]
	domainURL := fmt.Sprintf("https://example.test:%d/Autodiscover/Autodiscover.xml", s.Discovery.HTTPSPort)

	for _, url := range []string{s.Discovery.Autodiscover, domainURL} {
		t.Run(url, func(t *testing.T) {
			resp, body := postAutodiscover(t, hc, url, alice.Email, lab.AutodiscoverOutlookSchema)
			if resp.StatusCode != 200 {
				t.Fatalf("POST %s: %s", url, resp.Status)
			}
			var r autodiscoverResponse
			if err := xml.Unmarshal(body, &r); err != nil {
				t.Fatalf("response does not parse: %v\n%s", err, body)
			}
			if r.Response.Account.Action != "settings" {
				t.Fatalf("Action = %q, want settings\n%s", r.Response.Account.Action, body)
			}
			want := map[string]settings.Service{"IMAP": s.Services["imaps"], "POP3": s.Services["pop3s"], "SMTP": s.Services["submissions"]}
			if len(r.Response.Account.Protocol) != len(want) {
				t.Fatalf("%d Protocol elements, want %d\n%s", len(r.Response.Account.Protocol), len(want), body)
			}
			for _, p := range r.Response.Account.Protocol {
				w := want[p.Type]
				if p.Server != w.Host || p.Port != w.Port || p.SSL != "on" || p.Encryption != "SSL" || p.LoginName != alice.Email {
					t.Errorf("Protocol %s = %+v, want %s:%d SSL", p.Type, p, w.Host, w.Port)
				}
			}
			if url == s.Discovery.Autodiscover {
				setupGolden(t, "autodiscover.xml", portless(body, s))
			}
		})
	}

	errorsTests := []struct {
		name, email, schema string
		code                int
	}{
		{"foreign address", "someone@other.test", lab.AutodiscoverOutlookSchema, 500},
		{"mobilesync schema", alice.Email, "http://schemas.microsoft.com/exchange/autodiscover/mobilesync/responseschema/2006", 601},
		{"no address", "", lab.AutodiscoverOutlookSchema, 600},
	}
	for _, tt := range errorsTests {
		t.Run(tt.name, func(t *testing.T) {
			_, body := postAutodiscover(t, hc, s.Discovery.Autodiscover, tt.email, tt.schema)
			var r autodiscoverResponse
			if err := xml.Unmarshal(body, &r); err != nil {
				t.Fatal(err)
			}
			if r.Response.Error.ErrorCode != tt.code {
				t.Errorf("ErrorCode = %d, want %d\n%s", r.Response.Error.ErrorCode, tt.code, body)
			}
		})
	}
	t.Run("GET", func(t *testing.T) {
		resp, err := hc.Get(s.Discovery.Autodiscover)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if !bytes.Contains(body, []byte("<ErrorCode>600</ErrorCode>")) {
			t.Errorf("GET answered %s", body)
		}
	})
	t.Run("huge body", func(t *testing.T) {
		resp, err := hc.Post(s.Discovery.Autodiscover, "text/xml", bytes.NewReader(make([]byte, 1<<20)))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("1 MiB request: %s, want 413", resp.Status)
		}
	})
}

func TestSetupHostsInDNSAndCertificate(t *testing.T) {
	l := startLab(t, lab.Options{})
	s := l.Settings()
	c := &dns.Client{Timeout: 2 * time.Second}
	for _, name := range []string{"autoconfig.example.test.", "autodiscover.example.test.", "example.test."} {
		m := new(dns.Msg)
		m.SetQuestion(name, dns.TypeA)
		r, _, err := c.Exchange(m, s.Resolver)
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Answer) == 0 || !strings.Contains(r.Answer[0].String(), "127.0.0.1") {
			t.Errorf("%s A: %v, want 127.0.0.1", name, r.Answer)
		}
		conn, err := tls.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Discovery.HTTPSPort)),
			&tls.Config{RootCAs: l.CertPool(), ServerName: strings.TrimSuffix(name, ".")})
		if err != nil {
			t.Errorf("TLS to %s: %v", name, err)
			continue
		}
		conn.Close()
	}
}

func TestSetupRequestsInTranscript(t *testing.T) {
	var mu sync.Mutex
	var lines []string
	sink := transcript.SinkFunc(func(e transcript.Entry) {
		mu.Lock()
		defer mu.Unlock()
		lines = append(lines, fmt.Sprintf("%s %c %s", e.Service, e.Dir, e.Text))
	})
	l := startLab(t, lab.Options{Transcript: sink})
	s := l.Settings()
	resp, err := webClient(l).Get(s.Discovery.Autoconfig + "?emailaddress=alice%40example.test")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	mu.Lock()
	defer mu.Unlock()
	all := strings.Join(lines, "\n")
	for _, want := range []string{"https C GET " + s.Discovery.Autoconfig + "?emailaddress=alice%40example.test", "https S 200 OK (example.test"} {
		if !strings.Contains(all, want) {
			t.Errorf("transcript lacks %q:\n%s", want, all)
		}
	}
}

func TestSetupFixedPorts(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	l := startLab(t, lab.Options{Ports: map[string]int{"https": port}})
	if got := l.Settings().Discovery.HTTPSPort; got != port {
		t.Errorf("https port %d, want %d", got, port)
	}
}
