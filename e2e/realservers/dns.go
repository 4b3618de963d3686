//go:build e2e

package realservers

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// DNSServer is a small authoritative DNS server for one zone on
// 127.0.0.1, over UDP and TCP on the same port, as a mail domain's own
// name server answers: NXDOMAIN for names that do not exist, an empty
// answer (NODATA) for names without the asked type, both with the zone's
// SOA in the authority section (RFC 2308 §2), and REFUSED for names
// outside the zone.
type DNSServer struct {
	// Addr is the "127.0.0.1:port" to give clients as their resolver.
	Addr string

	zone    string
	soa     dns.RR
	mu      sync.RWMutex
	records []dns.RR
	servers []*dns.Server // the started ones
}

var _ dns.Handler = (*DNSServer)(nil)

// NewDNSServer returns a server for zone (e.g. "realmail.test") holding
// records in zone-file syntax, relative names completed with the zone
// ("mail 60 IN A 127.0.0.1", "@ 60 IN MX 10 mail"). It is not started.
func NewDNSServer(zone string, records ...string) (*DNSServer, error) {
	zone = dns.Fqdn(strings.ToLower(zone))
	s := &DNSServer{zone: zone}
	soa, err := dns.NewRR(fmt.Sprintf("%s 60 IN SOA ns.%s hostmaster.%s 1 3600 600 86400 60", zone, zone, zone))
	if err != nil {
		return nil, fmt.Errorf("soa of %s: %w", zone, err)
	}
	s.soa = soa
	for _, r := range records {
		if err := s.Add(r); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Add adds one record in zone-file syntax; it is safe while serving.
func (s *DNSServer) Add(record string) error {
	p := dns.NewZoneParser(strings.NewReader(record+"\n"), s.zone, "")
	rr, ok := p.Next()
	if !ok {
		if err := p.Err(); err != nil {
			return fmt.Errorf("record %q: %w", record, err)
		}
		return fmt.Errorf("record %q: no record", record)
	}
	name := strings.ToLower(rr.Header().Name)
	if !dns.IsSubDomain(s.zone, name) {
		return fmt.Errorf("record %q: %s is outside the zone %s", record, name, s.zone)
	}
	rr.Header().Name = name
	s.mu.Lock()
	s.records = append(s.records, rr)
	s.mu.Unlock()
	return nil
}

// Start serves on a free port of 127.0.0.1 (UDP and TCP).
func (s *DNSServer) Start() error {
	var lastErr error
	for range 5 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return fmt.Errorf("dns listen udp: %w", err)
		}
		addr := pc.LocalAddr().String()
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			// The TCP port of the same number is taken: try another.
			pc.Close()
			lastErr = err
			continue
		}
		s.Addr = addr
		for _, srv := range []*dns.Server{
			{PacketConn: pc, Handler: s},
			{Listener: ln, Handler: s, ReadTimeout: 5 * time.Second},
		} {
			started := make(chan struct{})
			srv.NotifyStartedFunc = func() { close(started) }
			errc := make(chan error, 1)
			go func() { errc <- srv.ActivateAndServe() }()
			select {
			case <-started:
				s.servers = append(s.servers, srv)
			case err := <-errc:
				pc.Close()
				ln.Close()
				s.Close()
				return fmt.Errorf("dns serve %s: %w", addr, err)
			}
		}
		return nil
	}
	return fmt.Errorf("dns listen tcp: %w", lastErr)
}

// Close stops the server.
func (s *DNSServer) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var errs []error
	for _, srv := range s.servers {
		if err := srv.ShutdownContext(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	s.servers = nil
	return errors.Join(errs...)
}

// ServeDNS answers one query (RFC 1034 §4.3.2, simplified: no
// delegation, no CNAME chasing, no wildcards).
func (s *DNSServer) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	m := s.answer(req)
	w.WriteMsg(m)
}

// answer builds the reply to req.
func (s *DNSServer) answer(req *dns.Msg) *dns.Msg {
	m := new(dns.Msg)
	if req.Opcode != dns.OpcodeQuery {
		return m.SetRcode(req, dns.RcodeNotImplemented)
	}
	if len(req.Question) != 1 {
		return m.SetRcode(req, dns.RcodeFormatError)
	}
	m.SetReply(req)
	q := req.Question[0]
	name := strings.ToLower(q.Name)
	if q.Qclass != dns.ClassINET || !dns.IsSubDomain(s.zone, name) {
		m.Rcode = dns.RcodeRefused
		return m
	}
	m.Authoritative = true
	s.mu.RLock()
	defer s.mu.RUnlock()
	exists := false
	for _, rr := range s.records {
		h := rr.Header()
		if h.Name == name {
			exists = true
			if q.Qtype == dns.TypeANY || h.Rrtype == q.Qtype || h.Rrtype == dns.TypeCNAME {
				m.Answer = append(m.Answer, dns.Copy(rr))
			}
		} else if dns.IsSubDomain(name, h.Name) {
			exists = true // an empty non-terminal such as _tcp.<zone>
		}
	}
	if name == s.zone {
		exists = true
		if q.Qtype == dns.TypeSOA || q.Qtype == dns.TypeANY {
			m.Answer = append(m.Answer, dns.Copy(s.soa))
		}
	}
	if !exists {
		m.Rcode = dns.RcodeNameError
	}
	if len(m.Answer) == 0 {
		m.Ns = append(m.Ns, dns.Copy(s.soa))
	}
	return m
}
