// Package dnsprobe is a DNS stub resolver that keeps apart what Go's
// resolver merges: NXDOMAIN, NODATA, SERVFAIL, REFUSED, no answer at all,
// and a resolver that cannot be reached. It asks one server at a time over
// a connected UDP socket (so an ICMP port unreachable surfaces as
// ECONNREFUSED) and falls back to TCP when a reply is truncated (RFC 1035
// §4.2.1, RFC 7766 §5).
package dnsprobe

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/miekg/dns"
)

// Outcome classifies one DNS lookup.
type Outcome int

// Outcomes of a lookup, from the best to the worst news.
const (
	// OK: the name has records of the asked type.
	OK Outcome = iota
	// NoData: the name exists but has no records of the asked type
	// (NOERROR with an empty answer, RFC 2308 §2.2).
	NoData
	// NXDomain: the name does not exist (RCODE 3, RFC 1035 §4.1.1).
	NXDomain
	// ServFail: the resolver failed to answer (RCODE 2).
	ServFail
	// Refused: the resolver refuses to answer (RCODE 5), typically because
	// it is not a recursive resolver for this client.
	Refused
	// BadReply: another RCODE or a malformed reply.
	BadReply
	// Unreachable: the resolver cannot be reached (ICMP port unreachable,
	// no route, TCP refused).
	Unreachable
	// Timeout: no reply before the deadline.
	Timeout
)

var outcomeNames = [...]string{"OK", "NODATA", "NXDOMAIN", "SERVFAIL", "REFUSED", "bad reply", "unreachable", "timeout"}

// String returns the conventional name, e.g. "NXDOMAIN".
func (o Outcome) String() string {
	if int(o) < len(outcomeNames) {
		return outcomeNames[o]
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// Definitive reports whether the outcome is an answer about the name
// (OK, NODATA or NXDOMAIN) rather than a failure of the resolver.
func (o Outcome) Definitive() bool { return o == OK || o == NoData || o == NXDomain }

// Try is what one server said to one query.
type Try struct {
	Server  string
	Outcome Outcome
	Rcode   int
	// Err is the socket or parse error behind Unreachable, Timeout and
	// BadReply.
	Err     error
	Elapsed time.Duration
	// TCP is true when the reply came over TCP after a truncated UDP reply.
	TCP bool
}

// String describes the try for evidence, e.g. "127.0.0.1:53 answered SERVFAIL".
func (t Try) String() string {
	switch t.Outcome {
	case Timeout:
		return fmt.Sprintf("%s did not answer within %s", t.Server, t.Elapsed.Round(time.Millisecond))
	case Unreachable:
		return fmt.Sprintf("%s is unreachable (%v)", t.Server, errDetail(t.Err))
	case BadReply:
		if t.Err != nil {
			return fmt.Sprintf("%s sent a bad reply (%v)", t.Server, t.Err)
		}
		return fmt.Sprintf("%s answered %s", t.Server, dns.RcodeToString[t.Rcode])
	}
	return fmt.Sprintf("%s answered %s", t.Server, t.Outcome)
}

func errDetail(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno.Error()
	}
	if err == nil {
		return "no error"
	}
	return err.Error()
}

// Result is the verdict of a lookup across the servers tried.
type Result struct {
	Name    string
	Type    uint16
	Outcome Outcome
	// Msg is the deciding reply, nil when no server replied.
	Msg *dns.Msg
	// Server is the server whose reply decided the outcome, or
	// HostsSource when the hosts file answered.
	Server string
	// Tries lists every server asked, in order.
	Tries   []Try
	Elapsed time.Duration
}

// HostsSource is Result.Server when the hosts file answered.
const HostsSource = "hosts file"

// Describe returns one line of evidence, e.g. "A mail.example.test:
// 127.0.0.1:53 answered NXDOMAIN".
func (r Result) Describe() string {
	var parts []string
	for _, t := range r.Tries {
		parts = append(parts, t.String())
	}
	if len(parts) == 0 {
		return fmt.Sprintf("%s %s: %s", dns.TypeToString[r.Type], r.Name, r.Outcome)
	}
	return fmt.Sprintf("%s %s: %s", dns.TypeToString[r.Type], r.Name, strings.Join(parts, "; "))
}

// Client asks DNS servers. The zero value uses the nameservers of
// /etc/resolv.conf, consults /etc/hosts first, and waits 3 s per server.
type Client struct {
	// Servers are "host:port" addresses to ask in order. Empty means the
	// nameservers of ResolvConf, and the hosts file is consulted first,
	// as the operating system does.
	Servers []string
	// ResolvConf is the resolv.conf path; "" means /etc/resolv.conf.
	ResolvConf string
	// HostsFile is the hosts path; "" means /etc/hosts.
	HostsFile string
	// Timeout bounds the wait for one server; 0 means 3 s.
	Timeout time.Duration

	once    sync.Once
	servers []string
	hosts   *Hosts
	confErr error
}

func (c *Client) init() {
	c.once.Do(func() {
		if len(c.Servers) > 0 {
			c.servers = c.Servers
			return
		}
		path := c.ResolvConf
		if path == "" {
			path = "/etc/resolv.conf"
		}
		conf, err := dns.ClientConfigFromFile(path)
		switch {
		case err != nil && errors.Is(err, os.ErrNotExist):
			// Like glibc and Go: no resolv.conf means a local resolver.
			c.servers = []string{"127.0.0.1:53"}
		case err != nil:
			c.confErr = fmt.Errorf("read %s: %w", path, err)
		default:
			for _, s := range conf.Servers {
				c.servers = append(c.servers, net.JoinHostPort(s, conf.Port))
			}
			if len(c.servers) == 0 {
				c.servers = []string{"127.0.0.1:53"}
			}
		}
		hp := c.HostsFile
		if hp == "" {
			hp = "/etc/hosts"
		}
		if data, err := os.ReadFile(hp); err == nil {
			c.hosts = ParseHosts(data)
		}
	})
}

// ServerList returns the servers the client asks, or an error if the
// resolver configuration is unreadable.
func (c *Client) ServerList() ([]string, error) {
	c.init()
	return c.servers, c.confErr
}

// UsesHosts reports whether the hosts file is consulted first.
func (c *Client) UsesHosts() bool { c.init(); return c.hosts != nil }

func (c *Client) timeout() time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return 3 * time.Second
}

