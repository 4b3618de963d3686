// Package dnsd is the lab's DNS server: github.com/foxcpp/go-mockdns holds
// the zone data (A, MX and RFC 6186 SRV records of the lab's providers) and
// answers queries; this package serves it over UDP and TCP on the lab's own
// sockets, with a middleware chain in front where DNS faults (SERVFAIL,
// silence, poisoned answers) act on real DNS messages.
package dnsd

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"

	"github.com/foxcpp/go-mockdns"
	"github.com/miekg/dns"

	"github.com/maillab/maillab/servers/transcript"
)

// Zone is the data of one name (go-mockdns's Zone).
type Zone = mockdns.Zone

// Middleware wraps the handler; faults are middleware.
type Middleware func(next dns.Handler) dns.Handler

// Config configures a Server.
type Config struct {
	// Zones maps fully qualified names ("mail.example.test.") to records.
	Zones map[string]Zone
	// Middleware is applied in order: the first sees a query first.
	Middleware []Middleware
	Logger     *slog.Logger
	// Transcript records each query and its answer; nil records nothing.
	Transcript transcript.Sink
}

// Server answers DNS queries from its zones.
type Server struct {
	mock    *mockdns.Server
	handler dns.Handler
	cfg     Config

	mu      sync.Mutex
	servers []*dns.Server
}

type discardLogger struct{}

func (discardLogger) Printf(string, ...interface{}) {}

// New returns a server holding cfg.Zones. Call Serve to answer queries.
func New(cfg Config) (*Server, error) {
	zones := make(map[string]Zone, len(cfg.Zones))
	for name, z := range cfg.Zones {
		// go-mockdns panics at query time on a malformed address; refuse
		// it here instead.
		for _, a := range z.A {
			if ip := net.ParseIP(a); ip == nil || ip.To4() == nil {
				return nil, fmt.Errorf("dns zone %s: A record %q is not an IPv4 address", name, a)
			}
		}
		for _, a := range z.AAAA {
			if ip := net.ParseIP(a); ip == nil || ip.To4() != nil {
				return nil, fmt.Errorf("dns zone %s: AAAA record %q is not an IPv6 address", name, a)
			}
		}
		zones[strings.ToLower(dns.Fqdn(name))] = z
	}
	// go-mockdns's constructor binds and serves sockets of its own in
	// goroutines; closing them at once raced with their start (miekg/dns
	// refuses to shut down a server that has not started) and leaked two
	// sockets and two goroutines per lab. The lab serves the handler on
	// sockets it chose, so the server is built without any: the zero
	// Server with its resolver's zones set answers through ServeDNS.
	mock := &mockdns.Server{Log: discardLogger{}, Authoritative: true}
	//lint:ignore SA1019 the zone map lives in the server's resolver; NewResolver makes a net.Resolver, which is not what is set here
	mock.Resolver().Zones = zones
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	var h dns.Handler = mock
	for i := len(cfg.Middleware) - 1; i >= 0; i-- {
		h = cfg.Middleware[i](h)
	}
	if cfg.Transcript != nil {
		// Outermost, so the transcript shows what the client really got.
		h = logQueries(cfg.Transcript, h)
	}
	return &Server{mock: mock, handler: h, cfg: cfg}, nil
}

// Handler returns the full handler chain (middleware + zones).
func (s *Server) Handler() dns.Handler { return s.handler }

// AppendRR adds a record at run time, e.g. an SRV record once a port is
// known. rrData is in zone-file syntax for the type.
func (s *Server) AppendRR(name string, rrType uint16, rrData string) error {
	return s.mock.AppendRR(strings.ToLower(dns.Fqdn(name)), rrType, rrData)
}

// Serve answers on a UDP socket and a TCP listener (either may be nil)
// until Close. It returns once both are serving.
func (s *Server) Serve(udp net.PacketConn, tcp net.Listener) error {
	if udp == nil && tcp == nil {
		return errors.New("dns serve: no sockets")
	}
	var servers []*dns.Server
	var started sync.WaitGroup
	if udp != nil {
		servers = append(servers, &dns.Server{PacketConn: udp, Handler: s.handler})
	}
	if tcp != nil {
		servers = append(servers, &dns.Server{Listener: tcp, Handler: s.handler})
	}
	s.mu.Lock()
	s.servers = append(s.servers, servers...)
	s.mu.Unlock()
	for _, srv := range servers {
		started.Add(1)
		srv.NotifyStartedFunc = started.Done
		go func() {
			if err := srv.ActivateAndServe(); err != nil {
				s.cfg.Logger.Debug("dns server stopped", "err", err)
			}
		}()
	}
	started.Wait()
	return nil
}

// Close stops serving. It is safe to call more than once.
func (s *Server) Close() error {
	s.mu.Lock()
	servers := s.servers
	s.servers = nil
	s.mu.Unlock()
	for _, srv := range servers {
		srv.Shutdown()
	}
	return nil
}

// logQueries records each query and a summary of its answer.
func logQueries(sink transcript.Sink, next dns.Handler) dns.Handler {
	return dns.HandlerFunc(func(w dns.ResponseWriter, m *dns.Msg) {
		ts := transcript.NewSession(sink, "dns", w.RemoteAddr())
		if len(m.Question) > 0 {
			q := m.Question[0]
			ts.Log(transcript.Client, fmt.Sprintf("%s? %s", dns.TypeToString[q.Qtype], q.Name))
		}
		rw := &recordingWriter{ResponseWriter: w, ts: ts}
		next.ServeDNS(rw, m)
		if !rw.written {
			ts.Eventf("no answer sent")
		}
	})
}

type recordingWriter struct {
	dns.ResponseWriter
	ts      *transcript.Session
	written bool
}

func (w *recordingWriter) WriteMsg(m *dns.Msg) error {
	w.written = true
	w.ts.Log(transcript.Server, Summary(m))
	return w.ResponseWriter.WriteMsg(m)
}

// Summary describes a reply in one line: the rcode and the answers.
func Summary(m *dns.Msg) string {
	var b strings.Builder
	b.WriteString(dns.RcodeToString[m.Rcode])
	for _, rr := range m.Answer {
		b.WriteString(" ")
		b.WriteString(strings.Join(strings.Fields(strings.TrimPrefix(rr.String(), rr.Header().String())), " "))
		b.WriteString(" (")
		b.WriteString(dns.TypeToString[rr.Header().Rrtype])
		b.WriteString(")")
	}
	return b.String()
}
