//go:build e2e

package realservers

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// Server families besides Postfix and Dovecot, as realCase.family names
// them.
const (
	// FamilyNginx is nginx's mail proxy (libnginx-mod-mail) before Dovecot.
	FamilyNginx = "nginx"
	// FamilyHAProxy is HAProxy terminating TLS before Dovecot.
	FamilyHAProxy = "haproxy"
	// FamilyOpenSMTPD is OpenSMTPD, run unpacked from its .deb.
	FamilyOpenSMTPD = "opensmtpd"
	// FamilyBIND is BIND's named as the customer's validating resolver.
	FamilyBIND = "bind"
	// FamilyCourier is Courier-IMAP and Courier POP3, run unpacked from
	// their .debs.
	FamilyCourier = "courier"
)

// DovecotBehindNginx is the Dovecot instance behind the nginx mail proxy.
const DovecotBehindNginx = "behind-nginx"

// FamilyPackages are the Debian packages of each family, installed the
// ordinary way (they conflict with neither Postfix nor Dovecot).
var FamilyPackages = map[string][]string{
	FamilyNginx:   {"nginx", "libnginx-mod-mail"},
	FamilyHAProxy: {"haproxy"},
	FamilyBIND:    {"bind9"},
}

// missingFamily returns why a family cannot run here ("" when it can).
func missingFamily(family string) string {
	var files []string
	switch family {
	case FamilyNginx:
		files = []string{NginxBin, NginxMailModule}
	case FamilyHAProxy:
		files = []string{HAProxyBin}
	case FamilyBIND:
		files = []string{NamedBin}
		if _, err := lookupIDs("bind"); err != nil {
			return fmt.Sprintf("system user bind missing: install the Debian package %v", FamilyPackages[family])
		}
	}
	for _, f := range files {
		if _, err := os.Stat(f); err != nil {
			return fmt.Sprintf("%s missing: install the Debian packages %v", f, FamilyPackages[family])
		}
	}
	return ""
}

// startFamilies starts every family that can run here in front of the
// site's Dovecot, adds their listeners to site.Other and returns why the
// others cannot run, by family.
func startFamilies(t testing.TB, site *Site) map[string]string {
	t.Helper()
	missing := map[string]string{}
	good := site.Dovecot[DovecotGood]
	if missing[FamilyNginx] = missingFamily(FamilyNginx); missing[FamilyNginx] == "" {
		accts := sortedAccounts(site)
		// nginx logs in to Dovecot in plaintext, on loopback, naming itself
		// (127.0.0.1) as the client: Dovecot's documentation for a proxy
		// in front puts its address in login_trusted_networks, which also
		// counts as secured for disable_plaintext_auth.
		backend := StartDovecot(t, DovecotConfig{Name: DovecotBehindNginx, Certs: site.Certs, Cert: CertGood,
			Users: good.Config.Users, MailDir: good.Config.MailDir, Extra: "login_trusted_networks = 127.0.0.1/32"})
		site.Dovecot[DovecotBehindNginx] = backend
		n := StartNginx(t, NginxConfig{Certs: site.Certs, Accounts: accts, IMAP: backend.IMAP, POP3: backend.POP3})
		for name, addr := range n.Addr {
			site.Other[name] = addr
		}
		site.OtherVersions[FamilyNginx] = n.Version + " with ngx_mail_module"
	}
	if missing[FamilyHAProxy] = missingFamily(FamilyHAProxy); missing[FamilyHAProxy] == "" {
		h := StartHAProxy(t, site.Certs, good.IMAP, good.POP3)
		for name, addr := range h.Addr {
			site.Other[name] = addr
		}
		site.OtherVersions[FamilyHAProxy] = h.Version
	}
	if missing[FamilyBIND] = missingFamily(FamilyBIND); missing[FamilyBIND] == "" {
		addrs, version := StartResolvers(t, site.DNS.Addr)
		for name, addr := range addrs {
			site.Other[name] = addr
		}
		site.OtherVersions[FamilyBIND] = version
	}
	if missing[FamilyOpenSMTPD] = missingOpenSMTPD(); missing[FamilyOpenSMTPD] == "" {
		deb, err := UnpackDeb(context.Background(), OpenSMTPDPackage)
		if err != nil {
			missing[FamilyOpenSMTPD] = err.Error()
		} else {
			o := StartOpenSMTPD(t, OpenSMTPDConfig{Deb: deb, Certs: site.Certs, Accounts: sortedAccounts(site), MailDir: site.MailDir})
			for name, addr := range o.Addr {
				site.Other[name] = addr
				site.Plain[name] = true
			}
			site.OtherVersions[FamilyOpenSMTPD] = "OpenSMTPD " + deb.Version + " (Debian package " + OpenSMTPDPackage + ", unpacked)"
		}
	}
	if missing[FamilyCourier] = missingOpenSMTPD(); missing[FamilyCourier] == "" {
		var debs []UnpackedDeb
		for _, pkg := range CourierPackages {
			deb, err := UnpackDeb(context.Background(), pkg)
			if err != nil {
				missing[FamilyCourier] = err.Error()
				break
			}
			debs = append(debs, deb)
		}
		if missing[FamilyCourier] == "" {
			c := StartCourier(t, CourierConfig{Debs: debs, Certs: site.Certs, Accounts: sortedAccounts(site), MailDir: site.MailDir})
			for name, addr := range c.Addr {
				site.Other[name] = addr
				site.Plain[name] = true
			}
			site.OtherVersions[FamilyCourier] = "Courier-IMAP " + c.Version + " (Debian packages courier-imap, courier-pop, unpacked)"
		}
	}
	return missing
}

