// Package certcheck classifies the certificate chain a TLS server presented,
// after a handshake done with verification off: expired, not yet valid,
// self-signed, untrusted root, missing intermediate (completed through the
// leaf's Authority Information Access URL when possible), wrong name, weak
// algorithm or key, or re-signed by a TLS-inspecting middlebox.
//
// Go's verifier folds several of these into one error (an expired
// certificate and a not-yet-valid one are both x509.Expired; SHA-1 comes out
// as an unknown authority), so Check looks at the certificates themselves.
package certcheck

import (
	"bytes"
	"context"
	//lint:ignore SA1019 DSA keys are detected and reported as weak, never used.
	"crypto/dsa"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/maillab/maillab/rootcause"
	"golang.org/x/net/publicsuffix"
)

// Input is what Check needs.
type Input struct {
	// Chain is the chain as the server sent it, leaf first.
	Chain []*x509.Certificate
	// Host is the name (or IP literal) the client dialled.
	Host string
	// Roots are the trusted roots; nil means the system's.
	Roots *x509.CertPool
	// RootCerts are trusted roots the caller holds as certificates (those
	// of a --ca file), also in Roots. They let Check follow a signature to
	// a root whose validity does not overlap the leaf's: Go's verifier
	// judges every certificate of a chain at one instant, so an expired
	// leaf under a CA created after it was issued would otherwise look
	// untrusted. Nil is fine for the system roots, which predate the
	// certificates they sign.
	RootCerts []*x509.Certificate
	// Now is the time to judge validity at; zero means time.Now().
	Now time.Time
	// FetchIssuer downloads a certificate from an AIA caIssuers URL; nil
	// disables fetching.
	FetchIssuer func(ctx context.Context, url string) (*x509.Certificate, error)
}

// Verdict is Check's classification.
type Verdict struct {
	// Code is the problem, or "" when the chain is valid, trusted, strong
	// and names Host.
	Code rootcause.Code
	// Summary says what is wrong in one sentence ("" when nothing is).
	Summary string
	// Evidence describes the certificates that matter: subject, issuer,
	// names, validity dates, algorithms.
	Evidence string
	// Trusted is true when the chain leads to a trusted root, judged
	// whatever the dates (they are a verdict of their own) and ignoring
	// the name.
	Trusted bool
	// Names are the leaf's DNS and IP subject alternative names (the
	// subject common name when there are none).
	Names []string
	// Suggest is a host named by the certificate in the same registrable
	// domain as Host, when the name does not match ("" otherwise).
	Suggest string
	// IssuerKey identifies the issuer of the leaf (subject DN and key
	// identifier), to spot one untrusted issuer re-signing every server.
	IssuerKey string
	// Issuer is the leaf issuer's distinguished name.
	Issuer string
	// Interception names the TLS-inspection product or wording found in
	// an untrusted issuer, "" when none.
	Interception string
	// Fetched lists AIA URLs downloaded to complete the chain.
	Fetched []string
}