// Query asks for name (absolute or not) and qtype, trying the servers in
// order until one gives a definitive answer.
func (c *Client) Query(ctx context.Context, name string, qtype uint16) Result {
	c.init()
	start := time.Now()
	res := Result{Name: dns.Fqdn(name), Type: qtype, Outcome: Timeout}
	if c.confErr != nil {
		res.Outcome = Unreachable
		res.Tries = []Try{{Server: "resolv.conf", Outcome: Unreachable, Err: c.confErr}}
		return res
	}
	var best *Try
	for _, server := range c.servers {
		msg, t := c.exchange(ctx, server, res.Name, qtype)
		res.Tries = append(res.Tries, t)
		if t.Outcome.Definitive() {
			res.Outcome, res.Msg, res.Server = t.Outcome, msg, server
			res.Elapsed = time.Since(start)
			return res
		}
		if best == nil || worseRank(t.Outcome) < worseRank(best.Outcome) {
			tt := t
			best = &tt
			res.Msg = msg
		}
		if ctx.Err() != nil {
			break
		}
	}
	if best != nil {
		res.Outcome, res.Server = best.Outcome, best.Server
	}
	res.Elapsed = time.Since(start)
	return res
}

// worseRank orders failures by how much they tell: a SERVFAIL is news about
// the name, a timeout tells least.
func worseRank(o Outcome) int {
	switch o {
	case ServFail:
		return 0
	case Refused:
		return 1
	case BadReply:
		return 2
	case Unreachable:
		return 3
	}
	return 4
}

// exchange sends one query to server over UDP (with one retransmission at
// half the timeout) and over TCP if the reply is truncated.
func (c *Client) exchange(ctx context.Context, server, name string, qtype uint16) (*dns.Msg, Try) {
	t := Try{Server: server}
	start := time.Now()
	deadline := start.Add(c.timeout())
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	q := new(dns.Msg)
	q.SetQuestion(name, qtype)
	q.RecursionDesired = true
	// RFC 6891: advertise a 1232-byte UDP buffer (DNS flag day 2020).
	q.SetEdns0(1232, false)
	msg, err := c.exchangeUDP(ctx, server, q, deadline)
	if err == nil && msg.Truncated {
		t.TCP = true
		msg, err = c.exchangeTCP(ctx, server, q, deadline)
	}
	t.Elapsed = time.Since(start)
	if err != nil {
		t.Err = err
		t.Outcome = classifyErr(err)
		return nil, t
	}
	t.Rcode = msg.Rcode
	t.Outcome = classifyReply(msg, qtype)
	return msg, t
}

// classifyErr maps a socket error to Unreachable or Timeout from its errno
// and net.Error.Timeout, never from its text.
func classifyErr(err error) Outcome {
	var ne net.Error
	switch {
	case errors.Is(err, errBadReply):
		return BadReply
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ENETUNREACH),
		errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.EADDRNOTAVAIL),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EACCES),
		errors.Is(err, syscall.EPERM):
		return Unreachable
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return Timeout
	case errors.As(err, &ne) && ne.Timeout():
		return Timeout
	case errors.Is(err, context.Canceled):
		return Timeout
	}
	var ae *net.AddrError
	var dnsErr *net.DNSError
	if errors.As(err, &ae) || errors.As(err, &dnsErr) {
		// A resolver address that is not an address ("dns.example:53").
		return Unreachable
	}
	return Unreachable
}

