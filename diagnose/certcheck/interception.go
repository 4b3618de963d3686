package certcheck

import (
	"crypto/x509"
	"strings"
)

// interceptors maps a lower-case fragment of an issuer name to the product
// or practice it reveals. The names are the CA names these products put in
// the certificates they mint (seen in vendor documentation and in the
// certificate stores of machines that run them).
var interceptors = []struct{ fragment, product string }{
	{"avast", "Avast Web/Mail Shield"},
	{"web/mail shield", "Avast/AVG Web/Mail Shield"},
	{"mail shield", "Avast/AVG Mail Shield"},
	{"avg technologies", "AVG Web/Mail Shield"},
	{"avg web", "AVG Web/Mail Shield"},
	{"kaspersky", "Kaspersky Anti-Virus"},
	{"anti-virus personal root", "Kaspersky Anti-Virus"},
	{"eset ssl filter", "ESET SSL Filter"},
	{"ssl filter ca", "ESET SSL Filter"},
	{"bitdefender", "Bitdefender"},
	{"fortinet", "Fortinet FortiGate"},
	{"fortigate", "Fortinet FortiGate"},
	{"sophos", "Sophos"},
	{"zscaler", "Zscaler"},
	{"palo alto", "Palo Alto Networks"},
	{"paloalto", "Palo Alto Networks"},
	{"cisco umbrella", "Cisco Umbrella"},
	{"opendns", "Cisco Umbrella (OpenDNS)"},
	{"netskope", "Netskope"},
	{"mcafee", "McAfee/Trellix Web Gateway"},
	{"trellix", "Trellix Web Gateway"},
	{"blue coat", "Blue Coat ProxySG"},
	{"bluecoat", "Blue Coat ProxySG"},
	{"barracuda", "Barracuda"},
	{"forcepoint", "Forcepoint"},
	{"websense", "Forcepoint (Websense)"},
	{"watchguard", "WatchGuard"},
	{"check point", "Check Point"},
	{"checkpoint", "Check Point"},
	{"sonicwall", "SonicWall DPI-SSL"},
	{"untangle", "Untangle"},
	{"smoothwall", "Smoothwall"},
	{"lightspeed", "Lightspeed Systems"},
	{"securly", "Securly"},
	{"iboss", "iboss"},
	{"cyberoam", "Cyberoam"},
	{"mitmproxy", "mitmproxy"},
	{"fiddler", "Fiddler"},
	{"portswigger", "Burp Suite"},
	{"charles proxy", "Charles Proxy"},
	{"superfish", "Superfish"},
	{"komodia", "Komodia"},
	{"privdog", "PrivDog"},
	// Generic wording of inspection CAs.
	{"inspection", "TLS inspection"},
	{"interception", "TLS interception"},
	{"intercept", "TLS interception"},
	{"ssl scanning", "SSL/TLS scanning"},
	{"tls scanning", "SSL/TLS scanning"},
	{"ssl/tls scanning", "SSL/TLS scanning"},
	{"decryption", "TLS decryption"},
	{"dpi-ssl", "deep packet inspection"},
	{"proxy", "a TLS proxy"},
	{"filter", "a filtering product"},
	{"shield", "an antivirus shield"},
	{"mitm", "a man-in-the-middle proxy"},
}

// interceptionName returns the product an issuer name reveals, "" if none.
func interceptionName(issuer string) string {
	l := strings.ToLower(issuer)
	for _, ic := range interceptors {
		if strings.Contains(l, ic.fragment) {
			return ic.product
		}
	}
	return ""
}

// InterceptionName returns the TLS-inspection product or practice an
// issuer distinguished name reveals, "" if none.
func InterceptionName(issuer string) string { return interceptionName(issuer) }

// interceptionIn looks at every issuer of the chain.
func interceptionIn(chain []*x509.Certificate) string {
	for _, c := range chain {
		if p := interceptionName(c.Issuer.String()); p != "" {
			return p
		}
	}
	return ""
}
