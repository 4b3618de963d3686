package dnsd_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/maillab/maillab/servers/dnsd"
	"github.com/maillab/maillab/servers/transcript"
)

// clientTimeout bounds every query; tests that expect silence use
// shortTimeout and check for a timeout error, never a duration.
const (
	clientTimeout = 5 * time.Second
	shortTimeout  = 200 * time.Millisecond
)

// zones are the records of a lab provider (RFC 6186 SRV records included).
func zones() map[string]dnsd.Zone {
	return map[string]dnsd.Zone{
		"Mail.Example.Test": {A: []string{"127.0.0.2"}, AAAA: []string{"::1"}},
		"example.test.": {
			MX:  []net.MX{{Host: "mail.example.test.", Pref: 10}},
			TXT: []string{"v=spf1 mx -all"},
		},
		"_submission._tcp.example.test.": {SRV: []net.SRV{{Target: "mail.example.test.", Port: 587, Priority: 0, Weight: 1}}},
		"_imaps._tcp.example.test.":      {SRV: []net.SRV{{Target: "mail.example.test.", Port: 993, Priority: 0, Weight: 1}}},
		// RFC 6186 §4: a target of "." means the service is not offered.
		"_pop3._tcp.example.test.": {SRV: []net.SRV{{Target: ".", Port: 0}}},
	}
}

// recorder is a transcript sink that keeps "dir: text" lines.
type recorder struct {
	mu      sync.Mutex
	entries []transcript.Entry
	event   chan string
}

func newRecorder() *recorder { return &recorder{event: make(chan string, 16)} }

func (r *recorder) Record(e transcript.Entry) {
	r.mu.Lock()
	r.entries = append(r.entries, e)
	r.mu.Unlock()
	if e.Dir == transcript.Event {
		r.event <- e.Text
	}
}

func (r *recorder) lines() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.entries {
		out = append(out, fmt.Sprintf("%c: %s", e.Dir, e.Text))
	}
	return out
}

// start serves cfg on one loopback port, UDP and TCP, as the lab does.
func start(t *testing.T, cfg dnsd.Config) (*dnsd.Server, string) {
	t.Helper()
	srv, err := dnsd.New(cfg)
	if err != nil {
		t.Fatalf("New() = %v", err)
	}
	var udp net.PacketConn
	var tcp net.Listener
	for attempt := 0; ; attempt++ {
		if tcp, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		if udp, err = net.ListenPacket("udp", tcp.Addr().String()); err == nil {
			break
		}
		tcp.Close()
		if attempt == 10 {
			t.Fatalf("no port free for both UDP and TCP: %v", err)
		}
	}
	if err := srv.Serve(udp, tcp); err != nil {
		t.Fatalf("Serve() = %v", err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv, tcp.Addr().String()
}

func query(t *testing.T, network, addr, name string, qtype uint16) (*dns.Msg, error) {
	t.Helper()
	c := &dns.Client{Net: network, Timeout: clientTimeout}
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	r, _, err := c.Exchange(m, addr)
	return r, err
}

// answers returns the answers of r without their headers.
func answers(r *dns.Msg) []string {
	var out []string
	for _, rr := range r.Answer {
		out = append(out, strings.TrimPrefix(rr.String(), rr.Header().String()))
	}
	return out
}

func TestQueries(t *testing.T) {
	_, addr := start(t, dnsd.Config{Zones: zones()})
	tests := []struct {
		name    string
		qname   string
		qtype   uint16
		rcode   int
		answers []string
	}{
		{"A", "mail.example.test.", dns.TypeA, dns.RcodeSuccess, []string{"127.0.0.2"}},
		{"A in other case", "MAIL.example.TEST.", dns.TypeA, dns.RcodeSuccess, []string{"127.0.0.2"}},
		{"AAAA", "mail.example.test.", dns.TypeAAAA, dns.RcodeSuccess, []string{"::1"}},
		{"MX", "example.test.", dns.TypeMX, dns.RcodeSuccess, []string{"10 mail.example.test."}},
		{"TXT", "example.test.", dns.TypeTXT, dns.RcodeSuccess, []string{`"v=spf1 mx -all"`}},
		{"SRV submission", "_submission._tcp.example.test.", dns.TypeSRV, dns.RcodeSuccess, []string{"0 1 587 mail.example.test."}},
		{"SRV imaps", "_imaps._tcp.example.test.", dns.TypeSRV, dns.RcodeSuccess, []string{"0 1 993 mail.example.test."}},
		{"SRV not offered", "_pop3._tcp.example.test.", dns.TypeSRV, dns.RcodeSuccess, []string{"0 0 0 ."}},
		{"unknown name", "imap.example.test.", dns.TypeA, dns.RcodeNameError, nil},
		{"unknown SRV", "_imap._tcp.example.test.", dns.TypeSRV, dns.RcodeNameError, nil},
		{"known name, other type", "example.test.", dns.TypeA, dns.RcodeSuccess, nil},
	}
	for _, network := range []string{"udp", "tcp"} {
		for _, tt := range tests {
			t.Run(network+"/"+tt.name, func(t *testing.T) {
				r, err := query(t, network, addr, tt.qname, tt.qtype)
				if err != nil {
					t.Fatalf("query(%s %s) = %v", tt.qname, dns.TypeToString[tt.qtype], err)
				}
				if r.Rcode != tt.rcode || !slices.Equal(answers(r), tt.answers) {
					t.Errorf("query(%s %s) = %s %q, want %s %q", tt.qname, dns.TypeToString[tt.qtype],
						dns.RcodeToString[r.Rcode], answers(r), dns.RcodeToString[tt.rcode], tt.answers)
				}
				if !r.Authoritative {
					t.Errorf("query(%s) answer is not authoritative", tt.qname)
				}
			})
		}
	}
}

// TestResolver uses the standard library resolver, as mail clients in Go
// and the diagnoser do.
func TestResolver(t *testing.T) {
	_, addr := start(t, dnsd.Config{Zones: zones()})
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}}
	ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
	defer cancel()
	ips, err := r.LookupHost(ctx, "mail.example.test")
	if err != nil || !slices.Contains(ips, "127.0.0.2") {
		t.Errorf("LookupHost(mail.example.test) = %v, %v, want 127.0.0.2", ips, err)
	}
	_, srvs, err := r.LookupSRV(ctx, "submission", "tcp", "example.test")
	if err != nil || len(srvs) != 1 || srvs[0].Port != 587 || srvs[0].Target != "mail.example.test." {
		t.Errorf("LookupSRV(submission) = %+v, %v, want mail.example.test.:587", srvs, err)
	}
	_, err = r.LookupHost(ctx, "nope.example.test")
	var de *net.DNSError
	if !errors.As(err, &de) || !de.IsNotFound {
		t.Errorf("LookupHost(nope.example.test) = %v, want a not-found *net.DNSError", err)
	}
}