// Check classifies in.Chain. The order of checks is the order of fixes:
// nothing else can be judged while a signature algorithm is one the
// verifier refuses (it reports SHA-1 as an unknown authority), trust comes
// before dates (an untrusted certificate's dates do not matter), and the
// name comes last.
func Check(ctx context.Context, in Input) Verdict {
	now := in.Now
	if now.IsZero() {
		now = time.Now()
	}
	if len(in.Chain) == 0 {
		return Verdict{Code: rootcause.TLSCertUntrusted, Summary: "the server sent no certificate"}
	}
	leaf := in.Chain[0]
	v := Verdict{
		Names:     Names(leaf),
		Issuer:    leaf.Issuer.String(),
		IssuerKey: leaf.Issuer.String() + "/" + fmt.Sprintf("%x", leaf.AuthorityKeyId),
		Evidence:  describeChain(in.Chain, now),
	}

	// 1. Weak signatures and keys (RFC 9155 deprecates SHA-1 in TLS
	// signatures; CA/B Forum Baseline Requirements §6.1.5 require RSA keys
	// of at least 2048 bits). Self-signed roots are exempt: their
	// signature is not checked by anyone.
	if weak := weakness(in.Chain); weak != "" {
		v.Code = rootcause.TLSCertWeak
		v.Summary = "the server's certificate uses " + weak
		_, v.Trusted = trustPath(in, now, nil, nil)
		return v
	}

	// 2. Trust, whatever the dates: an expired certificate of a trusted CA
	// is expired, not untrusted.
	path, ok := trustPath(in, now, nil, nil)
	if !ok {
		trustVerdict(ctx, in, now, &v)
		return v
	}
	v.Trusted = true

	// 3. Dates, of every certificate from the leaf to the trusted root
	// (the trust store's copy of the root, not one the server sent).
	for i, c := range path {
		what := "the server's certificate"
		switch {
		case i == len(path)-1 && i > 0:
			what = fmt.Sprintf("the root certificate %q", c.Subject.CommonName)
		case i > 0:
			what = fmt.Sprintf("the intermediate certificate %q", c.Subject.CommonName)
		}
		switch {
		case now.After(c.NotAfter):
			v.Code = rootcause.TLSCertExpired
			v.Summary = fmt.Sprintf("%s expired on %s (%s ago)", what, c.NotAfter.UTC().Format(time.DateOnly), ago(now.Sub(c.NotAfter)))
			return v
		case now.Before(c.NotBefore):
			v.Code = rootcause.TLSCertNotYetValid
			v.Summary = fmt.Sprintf("%s is valid only from %s (in %s): the server's certificate is too new or this computer's clock is wrong (it says %s)",
				what, c.NotBefore.UTC().Format(time.RFC3339), ago(c.NotBefore.Sub(now)), now.UTC().Format(time.RFC3339))
			return v
		}
	}

	// 4. The name (RFC 6125 §6; Go implements the matching rules).
	if err := leaf.VerifyHostname(in.Host); err != nil {
		v.Code = rootcause.TLSCertHostnameMismatch
		v.Suggest = sibling(in.Host, v.Names)
		v.Summary = fmt.Sprintf("the certificate does not name %s; it names %s", in.Host, listOrNone(v.Names))
		return v
	}
	return v
}

// trustVerdict classifies a chain that does not verify to a trusted root.
func trustVerdict(ctx context.Context, in Input, now time.Time, v *Verdict) {
	leaf := in.Chain[0]
	last := in.Chain[len(in.Chain)-1]
	if product := interceptionIn(in.Chain); product != "" {
		v.Code = rootcause.TLSIntercepted
		v.Interception = product
		v.Summary = fmt.Sprintf("the certificate was issued by %q, which looks like TLS inspection (%s), not by a public or configured CA", leaf.Issuer.String(), product)
		return
	}
	switch {
	case len(in.Chain) == 1 && isSelfSigned(leaf):
		v.Code = rootcause.TLSCertSelfSigned
		v.Summary = fmt.Sprintf("the server's certificate is self-signed (issuer = subject %q) and not trusted here", leaf.Subject.String())
		return
	case isSelfSigned(last):
		v.Code = rootcause.TLSCertUntrusted
		v.Summary = fmt.Sprintf("the chain ends at the root %q, which this computer does not trust", last.Subject.String())
		return
	}
	// The last certificate's issuer is missing. Complete the chain from
	// AIA caIssuers URLs (RFC 5280 §4.2.2.1), at most three levels.
	var fetched []*x509.Certificate
	cur := last
	for depth := 0; depth < 3 && in.FetchIssuer != nil && len(cur.IssuingCertificateURL) > 0; depth++ {
		url := cur.IssuingCertificateURL[0]
		issuer, err := in.FetchIssuer(ctx, url)
		if err != nil {
			v.Evidence += fmt.Sprintf("; fetching the issuer from %s failed: %v", url, err)
			break
		}
		v.Fetched = append(v.Fetched, url)
		if isSelfSigned(issuer) {
			if _, ok := trustPath(in, now, fetched, issuer); ok {
				// The fetched root completes the chain but is not in
				// the trust store: a private or unknown CA.
				v.Code = rootcause.TLSCertUntrusted
				v.Summary = fmt.Sprintf("the chain ends at the root %q (fetched from %s), which this computer does not trust", issuer.Subject.String(), url)
				return
			}
			break
		}
		fetched = append(fetched, issuer)
		if _, ok := trustPath(in, now, fetched, nil); ok {
			v.Trusted = true
			v.Code = rootcause.TLSCertChainIncomplete
			v.Summary = fmt.Sprintf("the server does not send the intermediate certificate %q (found at %s); clients that do not download it, as most mail clients do not, reject the chain", issuer.Subject.String(), url)
			return
		}
		cur = issuer
	}
	if product := interceptionName(cur.Issuer.String()); product != "" {
		v.Code = rootcause.TLSIntercepted
		v.Interception = product
		v.Summary = fmt.Sprintf("the certificate was issued by %q, which looks like TLS inspection (%s)", cur.Issuer.String(), product)
		return
	}
	v.Code = rootcause.TLSCertChainIncomplete
	why := "the leaf names no AIA URL to fetch it from"
	if len(v.Fetched) > 0 || len(cur.IssuingCertificateURL) > 0 {
		why = "fetching it through AIA did not complete a trusted chain"
	}
	if in.FetchIssuer == nil && len(cur.IssuingCertificateURL) > 0 {
		why = "the issuer was not fetched"
	}
	v.Summary = fmt.Sprintf("the issuer %q of the last certificate the server sent is neither sent nor trusted (%s): the server omits an intermediate, or the chain belongs to a CA this computer does not trust", cur.Issuer.String(), why)
}

