package maillab

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"

	"github.com/maillab/maillab/settings"
)

// view says how a client outside the container reaches what the lab's
// settings name from inside it.
type view struct {
	// addr is the address the client dials for every lab service.
	addr netip.Addr
	// ports maps a TCP port of the container to the port the client
	// dials (the published port on the host); a port that is absent is
	// dialled unchanged.
	ports map[int]int
	// dnsPort is the port of the lab's DNS for the client, UDP and TCP.
	dnsPort int
	// files maps a path in the container to the copy the client reads.
	files map[string]string
}

// translate returns the settings s, written by the lab inside the
// container, as the client of v uses them:
//
//   - every service keeps its host name (the lab's DNS resolves it to the
//     advertised address) and gets the client's port; an Address hint
//     becomes v.addr;
//   - a resolver on the lab's DNS port becomes v.addr and the client's DNS
//     port. A resolver on another port of an unspecified or advertised
//     address (the dead resolver of dns-wrong-server) becomes v.addr with
//     the same port, where on the client's side nothing answers either;
//     any other resolver is left alone;
//   - the CA file and the customer's message file become the client's
//     copies.
//
// A file the settings name that v has no copy of is an error: settings
// that point into the container are of no use outside it.
func translate(s *settings.Settings, advertised netip.Addr, v view) (*settings.Settings, error) {
	out := s.Clone()
	for name, svc := range out.Services {
		if p, ok := v.ports[svc.Port]; ok {
			svc.Port = p
		}
		if svc.Address != "" {
			svc.Address = v.addr.String()
		}
		out.Services[name] = svc
	}
	if out.Resolver != "" {
		r, err := translateResolver(out.Resolver, advertised, v)
		if err != nil {
			return nil, err
		}
		out.Resolver = r
	}
	var err error
	if out.CAFile, err = v.file(out.CAFile); err != nil {
		return nil, err
	}
	if out.Client != nil {
		if out.Client.MessageFile, err = v.file(out.Client.MessageFile); err != nil {
			return nil, err
		}
	}
	if err := out.Validate(); err != nil {
		return nil, fmt.Errorf("translated settings: %w", err)
	}
	return out, nil
}

func translateResolver(resolver string, advertised netip.Addr, v view) (string, error) {
	host, portText, err := net.SplitHostPort(resolver)
	if err != nil {
		return "", fmt.Errorf("resolver %q: %w", resolver, err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		return "", fmt.Errorf("resolver %q: bad port", resolver)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return resolver, nil // a name: the customer's own resolver
	}
	ip = ip.Unmap()
	if !ip.IsUnspecified() && !ip.IsLoopback() && ip != advertised {
		return resolver, nil // somewhere else on purpose
	}
	if port == containerDNSPort {
		port = v.dnsPort
	}
	return net.JoinHostPort(v.addr.String(), strconv.Itoa(port)), nil
}

func (v view) file(path string) (string, error) {
	if path == "" {
		return "", nil
	}
	if local, ok := v.files[path]; ok {
		return local, nil
	}
	return "", fmt.Errorf("settings name %s, which was not copied out of the container", path)
}