func TestAppendRR(t *testing.T) {
	srv, addr := start(t, dnsd.Config{Zones: zones()})
	if err := srv.AppendRR("_IMAP._tcp.Example.test", dns.TypeSRV, "0 1 1143 mail.example.test."); err != nil {
		t.Fatalf("AppendRR() = %v", err)
	}
	r, err := query(t, "udp", addr, "_imap._tcp.example.test.", dns.TypeSRV)
	if err != nil || r.Rcode != dns.RcodeSuccess || !slices.Equal(answers(r), []string{"0 1 1143 mail.example.test."}) {
		t.Errorf("query(_imap._tcp SRV) after AppendRR = %v, %v, want the new record", r, err)
	}
	if err := srv.AppendRR("x.example.test", dns.TypeSRV, "not an srv record"); err == nil {
		t.Errorf("AppendRR(bad data) = nil, want an error")
	}
}

// poison rewrites every A answer to addr, as an attacker's resolver does.
func poison(addr string) dnsd.Middleware {
	return func(next dns.Handler) dns.Handler {
		return dns.HandlerFunc(func(w dns.ResponseWriter, m *dns.Msg) {
			next.ServeDNS(&rewriter{ResponseWriter: w, fn: func(r *dns.Msg) {
				for _, rr := range r.Answer {
					if a, ok := rr.(*dns.A); ok {
						a.A = net.ParseIP(addr)
					}
				}
			}}, m)
		})
	}
}

type rewriter struct {
	dns.ResponseWriter
	fn func(*dns.Msg)
}

func (w *rewriter) WriteMsg(m *dns.Msg) error {
	w.fn(m)
	return w.ResponseWriter.WriteMsg(m)
}

// tag records that it ran, in order.
func tag(name string, mu *sync.Mutex, order *[]string) dnsd.Middleware {
	return func(next dns.Handler) dns.Handler {
		return dns.HandlerFunc(func(w dns.ResponseWriter, m *dns.Msg) {
			mu.Lock()
			*order = append(*order, name)
			mu.Unlock()
			next.ServeDNS(w, m)
		})
	}
}