// trustPath returns the certificates from the leaf to a trusted root
// (the trust store's copy) that the chain, with the extra intermediates,
// leads to by signatures and names, whatever the dates; a non-nil root
// replaces the trusted roots by that one certificate. Go's verifier judges
// every certificate at one instant, so it is tried at several: now, a time
// when every certificate sent is valid, and inside the window of each
// certificate involved. When no instant suits every certificate (a leaf
// that expired before its CA's certificate was issued or re-issued), the
// chain is followed one link at a time (issuerPath).
func trustPath(in Input, now time.Time, extra []*x509.Certificate, root *x509.Certificate) ([]*x509.Certificate, bool) {
	for _, at := range instants(in, now, extra, root) {
		if path, ok := verifyPath(in, in.Chain[0], at, extra, root); ok {
			return path, true
		}
	}
	return issuerPath(in, in.Chain[0], now, extra, root, 0)
}

// maxChainDepth bounds the walk of issuerPath; real chains have at most
// two intermediates.
const maxChainDepth = 4

// issuerPath looks for a certificate that signed c (sent, extra, or a
// trusted root the caller holds) and is a trusted root or leads to one,
// and returns the path from c. A link whose two certificates are valid at
// a common instant must pass Go's verifier at that instant (signature, CA
// constraints, key usage); a link without one, where the verifier cannot
// be used, is checked by its signature (which needs the issuer to be a CA
// allowed to sign certificates). The dates themselves are judged by the
// caller.
func issuerPath(in Input, c *x509.Certificate, now time.Time, extra []*x509.Certificate, root *x509.Certificate, depth int) ([]*x509.Certificate, bool) {
	if depth >= maxChainDepth {
		return nil, false
	}
	roots := in.RootCerts
	if root != nil {
		roots = []*x509.Certificate{root}
	}
	var candidates []*x509.Certificate
	candidates = append(candidates, in.Chain[1:]...)
	candidates = append(candidates, extra...)
	candidates = append(candidates, roots...)
	for _, p := range candidates {
		if p.Equal(c) || !bytes.Equal(c.RawIssuer, p.RawSubject) || !linkHolds(c, p) {
			continue
		}
		if slices.ContainsFunc(roots, p.Equal) {
			return []*x509.Certificate{c, p}, true
		}
		// p verifies to a trusted root by itself (or is one the server
		// sent), at some instant of its own validity.
		for _, at := range []time.Time{now, midpoint(p)} {
			if up, ok := verifyPath(in, p, at, extra, root); ok {
				return append([]*x509.Certificate{c}, up...), true
			}
		}
		if up, ok := issuerPath(in, p, now, extra, root, depth+1); ok {
			return append([]*x509.Certificate{c}, up...), true
		}
	}
	return nil, false
}

