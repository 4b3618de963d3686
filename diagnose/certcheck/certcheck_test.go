package certcheck

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/maillab/maillab/diagnose/internal/testpki"
	"github.com/maillab/maillab/rootcause"
)

func TestCheck(t *testing.T) {
	now := time.Now()
	long := testpki.Opts{NotBefore: now.Add(-3 * 365 * 24 * time.Hour)}
	root := testpki.NewRoot(t, "Test Root CA", long)
	inter := root.Intermediate(t, "Test Issuing CA 1", long)
	private := testpki.NewRoot(t, "Acme Private Root", testpki.Opts{})
	rsaRoot := testpki.NewRoot(t, "Test RSA Root", testpki.Opts{RSABits: 2048})
	avast := testpki.NewRoot(t, "Avast Web/Mail Shield Root", testpki.Opts{})
	interceptCA := testpki.NewRoot(t, "Corporate SSL Inspection CA", testpki.Opts{})
	expiredInter := root.Intermediate(t, "Old Issuing CA", testpki.Opts{NotBefore: now.Add(-400 * 24 * time.Hour), NotAfter: now.Add(-24 * time.Hour)})

	names := []string{"mail.example.test", "smtp.example.test", "127.0.0.1"}

	// The AIA server serves the intermediate and the private root.
	mux := http.NewServeMux()
	mux.HandleFunc("/inter.cer", func(w http.ResponseWriter, r *http.Request) { w.Write(inter.Cert.Raw) })
	mux.HandleFunc("/inter.pem", func(w http.ResponseWriter, r *http.Request) { w.Write(inter.PEM()) })
	mux.HandleFunc("/private.cer", func(w http.ResponseWriter, r *http.Request) { w.Write(private.Cert.Raw) })
	aia := httptest.NewServer(mux)
	defer aia.Close()

	tests := []struct {
		name    string
		chain   []*x509.Certificate
		host    string
		fetch   bool
		want    rootcause.Code
		trusted bool
		suggest string
		summary string
	}{
		{"valid, leaf only", root.Leaf(t, testpki.Opts{Names: names}).Chain(), "smtp.example.test", false, "", true, "", ""},
		{"valid chain", inter.Leaf(t, testpki.Opts{Names: names}).Chain(inter), "mail.example.test", false, "", true, "", ""},
		{"valid by IP", inter.Leaf(t, testpki.Opts{Names: names}).Chain(inter), "127.0.0.1", false, "", true, "", ""},
		{"expired", inter.Leaf(t, testpki.Opts{Names: names, NotBefore: now.Add(-100 * 24 * time.Hour), NotAfter: now.Add(-10 * 24 * time.Hour)}).Chain(inter), "mail.example.test", false, rootcause.TLSCertExpired, true, "", "expired on"},
		{"expired intermediate", expiredInter.Leaf(t, testpki.Opts{Names: names, NotBefore: now.Add(-30 * 24 * time.Hour)}).Chain(expiredInter), "mail.example.test", false, rootcause.TLSCertExpired, true, "", "Old Issuing CA"},
		{"not yet valid", inter.Leaf(t, testpki.Opts{Names: names, NotBefore: now.Add(5 * 24 * time.Hour), NotAfter: now.Add(50 * 24 * time.Hour)}).Chain(inter), "mail.example.test", false, rootcause.TLSCertNotYetValid, true, "", "clock"},
		{"self-signed", testpki.SelfSigned(t, testpki.Opts{Names: names}).Chain(), "mail.example.test", false, rootcause.TLSCertSelfSigned, false, "", "self-signed"},
		{"untrusted root sent", private.Leaf(t, testpki.Opts{Names: names}).Chain(private), "mail.example.test", false, rootcause.TLSCertUntrusted, false, "", "Acme Private Root"},
		{"private CA, leaf only, no AIA", private.Leaf(t, testpki.Opts{Names: names}).Chain(), "mail.example.test", true, rootcause.TLSCertChainIncomplete, false, "", "no AIA URL"},
		{"private CA root fetched by AIA", private.Leaf(t, testpki.Opts{Names: names, AIA: []string{aia.URL + "/private.cer"}}).Chain(), "mail.example.test", true, rootcause.TLSCertUntrusted, false, "", "fetched from"},
		{"intermediate missing, AIA DER", inter.Leaf(t, testpki.Opts{Names: names, AIA: []string{aia.URL + "/inter.cer"}}).Chain(), "mail.example.test", true, rootcause.TLSCertChainIncomplete, true, "", "Test Issuing CA 1"},
		{"intermediate missing, AIA PEM", inter.Leaf(t, testpki.Opts{Names: names, AIA: []string{aia.URL + "/inter.pem"}}).Chain(), "mail.example.test", true, rootcause.TLSCertChainIncomplete, true, "", "Test Issuing CA 1"},
		{"intermediate missing, AIA 404", inter.Leaf(t, testpki.Opts{Names: names, AIA: []string{aia.URL + "/gone.cer"}}).Chain(), "mail.example.test", true, rootcause.TLSCertChainIncomplete, false, "", "Test Issuing CA 1"},
		{"intermediate missing, no AIA", inter.Leaf(t, testpki.Opts{Names: names}).Chain(), "mail.example.test", true, rootcause.TLSCertChainIncomplete, false, "", "no AIA URL"},
		{"wrong name, sibling", inter.Leaf(t, testpki.Opts{Names: []string{"www.example.test", "mail.example.test"}}).Chain(inter), "imap.example.test", false, rootcause.TLSCertHostnameMismatch, true, "mail.example.test", "does not name imap.example.test"},
		{"wrong name, www only", inter.Leaf(t, testpki.Opts{Names: []string{"www.example.test"}}).Chain(inter), "mail.example.test", false, rootcause.TLSCertHostnameMismatch, true, "", "www.example.test"},
		{"IP without IP SAN", inter.Leaf(t, testpki.Opts{Names: []string{"mail.example.test"}}).Chain(inter), "127.0.0.1", false, rootcause.TLSCertHostnameMismatch, true, "", "127.0.0.1"},
		{"RSA-1024", rsaRoot.Leaf(t, testpki.Opts{Names: names, RSABits: 1024}).Chain(), "mail.example.test", false, rootcause.TLSCertWeak, true, "", "1024 bits"},
		{"SHA-1 signature", rsaRoot.Leaf(t, testpki.Opts{Names: names, SHA1: true}).Chain(), "mail.example.test", false, rootcause.TLSCertWeak, false, "", "SHA1-RSA"},
		{"Avast", avast.Leaf(t, testpki.Opts{Names: names}).Chain(), "mail.example.test", false, rootcause.TLSIntercepted, false, "", "Avast"},
		{"inspection wording, root sent", interceptCA.Leaf(t, testpki.Opts{Names: names}).Chain(interceptCA), "mail.example.test", false, rootcause.TLSIntercepted, false, "", "inspection"},
	}
	pool := x509.NewCertPool()
	pool.AddCert(root.Cert)
	pool.AddCert(rsaRoot.Cert)
	rootCerts := []*x509.Certificate{root.Cert, rsaRoot.Cert}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			host := tt.host
			if host == "" {
				host = tt.chain[0].Subject.CommonName
			}
			in := Input{Chain: tt.chain, Host: host, Roots: pool, RootCerts: rootCerts, Now: now}
			if tt.fetch {
				in.FetchIssuer = HTTPFetcher(time.Second)
			}
			v := Check(context.Background(), in)
			if v.Code != tt.want {
				t.Fatalf("Check(%s) = %q (%s), want %q", tt.name, v.Code, v.Summary, tt.want)
			}
			if v.Trusted != tt.trusted {
				t.Errorf("Check(%s).Trusted = %v, want %v", tt.name, v.Trusted, tt.trusted)
			}
			if v.Suggest != tt.suggest {
				t.Errorf("Check(%s).Suggest = %q, want %q", tt.name, v.Suggest, tt.suggest)
			}
			if !strings.Contains(v.Summary+v.Evidence, tt.summary) {
				t.Errorf("Check(%s) summary %q evidence %q lacks %q", tt.name, v.Summary, v.Evidence, tt.summary)
			}
			if tt.want != "" && v.Evidence == "" {
				t.Errorf("Check(%s) has no evidence", tt.name)
			}
		})
	}
}

