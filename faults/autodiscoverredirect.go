package faults

// The autodiscover-redirect fault: the domain's Autodiscover answers with
// a redirect (Action redirectUrl, [MS-OXDSCLI] §2.2.4.1.1.2.1) instead of
// settings: to a foreign domain that serves settings of its own (a known
// way to make Outlook send the customer's password to a stranger), or,
// with loop, back and forth between the domain's two Autodiscover URLs.

import (
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/maillab/maillab/lab"
	"github.com/maillab/maillab/settings"
)

type autodiscoverRedirectParams struct {
	// To is the foreign domain redirected to; IP its address.
	To string `yaml:"to"`
	IP string `yaml:"ip"`
	// Loop redirects between the domain's own two URLs instead.
	Loop bool `yaml:"loop"`
}

func (p *autodiscoverRedirectParams) validate() error {
	if ip := net.ParseIP(p.IP); ip == nil || ip.To4() == nil {
		return fmt.Errorf("ip %q is not an IPv4 address", p.IP)
	}
	return nil
}

// requestedEmail is the EMailAddress of an Autodiscover request, or def.
func requestedEmail(r *http.Request, def string) string {
	var req struct {
		Request struct {
			EMailAddress string `xml:"EMailAddress"`
		} `xml:"Request"`
	}
	if err := xml.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&req); err != nil || req.Request.EMailAddress == "" {
		return def
	}
	return req.Request.EMailAddress
}

func init() {
	Register(Definition{
		Name:       "autodiscover-redirect",
		Summary:    "Autodiscover redirects to a foreign domain serving its own settings (default mail-settings.test on 127.0.0.5), or in a loop",
		Layer:      LayerDNS,
		NoServices: true,
		Params:     func() any { return &autodiscoverRedirectParams{To: "mail-settings.test", IP: "127.0.0.5"} },
		Apply: func(l *lab.Lab, sel *Selection, p any) error {
			params := p.(*autodiscoverRedirectParams)
			prov := l.Primary
			port := strconv.Itoa(prov.Setup.HTTPSPort)
			own := []string{
				"https://" + net.JoinHostPort(l.Domain, port) + lab.AutodiscoverPath,
				"https://" + net.JoinHostPort("autodiscover."+l.Domain, port) + lab.AutodiscoverPath,
			}
			target := func(r *http.Request) string {
				if params.Loop {
					// Each URL sends the client to the other one.
					if strings.HasPrefix(strings.ToLower(r.Host), "autodiscover.") {
						return own[0]
					}
					return own[1]
				}
				return "https://" + net.JoinHostPort("autodiscover."+params.To, port) + lab.AutodiscoverPath
			}
			if !params.Loop {
				email := "postmaster@" + params.To
				foreign, err := l.AddProvider(params.To, params.IP, []settings.Account{{Email: email, Username: email, Password: "settings-password"}})
				if err != nil {
					return err
				}
				// The stranger answers every address with its own servers,
				// so the client would log in there.
				foreign.Setup.Middleware = append(foreign.Setup.Middleware, func(next http.Handler) http.Handler {
					return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
						if !strings.EqualFold(r.URL.Path, lab.AutodiscoverPath) || r.Method != http.MethodPost {
							next.ServeHTTP(w, r)
							return
						}
						w.Header().Set("Content-Type", "text/xml; charset=utf-8")
						w.Write(lab.AutodiscoverXML(requestedEmail(r, email), foreign.SetupServices()))
					})
				})
			}
			prov.Setup.Middleware = append(prov.Setup.Middleware, func(next http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if !strings.EqualFold(r.URL.Path, lab.AutodiscoverPath) || r.Method != http.MethodPost {
						next.ServeHTTP(w, r)
						return
					}
					w.Header().Set("Content-Type", "text/xml; charset=utf-8")
					w.Write(lab.AutodiscoverRedirectXML(target(r)))
				})
			})
			return nil
		},
	})
}