// linkHolds reports whether parent signed child: by Go's verifier with
// parent as the only root, at an instant when both are valid, or by the
// signature alone when there is no such instant.
func linkHolds(child, parent *x509.Certificate) bool {
	lo, hi := child.NotBefore, child.NotAfter
	if parent.NotBefore.After(lo) {
		lo = parent.NotBefore
	}
	if parent.NotAfter.Before(hi) {
		hi = parent.NotAfter
	}
	if lo.After(hi) {
		return child.CheckSignatureFrom(parent) == nil
	}
	roots := x509.NewCertPool()
	roots.AddCert(parent)
	_, err := child.Verify(x509.VerifyOptions{
		Roots:       roots,
		CurrentTime: lo.Add(hi.Sub(lo) / 2),
		KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	return err == nil
}

// instants are the times at which trustPath tries Go's verifier: now, a
// time when every certificate sent is valid (validTime), and the middle of
// the validity of each certificate sent or fetched, and of each root held
// that issued one of them.
func instants(in Input, now time.Time, extra []*x509.Certificate, root *x509.Certificate) []time.Time {
	out := []time.Time{now, validTime(in.Chain, now)}
	var certs []*x509.Certificate
	certs = append(certs, in.Chain...)
	certs = append(certs, extra...)
	roots := in.RootCerts
	if root != nil {
		roots = []*x509.Certificate{root}
	}
	issued := slices.Clone(certs)
	for _, r := range roots {
		if slices.ContainsFunc(issued, func(c *x509.Certificate) bool { return bytes.Equal(c.RawIssuer, r.RawSubject) }) {
			certs = append(certs, r)
		}
	}
	for _, c := range certs {
		if at := midpoint(c); !slices.ContainsFunc(out, at.Equal) {
			out = append(out, at)
		}
	}
	return out
}

// midpoint is the middle of c's validity.
func midpoint(c *x509.Certificate) time.Time {
	return c.NotBefore.Add(c.NotAfter.Sub(c.NotBefore) / 2)
}

// verifyPath verifies c at time at, ignoring the host name, with the
// chain's other certificates and extra as intermediates, and returns the
// first chain found (c first, a trusted root last); a non-nil root
// replaces the trusted roots by that one certificate.
func verifyPath(in Input, c *x509.Certificate, at time.Time, extra []*x509.Certificate, root *x509.Certificate) ([]*x509.Certificate, bool) {
	inter := x509.NewCertPool()
	for _, ic := range in.Chain[1:] {
		inter.AddCert(ic)
	}
	for _, ic := range extra {
		inter.AddCert(ic)
	}
	roots := in.Roots
	if root != nil {
		roots = x509.NewCertPool()
		roots.AddCert(root)
	}
	chains, err := c.Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: inter,
		CurrentTime:   at,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil || len(chains) == 0 {
		return nil, false
	}
	return chains[0], true
}

// validTime returns a time at which every certificate of the chain is
// valid; when there is none (a leaf that expired before its intermediate
// was renewed), a time inside the leaf's validity.
func validTime(chain []*x509.Certificate, now time.Time) time.Time {
	lo, hi := chain[0].NotBefore, chain[0].NotAfter
	for _, c := range chain[1:] {
		if c.NotBefore.After(lo) {
			lo = c.NotBefore
		}
		if c.NotAfter.Before(hi) {
			hi = c.NotAfter
		}
	}
	switch {
	case !now.Before(lo) && !now.After(hi):
		return now
	case lo.Before(hi):
		return lo.Add(hi.Sub(lo) / 2)
	}
	return midpoint(chain[0])
}

// isSelfSigned reports whether c's issuer is its subject and its signature
// verifies with its own key.
func isSelfSigned(c *x509.Certificate) bool {
	if !bytes.Equal(c.RawIssuer, c.RawSubject) {
		return false
	}
	err := c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature)
	// A SHA-1 self-signature cannot be checked any more; issuer = subject
	// is then taken as self-signed.
	return err == nil || errors.As(err, new(x509.InsecureAlgorithmError))
}

// weakness describes the first weak signature algorithm or key in the
// chain, "" when there is none.
func weakness(chain []*x509.Certificate) string {
	for i, c := range chain {
		who := "certificate"
		if i > 0 {
			who = fmt.Sprintf("intermediate %q", c.Subject.CommonName)
		}
		root := i > 0 && isSelfSigned(c)
		if !root {
			switch c.SignatureAlgorithm {
			case x509.SHA1WithRSA, x509.DSAWithSHA1, x509.ECDSAWithSHA1, x509.MD5WithRSA, x509.MD2WithRSA:
				return fmt.Sprintf("a %s signature (%s), which clients reject", c.SignatureAlgorithm, who)
			}
		}
		if root {
			continue
		}
		switch k := c.PublicKey.(type) {
		case *rsa.PublicKey:
			if bits := k.N.BitLen(); bits < 2048 {
				return fmt.Sprintf("an RSA key of %d bits (%s); at least 2048 are required", bits, who)
			}
		case *dsa.PublicKey:
			return fmt.Sprintf("a DSA key (%s), which TLS clients no longer accept", who)
		}
	}
	return ""
}

// Names returns the leaf's DNS and IP SANs, or its common name when it has
// no SANs (which RFC 6125 §6.4.4 clients no longer accept).
func Names(c *x509.Certificate) []string {
	var names []string
	names = append(names, c.DNSNames...)
	for _, ip := range c.IPAddresses {
		names = append(names, ip.String())
	}
	if len(names) == 0 && c.Subject.CommonName != "" {
		names = append(names, c.Subject.CommonName+" (common name only)")
	}
	return names
}

// sibling picks a name of the certificate in host's registrable domain,
// preferring mail-like names: it is what the client should dial instead.
func sibling(host string, names []string) string {
	if net.ParseIP(host) != nil {
		return ""
	}
	hostDom := RegistrableDomain(host)
	var best string
	bestScore := -1
	for _, n := range names {
		if strings.HasPrefix(n, "*.") || strings.Contains(n, " ") || net.ParseIP(n) != nil {
			continue
		}
		if RegistrableDomain(n) != hostDom || strings.EqualFold(n, host) {
			continue
		}
		score := 0
		first := strings.ToLower(strings.SplitN(n, ".", 2)[0])
		switch {
		case strings.Contains(first, "mail"), strings.Contains(first, "imap"), strings.Contains(first, "smtp"),
			strings.Contains(first, "pop"), strings.HasPrefix(first, "mx"), strings.Contains(first, "exchange"), strings.Contains(first, "outlook"):
			score = 2
		case first == "www":
			score = -1
		default:
			score = 1
		}
		if score > bestScore && score >= 0 {
			best, bestScore = n, score
		}
	}
	return best
}

// RegistrableDomain returns the public suffix plus one label of host
// ("mail.example.co.uk" → "example.co.uk"); for names under unknown
// suffixes such as ".test" the last two labels. It returns the lower-cased
// host itself when it has fewer labels or is an IP literal.
func RegistrableDomain(host string) string {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if net.ParseIP(host) != nil {
		return host
	}
	d, err := publicsuffix.EffectiveTLDPlusOne(host)
	if err != nil {
		return host
	}
	return d
}

// describeChain renders the certificates for evidence.
func describeChain(chain []*x509.Certificate, now time.Time) string {
	var parts []string
	for i, c := range chain {
		if i >= 4 {
			parts = append(parts, fmt.Sprintf("(%d more)", len(chain)-i))
			break
		}
		parts = append(parts, Describe(c, now))
	}
	return strings.Join(parts, "; then ")
}

// Describe renders one certificate: subject, issuer, names, validity and
// algorithms.
func Describe(c *x509.Certificate, now time.Time) string {
	validity := fmt.Sprintf("valid %s to %s", c.NotBefore.UTC().Format(time.DateOnly), c.NotAfter.UTC().Format(time.DateOnly))
	switch {
	case now.After(c.NotAfter):
		validity += " (expired)"
	case now.Before(c.NotBefore):
		validity += " (not yet valid)"
	}
	s := fmt.Sprintf("subject %q issued by %q", c.Subject.String(), c.Issuer.String())
	if names := Names(c); len(names) > 0 && !c.IsCA {
		s += "; names " + strings.Join(names, ", ")
	}
	return s + "; " + validity + "; " + keyDescription(c) + " " + c.SignatureAlgorithm.String()
}

func keyDescription(c *x509.Certificate) string {
	switch k := c.PublicKey.(type) {
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA-%d", k.N.BitLen())
	case *ecdsa.PublicKey:
		return "ECDSA-" + k.Curve.Params().Name
	case ed25519.PublicKey:
		return "Ed25519"
	case *dsa.PublicKey:
		return "DSA"
	}
	return c.PublicKeyAlgorithm.String()
}

func ago(d time.Duration) string {
	switch {
	case d >= 48*time.Hour:
		return fmt.Sprintf("%d days", int(d/(24*time.Hour)))
	case d >= 2*time.Hour:
		return fmt.Sprintf("%d hours", int(d/time.Hour))
	case d >= 2*time.Minute:
		return fmt.Sprintf("%d minutes", int(d/time.Minute))
	}
	return d.Round(time.Second).String()
}

func listOrNone(names []string) string {
	if len(names) == 0 {
		return "no host at all"
	}
	return strings.Join(names, ", ")
}
