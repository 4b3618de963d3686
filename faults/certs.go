package faults

import (
	"crypto/x509"
	"net"

	"github.com/maillab/maillab/lab"
	"github.com/maillab/maillab/servers/pki"
)

// Helpers shared by the certificate faults (one file each).

// presentCertificate makes the selected services present leaf followed by
// chain.
func presentCertificate(sel *Selection, leaf *pki.Leaf, chain ...*x509.Certificate) {
	cert := leaf.TLSCertificate(chain...)
	for _, svc := range sel.Services {
		c := cert
		svc.Certificate = &c
	}
}

// labLeafSpec is the good certificate's names, for faults that break
// something else about it.
func labLeafSpec(l *lab.Lab) pki.LeafSpec {
	p := l.Primary
	spec := pki.LeafSpec{DNSNames: append([]string(nil), p.Hosts...), Organization: "maillab"}
	if ip := net.ParseIP(p.AdvertisedIP); ip != nil {
		spec.IPs = []net.IP{ip}
	}
	return spec
}