// classifyReply maps an RCODE and answer section to an Outcome (RFC 1035
// §4.1.1, RFC 2308 §2).
func classifyReply(m *dns.Msg, qtype uint16) Outcome {
	switch m.Rcode {
	case dns.RcodeSuccess:
		if len(answersOf(m, m.Question[0].Name, qtype)) > 0 {
			return OK
		}
		return NoData
	case dns.RcodeNameError:
		return NXDomain
	case dns.RcodeServerFailure:
		return ServFail
	case dns.RcodeRefused:
		return Refused
	}
	return BadReply
}

var errBadReply = errors.New("bad reply")

func (c *Client) exchangeUDP(ctx context.Context, server string, q *dns.Msg, deadline time.Time) (*dns.Msg, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "udp", server)
	if err != nil {
		return nil, fmt.Errorf("dial udp %s: %w", server, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()
	packed, err := q.Pack()
	if err != nil {
		return nil, fmt.Errorf("pack query: %w", err)
	}
	// Retransmit once at half time: one lost datagram is not an outage.
	retransmit := time.Now().Add(time.Until(deadline) / 2)
	if _, err := conn.Write(packed); err != nil {
		return nil, fmt.Errorf("send to %s: %w", server, err)
	}
	buf := make([]byte, 65535)
	resent := false
	for {
		wait := deadline
		if !resent {
			wait = retransmit
		}
		conn.SetReadDeadline(wait)
		n, err := conn.Read(buf)
		if err != nil {
			var ne net.Error
			if !resent && errors.As(err, &ne) && ne.Timeout() && ctx.Err() == nil {
				resent = true
				if _, err := conn.Write(packed); err != nil {
					return nil, fmt.Errorf("send to %s: %w", server, err)
				}
				continue
			}
			return nil, fmt.Errorf("read from %s: %w", server, err)
		}
		m := new(dns.Msg)
		if err := m.Unpack(buf[:n]); err != nil {
			// A garbled datagram may be an attack or noise: keep waiting
			// for the real reply, as resolvers do.
			continue
		}
		if m.Id != q.Id || !m.Response || !sameQuestion(m, q) {
			continue
		}
		return m, nil
	}
}

func (c *Client) exchangeTCP(ctx context.Context, server string, q *dns.Msg, deadline time.Time) (*dns.Msg, error) {
	d := net.Dialer{Deadline: deadline}
	conn, err := d.DialContext(ctx, "tcp", server)
	if err != nil {
		return nil, fmt.Errorf("dial tcp %s: %w", server, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()
	conn.SetDeadline(deadline)
	co := &dns.Conn{Conn: conn}
	if err := co.WriteMsg(q); err != nil {
		return nil, fmt.Errorf("send to %s over tcp: %w", server, err)
	}
	m, err := co.ReadMsg()
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) || errors.Is(err, syscall.ECONNRESET) {
			return nil, fmt.Errorf("read from %s over tcp: %w", server, err)
		}
		return nil, fmt.Errorf("read from %s over tcp: %w: %v", server, errBadReply, err)
	}
	if m.Id != q.Id || !sameQuestion(m, q) {
		return nil, fmt.Errorf("reply from %s over tcp: %w: mismatched id or question", server, errBadReply)
	}
	return m, nil
}

func sameQuestion(m, q *dns.Msg) bool {
	if len(m.Question) != 1 {
		return false
	}
	a, b := m.Question[0], q.Question[0]
	return a.Qtype == b.Qtype && a.Qclass == b.Qclass && strings.EqualFold(a.Name, b.Name)
}

// answersOf returns the records of qtype for name, following CNAMEs in the
// answer section.
func answersOf(m *dns.Msg, name string, qtype uint16) []dns.RR {
	chain := cnameChain(m, name)
	owner := name
	if len(chain) > 0 {
		owner = dns.Fqdn(chain[len(chain)-1])
	}
	var out []dns.RR
	for _, rr := range m.Answer {
		if rr.Header().Rrtype == qtype && strings.EqualFold(rr.Header().Name, owner) {
			out = append(out, rr)
		}
	}
	return out
}

// cnameChain returns the CNAME targets from name, in order, at most 8 deep.
func cnameChain(m *dns.Msg, name string) []string {
	var chain []string
	cur := name
	for i := 0; i < 8; i++ {
		found := false
		for _, rr := range m.Answer {
			if c, ok := rr.(*dns.CNAME); ok && strings.EqualFold(c.Hdr.Name, cur) {
				chain = append(chain, strings.TrimSuffix(c.Target, "."))
				cur = c.Target
				found = true
				break
			}
		}
		if !found {
			break
		}
	}
	return chain
}

// HostResult is the verdict of LookupHost.
type HostResult struct {
	// Result is the A lookup's verdict, or the AAAA one when only AAAA
	// found addresses or gave the definitive answer.
	Result
	// Addrs are the IPv4 addresses, then the IPv6 ones.
	Addrs []netip.Addr
	// CNAMEs is the alias chain from the name, in order.
	CNAMEs []string
	// AAAA is the AAAA lookup's verdict (zero when the hosts file
	// answered).
	AAAA Result
}

// LookupHost resolves name to addresses: from the hosts file first when the
// client uses the system configuration, else A and AAAA queries in
// parallel.
func (c *Client) LookupHost(ctx context.Context, name string) HostResult {
	c.init()
	name = strings.TrimSuffix(name, ".")
	if c.hosts != nil && len(c.Servers) == 0 {
		if addrs := c.hosts.Lookup(name); len(addrs) > 0 {
			return HostResult{Result: Result{Name: dns.Fqdn(name), Type: dns.TypeA, Outcome: OK, Server: HostsSource}, Addrs: addrs}
		}
	}
	var a, aaaa Result
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); a = c.Query(ctx, name, dns.TypeA) }()
	go func() { defer wg.Done(); aaaa = c.Query(ctx, name, dns.TypeAAAA) }()
	wg.Wait()
	hr := HostResult{Result: a, AAAA: aaaa}
	for _, r := range []Result{a, aaaa} {
		if r.Msg == nil {
			continue
		}
		if len(hr.CNAMEs) == 0 {
			hr.CNAMEs = cnameChain(r.Msg, r.Name)
		}
		for _, rr := range answersOf(r.Msg, r.Name, r.Type) {
			switch v := rr.(type) {
			case *dns.A:
				if ip, ok := netip.AddrFromSlice(v.A.To4()); ok {
					hr.Addrs = append(hr.Addrs, ip)
				}
			case *dns.AAAA:
				if ip, ok := netip.AddrFromSlice(v.AAAA); ok {
					hr.Addrs = append(hr.Addrs, ip)
				}
			}
		}
	}
	switch {
	case len(hr.Addrs) > 0:
		hr.Outcome = OK
	case a.Outcome == NoData && !aaaa.Outcome.Definitive():
		// The A answer is news, the AAAA failure is not about this name.
		hr.Result = a
	case aaaa.Outcome == NXDomain && !a.Outcome.Definitive():
		hr.Result = aaaa
	}
	return hr
}