// TestCheckValidityWithoutOverlap covers chains in which no instant
// exists at which every certificate is valid, so that Go's verifier, which
// judges the whole chain at one instant, fails at every instant: the leaf
// must still be judged by its dates, not reported as untrusted.
func TestCheckValidityWithoutOverlap(t *testing.T) {
	now := time.Now()
	day := 24 * time.Hour
	names := []string{"mail.example.test"}
	expiredOpts := testpki.Opts{Names: names, NotBefore: now.Add(-90 * day), NotAfter: now.Add(-day)}

	// A CA created an hour ago (or re-issued with a new NotBefore) that
	// signed a leaf which expired yesterday.
	young := testpki.NewRoot(t, "Young Root CA", testpki.Opts{NotBefore: now.Add(-time.Hour)})
	youngLeaf := young.Leaf(t, expiredOpts)
	// The same under a long-lived root, through an intermediate issued an
	// hour ago.
	old := testpki.NewRoot(t, "Old Root CA", testpki.Opts{NotBefore: now.Add(-3 * 365 * day), NotAfter: now.Add(3 * 365 * day)})
	youngInter := old.Intermediate(t, "Young Issuing CA", testpki.Opts{NotBefore: now.Add(-time.Hour)})
	// A CA that expires in an hour and signed a leaf valid from in 5 days.
	ending := testpki.NewRoot(t, "Ending Root CA", testpki.Opts{NotBefore: now.Add(-30 * day), NotAfter: now.Add(time.Hour)})
	// A trusted root that expired yesterday, over a valid leaf.
	expiredRoot := testpki.NewRoot(t, "Expired Root CA", testpki.Opts{NotBefore: now.Add(-400 * day), NotAfter: now.Add(-day)})
	// An impostor CA with the young root's name, not trusted.
	impostor := testpki.NewRoot(t, "", testpki.Opts{Subject: young.Cert.Subject, NotBefore: now.Add(-time.Hour)})

	trustedRoots := []*testpki.CA{young, old, ending, expiredRoot}
	pool := x509.NewCertPool()
	var rootCerts []*x509.Certificate
	for _, ca := range trustedRoots {
		pool.AddCert(ca.Cert)
		rootCerts = append(rootCerts, ca.Cert)
	}

	tests := []struct {
		name      string
		chain     []*x509.Certificate
		rootCerts []*x509.Certificate
		want      rootcause.Code
		trusted   bool
		summary   string
	}{
		{"leaf expired before its CA was issued, leaf only", youngLeaf.Chain(), rootCerts, rootcause.TLSCertExpired, true, "server's certificate expired on"},
		{"leaf expired before its CA was issued, CA sent", youngLeaf.Chain(young), rootCerts, rootcause.TLSCertExpired, true, "server's certificate expired on"},
		{"leaf expired before its intermediate was issued", youngInter.Leaf(t, expiredOpts).Chain(youngInter), nil, rootcause.TLSCertExpired, true, "server's certificate expired on"},
		{"leaf valid only after its CA expires", ending.Leaf(t, testpki.Opts{Names: names, NotBefore: now.Add(5 * day), NotAfter: now.Add(50 * day)}).Chain(), rootCerts, rootcause.TLSCertNotYetValid, true, "valid only from"},
		{"trusted root expired", expiredRoot.Leaf(t, testpki.Opts{Names: names, NotBefore: now.Add(-30 * day)}).Chain(), rootCerts, rootcause.TLSCertExpired, true, `root certificate "Expired Root CA" expired on`},
		{"impostor with the trusted CA's name", impostor.Leaf(t, expiredOpts).Chain(), rootCerts, rootcause.TLSCertChainIncomplete, false, "Young Root CA"},
		{"CA known only through the pool", youngLeaf.Chain(), nil, rootcause.TLSCertChainIncomplete, false, "Young Root CA"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := Check(context.Background(), Input{Chain: tt.chain, Host: "mail.example.test", Roots: pool, RootCerts: tt.rootCerts, Now: now})
			if v.Code != tt.want {
				t.Fatalf("Check(%s) = %q (%s), want %q", tt.name, v.Code, v.Summary, tt.want)
			}
			if v.Trusted != tt.trusted {
				t.Errorf("Check(%s).Trusted = %v, want %v", tt.name, v.Trusted, tt.trusted)
			}
			if !strings.Contains(v.Summary, tt.summary) {
				t.Errorf("Check(%s) summary %q lacks %q", tt.name, v.Summary, tt.summary)
			}
		})
	}
}