func rcode(code int) dnsd.Middleware {
	return func(dns.Handler) dns.Handler {
		return dns.HandlerFunc(func(w dns.ResponseWriter, m *dns.Msg) {
			r := new(dns.Msg)
			r.SetRcode(m, code)
			w.WriteMsg(r)
		})
	}
}

func drop(dns.Handler) dns.Handler {
	return dns.HandlerFunc(func(dns.ResponseWriter, *dns.Msg) {})
}

func TestMiddleware(t *testing.T) {
	var mu sync.Mutex
	var order []string
	tests := []struct {
		name       string
		mws        []dnsd.Middleware
		wantOrder  []string
		wantRcode  int
		wantAnswer []string
		wantLog    []string // the transcript of the query
	}{
		{name: "in order, zones last",
			mws:       []dnsd.Middleware{tag("first", &mu, &order), tag("second", &mu, &order), tag("third", &mu, &order)},
			wantOrder: []string{"first", "second", "third"}, wantRcode: dns.RcodeSuccess, wantAnswer: []string{"127.0.0.2"},
			wantLog: []string{"C: A? mail.example.test.", "S: NOERROR 127.0.0.2 (A)"}},
		{name: "poisoned answer reaches the client and the transcript",
			mws:       []dnsd.Middleware{tag("outer", &mu, &order), poison("10.6.6.6"), tag("inner", &mu, &order)},
			wantOrder: []string{"outer", "inner"}, wantRcode: dns.RcodeSuccess, wantAnswer: []string{"10.6.6.6"},
			wantLog: []string{"C: A? mail.example.test.", "S: NOERROR 10.6.6.6 (A)"}},
		{name: "an earlier middleware's answer wins",
			mws:       []dnsd.Middleware{tag("outer", &mu, &order), rcode(dns.RcodeServerFailure), tag("never", &mu, &order)},
			wantOrder: []string{"outer"}, wantRcode: dns.RcodeServerFailure,
			wantLog: []string{"C: A? mail.example.test.", "S: SERVFAIL"}},
		{name: "refused",
			mws:       []dnsd.Middleware{rcode(dns.RcodeRefused)},
			wantRcode: dns.RcodeRefused,
			wantLog:   []string{"C: A? mail.example.test.", "S: REFUSED"}},
	}
	for _, network := range []string{"udp", "tcp"} {
		for _, tt := range tests {
			t.Run(network+"/"+tt.name, func(t *testing.T) {
				order = nil
				rec := newRecorder()
				_, addr := start(t, dnsd.Config{Zones: zones(), Middleware: tt.mws, Transcript: rec})
				r, err := query(t, network, addr, "mail.example.test.", dns.TypeA)
				if err != nil {
					t.Fatalf("query() = %v", err)
				}
				if r.Rcode != tt.wantRcode || !slices.Equal(answers(r), tt.wantAnswer) {
					t.Errorf("query() = %s %q, want %s %q", dns.RcodeToString[r.Rcode], answers(r), dns.RcodeToString[tt.wantRcode], tt.wantAnswer)
				}
				mu.Lock()
				gotOrder := slices.Clone(order)
				mu.Unlock()
				if !slices.Equal(gotOrder, tt.wantOrder) {
					t.Errorf("middleware ran %q, want %q", gotOrder, tt.wantOrder)
				}
				if got := rec.lines(); !slices.Equal(got, tt.wantLog) {
					t.Errorf("transcript = %q, want %q", got, tt.wantLog)
				}
			})
		}
	}
}

func TestDroppedQuery(t *testing.T) {
	rec := newRecorder()
	_, addr := start(t, dnsd.Config{Zones: zones(), Middleware: []dnsd.Middleware{drop}, Transcript: rec})
	c := &dns.Client{Net: "udp", Timeout: shortTimeout}
	m := new(dns.Msg)
	m.SetQuestion("mail.example.test.", dns.TypeA)
	_, _, err := c.Exchange(m, addr)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("query to a dropping server = %v, want a timeout", err)
	}
	select {
	case ev := <-rec.event:
		if ev != "no answer sent" {
			t.Errorf("transcript event = %q, want %q", ev, "no answer sent")
		}
	case <-time.After(clientTimeout):
		t.Fatal("no transcript event for the dropped query")
	}
	if got, want := rec.lines(), []string{"C: A? mail.example.test.", "*: no answer sent"}; !slices.Equal(got, want) {
		t.Errorf("transcript = %q, want %q", got, want)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, e := range rec.entries {
		if e.Service != "dns" || !strings.HasPrefix(e.Remote, "127.0.0.1:") {
			t.Errorf("transcript entry %+v, want service dns from the client's address", e)
		}
	}
}