// MX is one mail exchanger.
type MX struct {
	Host string
	Pref uint16
}

// LookupMX returns the MX records of domain, sorted by preference, and the
// lookup's verdict. A "null MX" (RFC 7505: one record with target ".")
// returns no hosts and OK.
func (c *Client) LookupMX(ctx context.Context, domain string) ([]MX, Result) {
	r := c.Query(ctx, domain, dns.TypeMX)
	if r.Outcome != OK {
		return nil, r
	}
	var out []MX
	for _, rr := range answersOf(r.Msg, r.Name, dns.TypeMX) {
		mx := rr.(*dns.MX)
		if mx.Mx == "." {
			continue
		}
		out = append(out, MX{Host: strings.TrimSuffix(mx.Mx, "."), Pref: mx.Preference})
	}
	slices.SortStableFunc(out, func(a, b MX) int { return cmp.Compare(a.Pref, b.Pref) })
	return out, r
}

// SRV is one service record (RFC 2782).
type SRV struct {
	Target   string
	Port     uint16
	Priority uint16
	Weight   uint16
}

// LookupSRV returns the SRV records of "_service._tcp.domain" sorted by
// priority, and the verdict. RFC 6186 §3.4: a single record with target "."
// means the service is not offered; notOffered is then true.
func (c *Client) LookupSRV(ctx context.Context, service, domain string) (recs []SRV, notOffered bool, r Result) {
	r = c.Query(ctx, "_"+service+"._tcp."+domain, dns.TypeSRV)
	if r.Outcome != OK {
		return nil, false, r
	}
	for _, rr := range answersOf(r.Msg, r.Name, dns.TypeSRV) {
		s := rr.(*dns.SRV)
		if s.Target == "." {
			notOffered = true
			continue
		}
		recs = append(recs, SRV{Target: strings.TrimSuffix(s.Target, "."), Port: s.Port, Priority: s.Priority, Weight: s.Weight})
	}
	slices.SortStableFunc(recs, func(a, b SRV) int {
		if c := cmp.Compare(a.Priority, b.Priority); c != 0 {
			return c
		}
		return cmp.Compare(b.Weight, a.Weight)
	})
	return recs, notOffered && len(recs) == 0, r
}
