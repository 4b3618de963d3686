package dnsprobe

import (
	"bufio"
	"bytes"
	"net/netip"
	"strings"
)

// Hosts is a parsed hosts(5) file.
type Hosts struct {
	byName map[string][]netip.Addr
}

// ParseHosts parses a hosts file: "address name [aliases...]" per line,
// "#" starts a comment. Malformed lines are skipped, as the C library does.
func ParseHosts(data []byte) *Hosts {
	h := &Hosts{byName: map[string][]netip.Addr{}}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	for sc.Scan() {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		// Zones ("fe80::1%lo") are not for mail servers; ParseAddr keeps them.
		ip, err := netip.ParseAddr(f[0])
		if err != nil {
			continue
		}
		for _, name := range f[1:] {
			key := strings.ToLower(strings.TrimSuffix(name, "."))
			if !containsAddr(h.byName[key], ip) {
				h.byName[key] = append(h.byName[key], ip)
			}
		}
	}
	return h
}

// Lookup returns the addresses of name, IPv4 first.
func (h *Hosts) Lookup(name string) []netip.Addr {
	addrs := h.byName[strings.ToLower(strings.TrimSuffix(name, "."))]
	var v4, v6 []netip.Addr
	for _, a := range addrs {
		if a.Unmap().Is4() {
			v4 = append(v4, a.Unmap())
		} else {
			v6 = append(v6, a)
		}
	}
	return append(v4, v6...)
}

func containsAddr(list []netip.Addr, a netip.Addr) bool {
	for _, x := range list {
		if x == a {
			return true
		}
	}
	return false
}
