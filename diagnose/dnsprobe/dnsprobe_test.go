package dnsprobe

import (
	"context"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// fakeDNS is a scripted DNS server on 127.0.0.1 (UDP and TCP, same port).
// Names decide the behaviour: see handle.
type fakeDNS struct {
	addr string
	mu   sync.Mutex
	seen map[string]int
}

func startFakeDNS(t *testing.T) *fakeDNS {
	t.Helper()
	pc, ln := listenUDPAndTCP(t, net.Listen)
	f := &fakeDNS{addr: pc.LocalAddr().String(), seen: map[string]int{}}
	udp := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(f.handle(false))}
	tcp := &dns.Server{Listener: ln, Handler: dns.HandlerFunc(f.handle(true))}
	go udp.ActivateAndServe()
	go tcp.ActivateAndServe()
	t.Cleanup(func() { udp.Shutdown(); tcp.Shutdown() })
	return f
}

// bindAttempts bounds the search for a port free for both UDP and TCP.
const bindAttempts = 100

// listenUDPAndTCP binds UDP and TCP on the same free port of 127.0.0.1.
// The kernel picks a free UDP port, whose TCP twin may be taken by another
// process (about 1 run in 180 on a busy machine): then it closes the UDP
// socket and tries another port, so the tests always run. listenTCP is
// net.Listen, replaced by the test of this retry.
func listenUDPAndTCP(t *testing.T, listenTCP func(network, addr string) (net.Listener, error)) (net.PacketConn, net.Listener) {
	t.Helper()
	var lastErr error
	for range bindAttempts {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ln, err := listenTCP("tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, ln
		}
		lastErr = err
		pc.Close()
	}
	t.Fatalf("no port of 127.0.0.1 free for both UDP and TCP in %d attempts: %v", bindAttempts, lastErr)
	return nil, nil
}

func TestListenUDPAndTCPRetriesBusyPort(t *testing.T) {
	calls := 0
	busyOnce := func(network, addr string) (net.Listener, error) {
		calls++
		if calls == 1 {
			return nil, &net.OpError{Op: "listen", Net: network, Err: os.NewSyscallError("bind", syscall.EADDRINUSE)}
		}
		return net.Listen(network, addr)
	}
	pc, ln := listenUDPAndTCP(t, busyOnce)
	defer pc.Close()
	defer ln.Close()
	// At least 2: the busy port, then a retry; more when the retry's
	// own TCP twin happens to be taken for real (the case the retry is
	// for: about 1 run in 180 on a busy machine, where this test once
	// wanted exactly 2 and failed).
	if calls < 2 {
		t.Errorf("listenTCP called %d times, want at least 2 (one busy port, then a retry)", calls)
	}
	if pc.LocalAddr().String() != ln.Addr().String() {
		t.Errorf("UDP on %s, TCP on %s, want the same address", pc.LocalAddr(), ln.Addr())
	}
}

func (f *fakeDNS) handle(tcp bool) func(w dns.ResponseWriter, r *dns.Msg) {
	return func(w dns.ResponseWriter, r *dns.Msg) {
		q := r.Question[0]
		f.mu.Lock()
		f.seen[q.Name]++
		n := f.seen[q.Name]
		f.mu.Unlock()
		m := new(dns.Msg)
		m.SetReply(r)
		a := func(name, ip string) dns.RR {
			rr, _ := dns.NewRR(name + " 60 IN A " + ip)
			return rr
		}
		switch q.Name {
		case "nx.test.":
			m.Rcode = dns.RcodeNameError
		case "servfail.test.":
			m.Rcode = dns.RcodeServerFailure
		case "refused.test.":
			m.Rcode = dns.RcodeRefused
		case "silent.test.":
			return
		case "lossy.test.":
			if n == 1 {
				return // the first datagram is lost
			}
			if q.Qtype == dns.TypeA {
				m.Answer = append(m.Answer, a(q.Name, "127.0.0.9"))
			}
		case "mail.test.":
			if q.Qtype == dns.TypeA {
				m.Answer = append(m.Answer, a(q.Name, "127.0.0.1"))
			}
		case "alias.test.":
			rr, _ := dns.NewRR("alias.test. 60 IN CNAME mail.test.")
			m.Answer = append(m.Answer, rr)
			if q.Qtype == dns.TypeA {
				m.Answer = append(m.Answer, a("mail.test.", "127.0.0.1"))
			}
		case "big.test.":
			if q.Qtype == dns.TypeA {
				if !tcp {
					m.Truncated = true
				} else {
					m.Answer = append(m.Answer, a(q.Name, "127.0.0.2"))
				}
			}
		case "spoofed.test.":
			// A reply with the wrong ID first, then the real one.
			bad := m.Copy()
			bad.Id++
			bad.Answer = append(bad.Answer, a(q.Name, "192.0.2.66"))
			w.WriteMsg(bad)
			if q.Qtype == dns.TypeA {
				m.Answer = append(m.Answer, a(q.Name, "127.0.0.3"))
			}
		case "example.test.":
			if q.Qtype == dns.TypeMX {
				for _, s := range []string{"example.test. 60 IN MX 20 mx2.example.test.", "example.test. 60 IN MX 10 mx1.example.test."} {
					rr, _ := dns.NewRR(s)
					m.Answer = append(m.Answer, rr)
				}
			}
		case "_imaps._tcp.example.test.":
			rr, _ := dns.NewRR("_imaps._tcp.example.test. 60 IN SRV 0 1 40993 mail.example.test.")
			m.Answer = append(m.Answer, rr)
		case "_pop3._tcp.example.test.":
			rr, _ := dns.NewRR("_pop3._tcp.example.test. 60 IN SRV 0 0 0 .")
			m.Answer = append(m.Answer, rr)
		}
		w.WriteMsg(m)
	}
}