func TestRegistrableDomain(t *testing.T) {
	tests := map[string]string{
		"mail.example.test":     "example.test",
		"Imap.Example.TEST.":    "example.test",
		"smtp.office365.com":    "office365.com",
		"mail.example.co.uk":    "example.co.uk",
		"example.test":          "example.test",
		"test":                  "test",
		"127.0.0.1":             "127.0.0.1",
		"outlook.office365.com": "office365.com",
	}
	for in, want := range tests {
		t.Run(in, func(t *testing.T) {
			if got := RegistrableDomain(in); got != want {
				t.Errorf("RegistrableDomain(%q) = %q, want %q", in, got, want)
			}
		})
	}
}

func TestInterceptionName(t *testing.T) {
	tests := []struct {
		issuer, want string
	}{
		{(&pkix.Name{CommonName: "Kaspersky Anti-Virus Personal Root Certificate", Organization: []string{"AO Kaspersky Lab"}}).String(), "Kaspersky Anti-Virus"},
		{"CN=ESET SSL Filter CA,O=ESET spol. s r. o.", "ESET SSL Filter"},
		{"CN=Zscaler Intermediate Root CA (zscaler.net),O=Zscaler Inc.", "Zscaler"},
		{"CN=Fortinet_CA_SSL,O=Fortinet Ltd.", "Fortinet FortiGate"},
		{"CN=R11,O=Let's Encrypt,C=US", ""},
		{"CN=DigiCert Global G2 TLS RSA SHA256 2020 CA1,O=DigiCert Inc,C=US", ""},
	}
	for _, tt := range tests {
		t.Run(tt.issuer, func(t *testing.T) {
			if got := InterceptionName(tt.issuer); got != tt.want {
				t.Errorf("InterceptionName(%q) = %q, want %q", tt.issuer, got, tt.want)
			}
		})
	}
}