func TestServeAndClose(t *testing.T) {
	srv, err := dnsd.New(dnsd.Config{Zones: zones()})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(nil, nil); err == nil {
		t.Errorf("Serve(nil, nil) = nil, want an error")
	}

	// UDP only.
	udp, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(udp, nil); err != nil {
		t.Fatalf("Serve(udp, nil) = %v", err)
	}
	addr := udp.LocalAddr().String()
	if r, err := query(t, "udp", addr, "mail.example.test.", dns.TypeA); err != nil || r.Rcode != dns.RcodeSuccess {
		t.Errorf("query over UDP-only server = %v, %v", r, err)
	}
	if srv.Handler() == nil {
		t.Errorf("Handler() = nil")
	}
	if err := srv.Close(); err != nil {
		t.Errorf("Close() = %v", err)
	}
	if err := srv.Close(); err != nil {
		t.Errorf("second Close() = %v", err)
	}
	c := &dns.Client{Net: "udp", Timeout: shortTimeout}
	m := new(dns.Msg)
	m.SetQuestion("mail.example.test.", dns.TypeA)
	if r, _, err := c.Exchange(m, addr); err == nil {
		t.Errorf("query after Close = %v, want an error", r)
	}
}

func TestSummary(t *testing.T) {
	q := new(dns.Msg)
	q.SetQuestion("mail.example.test.", dns.TypeA)
	reply := func(rcode int, rrs ...string) *dns.Msg {
		m := new(dns.Msg)
		m.SetRcode(q, rcode)
		for _, s := range rrs {
			rr, err := dns.NewRR(s)
			if err != nil {
				t.Fatal(err)
			}
			m.Answer = append(m.Answer, rr)
		}
		return m
	}
	tests := []struct {
		name string
		m    *dns.Msg
		want string
	}{
		{"nxdomain", reply(dns.RcodeNameError), "NXDOMAIN"},
		{"servfail", reply(dns.RcodeServerFailure), "SERVFAIL"},
		{"no data", reply(dns.RcodeSuccess), "NOERROR"},
		{"A", reply(dns.RcodeSuccess, "mail.example.test. 300 IN A 127.0.0.2"), "NOERROR 127.0.0.2 (A)"},
		{"two A", reply(dns.RcodeSuccess, "mail.example.test. 300 IN A 127.0.0.2", "mail.example.test. 300 IN A 127.0.0.3"),
			"NOERROR 127.0.0.2 (A) 127.0.0.3 (A)"},
		{"CNAME chain", reply(dns.RcodeSuccess, "imap.example.test. 300 IN CNAME mail.example.test.", "mail.example.test. 300 IN A 127.0.0.2"),
			"NOERROR mail.example.test. (CNAME) 127.0.0.2 (A)"},
		{"MX", reply(dns.RcodeSuccess, "example.test. 300 IN MX 10 mail.example.test."), "NOERROR 10 mail.example.test. (MX)"},
		{"SRV", reply(dns.RcodeSuccess, "_submission._tcp.example.test. 300 IN SRV 0 1 587 mail.example.test."), "NOERROR 0 1 587 mail.example.test. (SRV)"},
		{"TXT with spaces", reply(dns.RcodeSuccess, `example.test. 300 IN TXT "v=spf1  mx -all"`), `NOERROR "v=spf1 mx -all" (TXT)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := dnsd.Summary(tt.m); got != tt.want {
				t.Errorf("Summary(%s) = %q, want %q", tt.name, got, tt.want)
			}
		})
	}
}

// TestNewBindsNothing: building a server opens no socket and starts no
// goroutine of its own (go-mockdns's constructor did both, and closing
// them at once raced with their start: two sockets and two goroutines
// leaked per lab).
func TestNewBindsNothing(t *testing.T) {
	before := runtime.NumGoroutine()
	fdsBefore, _ := os.ReadDir("/proc/self/fd")
	for i := 0; i < 50; i++ {
		srv, err := dnsd.New(dnsd.Config{Zones: zones()})
		if err != nil {
			t.Fatal(err)
		}
		srv.Close()
	}
	if after := runtime.NumGoroutine(); after > before {
		t.Errorf("goroutines %d → %d after 50 New+Close", before, after)
	}
	if fdsAfter, err := os.ReadDir("/proc/self/fd"); err == nil && len(fdsAfter) > len(fdsBefore) {
		t.Errorf("file descriptors %d → %d after 50 New+Close", len(fdsBefore), len(fdsAfter))
	}
}