// closedUDPPort returns an address where nothing listens on UDP.
func closedUDPPort(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	pc.Close()
	return addr
}

func TestLookupHost(t *testing.T) {
	srv := startFakeDNS(t)
	tests := []struct {
		name    string
		servers []string
		outcome Outcome
		addrs   []string
		cnames  []string
	}{
		{"mail.test", nil, OK, []string{"127.0.0.1"}, nil},
		{"alias.test", nil, OK, []string{"127.0.0.1"}, []string{"mail.test"}},
		{"nx.test", nil, NXDomain, nil, nil},
		{"servfail.test", nil, ServFail, nil, nil},
		{"refused.test", nil, Refused, nil, nil},
		{"silent.test", nil, Timeout, nil, nil},
		{"big.test", nil, OK, []string{"127.0.0.2"}, nil},
		{"spoofed.test", nil, OK, []string{"127.0.0.3"}, nil},
		{"lossy.test", nil, OK, []string{"127.0.0.9"}, nil},
		{"example.test", nil, NoData, nil, nil},
		{"mail.test", []string{closedUDPPort(t)}, Unreachable, nil, nil},
		{"mail.test", []string{"not-an-address:53"}, Unreachable, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name+"/"+strings.Join(tt.servers, ","), func(t *testing.T) {
			servers := tt.servers
			if servers == nil {
				servers = []string{srv.addr}
			}
			c := &Client{Servers: servers, Timeout: 300 * time.Millisecond}
			r := c.LookupHost(context.Background(), tt.name)
			if r.Outcome != tt.outcome {
				t.Fatalf("LookupHost(%s) = %s (%s), want %s", tt.name, r.Outcome, r.Describe(), tt.outcome)
			}
			var got []string
			for _, a := range r.Addrs {
				got = append(got, a.String())
			}
			if !slices.Equal(got, tt.addrs) || !slices.Equal(r.CNAMEs, tt.cnames) {
				t.Errorf("LookupHost(%s) = %v via %v, want %v via %v", tt.name, got, r.CNAMEs, tt.addrs, tt.cnames)
			}
		})
	}
}

func TestSecondServerAnswers(t *testing.T) {
	srv := startFakeDNS(t)
	c := &Client{Servers: []string{closedUDPPort(t), srv.addr}, Timeout: 300 * time.Millisecond}
	r := c.Query(context.Background(), "mail.test", dns.TypeA)
	if r.Outcome != OK || r.Server != srv.addr || len(r.Tries) != 2 || r.Tries[0].Outcome != Unreachable {
		t.Errorf("Query = %s via %s, tries %v", r.Outcome, r.Server, r.Tries)
	}
}

func TestLookupMXAndSRV(t *testing.T) {
	srv := startFakeDNS(t)
	c := &Client{Servers: []string{srv.addr}, Timeout: 300 * time.Millisecond}
	mx, r := c.LookupMX(context.Background(), "example.test")
	if r.Outcome != OK || len(mx) != 2 || mx[0].Host != "mx1.example.test" {
		t.Errorf("LookupMX = %v, %s", mx, r.Outcome)
	}
	recs, notOffered, r := c.LookupSRV(context.Background(), "imaps", "example.test")
	if r.Outcome != OK || notOffered || len(recs) != 1 || recs[0].Port != 40993 || recs[0].Target != "mail.example.test" {
		t.Errorf("LookupSRV(imaps) = %v, %v, %s", recs, notOffered, r.Outcome)
	}
	if _, notOffered, _ := c.LookupSRV(context.Background(), "pop3", "example.test"); !notOffered {
		t.Error(`LookupSRV(pop3) with target "." not reported as not offered`)
	}
	if _, _, r := c.LookupSRV(context.Background(), "submission", "example.test"); r.Outcome != NoData {
		t.Errorf("LookupSRV(submission) = %s, want NODATA", r.Outcome)
	}
}

func TestSystemConfigAndHosts(t *testing.T) {
	srv := startFakeDNS(t)
	dir := t.TempDir()
	host, port, _ := net.SplitHostPort(srv.addr)
	resolv := filepath.Join(dir, "resolv.conf")
	hosts := filepath.Join(dir, "hosts")
	os.WriteFile(resolv, []byte("# test\nnameserver "+host+"\noptions timeout:1\n"), 0o644)
	os.WriteFile(hosts, []byte("127.0.0.1 localhost\n::1 localhost ip6-localhost\n127.0.0.7 Stale.Example.TEST # old entry\n"), 0o644)
	c := &Client{ResolvConf: resolv, HostsFile: hosts, Timeout: 300 * time.Millisecond}
	if got := c.LookupHost(context.Background(), "stale.example.test."); got.Server != HostsSource || len(got.Addrs) != 1 || got.Addrs[0] != netip.MustParseAddr("127.0.0.7") {
		t.Errorf("hosts lookup = %v from %q", got.Addrs, got.Server)
	}
	// resolv.conf gives no port: the client asks port 53 on that host,
	// which is not our fake server; rewrite the list to check parsing only.
	servers, err := c.ServerList()
	if err != nil || len(servers) != 1 || servers[0] != net.JoinHostPort(host, "53") {
		t.Errorf("ServerList = %v, %v", servers, err)
	}
	_ = port
}

func TestContextCancelStopsWait(t *testing.T) {
	srv := startFakeDNS(t)
	c := &Client{Servers: []string{srv.addr}, Timeout: time.Hour}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	r := c.Query(ctx, "silent.test", dns.TypeA)
	if r.Outcome != Timeout {
		t.Errorf("Query = %s, want timeout", r.Outcome)
	}
}