// missingOpenSMTPD says why OpenSMTPD (or Courier) cannot run unpacked
// here: it needs apt-get and dpkg-deb to fetch it, unshare/mount for its
// namespace, and setpriv (Courier's gam_server).
func missingOpenSMTPD() string {
	for _, tool := range []string{"apt-get", "dpkg-deb", "unshare", "mount", "openssl", "setpriv"} {
		if _, err := exec.LookPath(tool); err != nil {
			return tool + " missing: the family runs unpacked from its .deb in a mount namespace"
		}
	}
	return ""
}

// sortedAccounts are the site's accounts by address.
func sortedAccounts(site *Site) []Account {
	var accts []Account
	for _, a := range site.Accounts {
		accts = append(accts, a)
	}
	slices.SortFunc(accts, func(a, b Account) int { return strings.Compare(a.Email, b.Email) })
	return accts
}

// familyVersion is the recording header's addition for family.
func familyVersion(site *Site, family string) string {
	if v := site.OtherVersions[family]; v != "" {
		return "; " + v
	}
	return ""
}

// recordLookup records, for a case whose customer uses a resolver of her
// own, what that resolver answers for the mail host, as the mail client's
// first step; false means the client gets no address and goes no further.
func recordLookup(ctx context.Context, tr *Transcript, resolver string) (bool, error) {
	m := new(dns.Msg)
	m.SetQuestion(MailHost+".", dns.TypeA)
	c := &dns.Client{Net: "udp", Timeout: 10 * time.Second}
	r, _, err := c.ExchangeContext(ctx, m, resolver)
	if err != nil {
		tr.Note("dns: %s A from the customer's resolver: %s", MailHost, stableError(err))
		return false, fmt.Errorf("resolve %s: %w", MailHost, err)
	}
	var addrs []string
	for _, rr := range r.Answer {
		if a, ok := rr.(*dns.A); ok {
			addrs = append(addrs, a.A.String())
		}
	}
	tr.Note("dns: %s A from the customer's resolver: %s %v", MailHost, dns.RcodeToString[r.Rcode], addrs)
	if r.Rcode == dns.RcodeServerFailure {
		// RFC 4035 §3.2.2: with CD set a validating resolver returns what
		// it got without validating, which tells a DNSSEC failure from
		// an unreachable upstream.
		m.CheckingDisabled = true
		if cd, _, err := c.ExchangeContext(ctx, m, resolver); err == nil {
			tr.Note("dns: the same query with CD (checking disabled): %s", dns.RcodeToString[cd.Rcode])
		}
	}
	return r.Rcode == dns.RcodeSuccess && len(addrs) > 0, nil
}
