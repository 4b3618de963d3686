package diagnose

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/md5"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/maillab/maillab/diagnose/internal/testpki"
)

// The fakes in this file are small scripted mail and DNS servers on
// 127.0.0.1. Each protocol fake behaves like a correct server unless a
// knob says otherwise; the knobs reproduce the failures of the catalog
// with the wording of real servers.

const (
	testUser = "alice@example.test"
	testPass = "s3cret"
)

// fakeServer accepts connections and hands each to handle.
type fakeServer struct {
	t      *testing.T
	ln     net.Listener
	port   int
	conns  atomic.Int32
	wg     sync.WaitGroup
	handle func(c *fconn)
}

func startServer(t *testing.T, implicit *tls.Config, handle func(c *fconn)) *fakeServer {
	t.Helper()
	return startServerOn(t, net.ListenConfig{}, implicit, handle)
}

// startSmallWindowServer is startServer with a receive buffer of rcvBuf
// bytes on every connection from its start, so that TCP's window stays
// small and a slow reader is felt by the client as a steady pace (a large
// window on loopback reopens only after tens of KiB were read).
func startSmallWindowServer(t *testing.T, rcvBuf int, handle func(c *fconn)) *fakeServer {
	t.Helper()
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvBuf)
		})
		return errors.Join(err, serr)
	}}
	return startServerOn(t, lc, nil, handle)
}

func startServerOn(t *testing.T, lc net.ListenConfig, implicit *tls.Config, handle func(c *fconn)) *fakeServer {
	t.Helper()
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &fakeServer{t: t, ln: ln, port: ln.Addr().(*net.TCPAddr).Port, handle: handle}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n := int(s.conns.Add(1))
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer c.Close()
				c.SetDeadline(time.Now().Add(20 * time.Second))
				fc := &fconn{t: t, Conn: c, raw: c, n: n}
				if implicit != nil {
					tc := tls.Server(c, implicit)
					if err := tc.Handshake(); err != nil {
						return
					}
					fc.Conn = tc
				}
				fc.r = bufio.NewReader(fc.Conn)
				handle(fc)
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); s.wg.Wait() })
	return s
}

// fconn is one server-side connection.
type fconn struct {
	t *testing.T
	net.Conn
	raw net.Conn // the TCP connection under TLS
	r   *bufio.Reader
	n   int // 1 for the first connection
}

func (c *fconn) send(lines ...string) {
	for _, l := range lines {
		io.WriteString(c.Conn, l+"\r\n")
	}
}

// read returns the next line, or ok=false when the client went away.
func (c *fconn) read() (string, bool) {
	l, err := c.r.ReadString('\n')
	if err != nil {
		return "", false
	}
	return strings.TrimRight(l, "\r\n"), true
}

func (c *fconn) upgrade(cfg *tls.Config) bool {
	tc := tls.Server(c.Conn, cfg)
	if err := tc.Handshake(); err != nil {
		return false
	}
	c.Conn = tc
	c.r = bufio.NewReader(tc)
	return true
}

// reset closes with RST (SO_LINGER 0).
func (c *fconn) reset() {
	if tc, ok := c.Conn.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.Conn.Close()
}

func (c *fconn) isTLS() bool { _, ok := c.Conn.(*tls.Conn); return ok }

// decodePlain splits a SASL PLAIN response.
func decodePlain(b64s string) (user, pass string) {
	raw, _ := base64.StdEncoding.DecodeString(b64s)
	parts := strings.Split(string(raw), "\x00")
	if len(parts) != 3 {
		return "", ""
	}
	return parts[1], parts[2]
}

func b64s(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// smtpFake is a scripted SMTP server.
type smtpFake struct {
	greeting      string
	greetingDelay time.Duration
	ehlo          []string // extensions before TLS
	ehloTLS       []string // extensions after TLS
	tls           *tls.Config
	starttlsReply string
	// afterStartTLS replaces the handshake after the STARTTLS reply.
	afterStartTLS func(c *fconn)
	// authReply answers a login; nil: alice/s3cret is accepted.
	authReply func(mech, user, pass string) string
	// resetOnAuth resets the connection on any AUTH command.
	resetOnAuth bool
	// bareAuthReply answers an AUTH command without initial response.
	bareAuthReply string
	mailReply     string
	rcptReply     string
	dataEndReply  string
	// dataBytesPerSec throttles reading the message.
	dataBytesPerSec int
	// noDataEndReply never answers after the message.
	noDataEndReply bool
	// resetAfterGreeting cuts every connection after the greeting.
	resetAfterGreeting bool
	// beforeAuthReply runs before a login is answered; beforeMail
	// before MAIL FROM is: hooks for tests of what runs concurrently.
	beforeAuthReply func()
	beforeMail      func()
	logins          atomic.Int32
	messages        atomic.Int32
}

func (f *smtpFake) handle(c *fconn) {
	if f.greetingDelay > 0 {
		// Wait, but stop as soon as the client gives up.
		c.SetReadDeadline(time.Now().Add(f.greetingDelay))
		if _, err := c.r.ReadByte(); err == nil || !isTimeout(err) {
			return
		}
		c.SetReadDeadline(time.Time{})
	}
	g := f.greeting
	if g == "" {
		g = "220 mail.example.test ESMTP Postfix (Debian/GNU)"
	}
	c.send(g)
	if f.resetAfterGreeting {
		c.reset()
		return
	}
	if !strings.HasPrefix(g, "220") {
		return
	}
	for {
		line, ok := c.read()
		if !ok {
			return
		}
		verb := strings.ToUpper(strings.Fields(line + " x")[0])
		switch verb {
		case "EHLO":
			ext := f.ehlo
			if c.isTLS() {
				ext = f.ehloTLS
			}
			if ext == nil {
				ext = []string{"PIPELINING", "SIZE 10240000", "STARTTLS", "ENHANCEDSTATUSCODES", "8BITMIME"}
				if c.isTLS() {
					ext = []string{"PIPELINING", "SIZE 10240000", "AUTH PLAIN LOGIN", "ENHANCEDSTATUSCODES", "8BITMIME"}
				}
			}
			lines := append([]string{"mail.example.test"}, ext...)
			for i, l := range lines {
				sep := "-"
				if i == len(lines)-1 {
					sep = " "
				}
				c.send("250" + sep + l)
			}
		case "HELO":
			c.send("250 mail.example.test")
		case "STARTTLS":
			r := f.starttlsReply
			if r == "" {
				r = "220 2.0.0 Ready to start TLS"
			}
			c.send(r)
			if !strings.HasPrefix(r, "220") {
				continue
			}
			if f.afterStartTLS != nil {
				f.afterStartTLS(c)
				return
			}
			if !c.upgrade(f.tls) {
				return
			}
		case "AUTH":
			if f.resetOnAuth {
				c.reset()
				return
			}
			if f.bareAuthReply != "" && len(strings.Fields(line)) == 2 {
				c.send(f.bareAuthReply)
				continue
			}
			if f.bareAuthReply != "" && len(strings.Fields(line)) == 2 {
				c.send(f.bareAuthReply)
				continue
			}
			f.smtpAuth(c, line)
		case "MAIL":
			if f.beforeMail != nil {
				f.beforeMail()
			}
			c.send(or(f.mailReply, "250 2.1.0 Ok"))
		case "RCPT":
			c.send(or(f.rcptReply, "250 2.1.5 Ok"))
		case "DATA":
			c.send("354 End data with <CR><LF>.<CR><LF>")
			if !f.readData(c) {
				return
			}
			if f.noDataEndReply {
				io.Copy(io.Discard, c.r) // until the client gives up
				return
			}
			f.messages.Add(1)
			c.send(or(f.dataEndReply, "250 2.0.0 Ok: queued as 4Fj2kR0mXyz"))
		case "QUIT":
			c.send("221 2.0.0 Bye")
			return
		case "*":
			c.send("501 5.7.0 Authentication aborted")
		default:
			c.send("502 5.5.2 Error: command not recognized")
		}
	}
}

func (f *smtpFake) readData(c *fconn) bool {
	if tc, ok := c.raw.(*net.TCPConn); ok && f.dataBytesPerSec > 0 {
		// A small receive buffer makes the throttle felt by the client
		// at once, and leaves little to drain when it gives up.
		tc.SetReadBuffer(4096)
	}
	start := time.Now()
	for {
		if f.dataBytesPerSec > 0 && time.Since(start) > 1500*time.Millisecond {
			return false // the client has given up by now
		}
		if f.dataBytesPerSec > 0 {
			buf := make([]byte, max(1, f.dataBytesPerSec/10))
			n, err := c.r.Read(buf)
			if err != nil {
				return false
			}
			if strings.Contains(string(buf[:n]), "\r\n.\r\n") {
				return true
			}
			time.Sleep(100 * time.Millisecond)
			continue
		}
		line, ok := c.read()
		if !ok {
			return false
		}
		if line == "." {
			return true
		}
	}
}

func (f *smtpFake) smtpAuth(c *fconn, line string) {
	fields := strings.Fields(line)
	if len(fields) < 2 {
		c.send("501 5.5.4 Syntax: AUTH mechanism")
		return
	}
	mech := strings.ToUpper(fields[1])
	var user, pass string
	switch mech {
	case "PLAIN":
		ir := ""
		if len(fields) > 2 {
			ir = fields[2]
		} else {
			c.send("334 ")
			l, ok := c.read()
			if !ok {
				return
			}
			if l == "*" {
				c.send("501 5.7.0 Authentication aborted")
				return
			}
			ir = l
		}
		user, pass = decodePlain(ir)
	case "LOGIN":
		c.send("334 " + b64s("Username:"))
		u, ok := c.read()
		if !ok || u == "*" {
			c.send("501 5.7.0 Authentication aborted")
			return
		}
		c.send("334 " + b64s("Password:"))
		p, ok := c.read()
		if !ok {
			return
		}
		ub, _ := base64.StdEncoding.DecodeString(u)
		pb, _ := base64.StdEncoding.DecodeString(p)
		user, pass = string(ub), string(pb)
	case "CRAM-MD5":
		chal := "<1896.697170952@mail.example.test>"
		c.send("334 " + b64s(chal))
		l, ok := c.read()
		if !ok {
			return
		}
		raw, _ := base64.StdEncoding.DecodeString(l)
		u, digest, _ := strings.Cut(string(raw), " ")
		m := hmac.New(md5.New, []byte(testPass))
		m.Write([]byte(chal))
		user = u
		if digest == hex.EncodeToString(m.Sum(nil)) {
			pass = testPass
		}
	default:
		c.send("504 5.5.4 Unrecognized authentication type")
		return
	}
	f.logins.Add(1)
	if f.beforeAuthReply != nil {
		f.beforeAuthReply()
	}
	if f.authReply != nil {
		c.send(f.authReply(mech, user, pass))
		return
	}
	if user == testUser && pass == testPass {
		c.send("235 2.7.0 Authentication successful")
		return
	}
	c.send("535 5.7.8 Error: authentication failed: authentication failure")
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// imapFake is a scripted IMAP server.
type imapFake struct {
	greeting  string
	caps      string // before TLS (or on an implicit-TLS port)
	capsTLS   string
	tls       *tls.Config
	starttls  string // reply to STARTTLS; "" = OK
	loginNo   string // reply after "aN " to a login; "" = check credentials
	examineNo string
	exists    int
	// onLogin runs when a login command arrives.
	onLogin func()
	logins  atomic.Int32
}

func (f *imapFake) handle(c *fconn) {
	caps := f.capsFor(c)
	c.send(or(f.greeting, "* OK [CAPABILITY "+caps+"] Dovecot (Debian) ready."))
	for {
		line, ok := c.read()
		if !ok {
			return
		}
		tag, rest, _ := strings.Cut(line, " ")
		cmd, args, _ := strings.Cut(rest, " ")
		switch strings.ToUpper(cmd) {
		case "CAPABILITY":
			c.send("* CAPABILITY "+f.capsFor(c), tag+" OK Capability completed.")
		case "STARTTLS":
			if f.starttls != "" {
				c.send(tag + " " + f.starttls)
				continue
			}
			c.send(tag + " OK Begin TLS negotiation now.")
			if !c.upgrade(f.tls) {
				return
			}
		case "LOGIN":
			fields := strings.Fields(args)
			if len(fields) < 2 {
				c.send(tag + " BAD Error in IMAP command received by server.")
				continue
			}
			f.login(c, tag, strings.Trim(fields[0], `"`), strings.Trim(fields[1], `"`))
		case "AUTHENTICATE":
			fields := strings.Fields(args)
			ir := ""
			if len(fields) > 1 {
				ir = fields[1]
			} else {
				c.send("+ ")
				l, ok := c.read()
				if !ok {
					return
				}
				if l == "*" {
					c.send(tag + " BAD Authentication aborted by client.")
					continue
				}
				ir = l
			}
			u, p := decodePlain(ir)
			f.login(c, tag, u, p)
		case "EXAMINE", "SELECT":
			if f.examineNo != "" {
				c.send(tag + " " + f.examineNo)
				continue
			}
			c.send(fmt.Sprintf("* %d EXISTS", f.exists), "* 0 RECENT", "* OK [UIDVALIDITY 1700000000] UIDs valid", tag+" OK [READ-ONLY] Examine completed.")
		case "FETCH":
			c.send(`* 1 FETCH (ENVELOPE ("Mon, 1 Jan 2024 10:00:00 +0000" {5}`, `hello NIL NIL NIL NIL NIL NIL NIL NIL))`, tag+" OK Fetch completed.")
		case "LOGOUT":
			c.send("* BYE Logging out", tag+" OK Logout completed.")
			return
		default:
			c.send(tag + " BAD Error in IMAP command received by server.")
		}
	}
}

func (f *imapFake) capsFor(c *fconn) string {
	if c.isTLS() && f.capsTLS != "" {
		return f.capsTLS
	}
	if f.caps != "" {
		return f.caps
	}
	if c.isTLS() {
		return "IMAP4rev1 SASL-IR LITERAL+ AUTH=PLAIN AUTH=LOGIN"
	}
	return "IMAP4rev1 SASL-IR LITERAL+ STARTTLS LOGINDISABLED"
}

func (f *imapFake) login(c *fconn, tag, user, pass string) {
	f.logins.Add(1)
	if f.onLogin != nil {
		f.onLogin()
	}
	switch {
	case f.loginNo != "":
		c.send(tag + " " + f.loginNo)
	case user == testUser && pass == testPass:
		c.send(tag + " OK Logged in")
	default:
		c.send(tag + " NO [AUTHENTICATIONFAILED] Authentication failed.")
	}
}

// pop3Fake is a scripted POP3 server.
type pop3Fake struct {
	capa    []string // nil: a Dovecot-like list
	tls     *tls.Config
	passErr string
	logins  atomic.Int32
}

func (f *pop3Fake) handle(c *fconn) {
	c.send("+OK Dovecot (Debian) ready.")
	user := ""
	for {
		line, ok := c.read()
		if !ok {
			return
		}
		cmd, arg, _ := strings.Cut(line, " ")
		switch strings.ToUpper(cmd) {
		case "CAPA":
			c.send("+OK")
			capa := f.capa
			if capa == nil {
				capa = []string{"TOP", "UIDL", "RESP-CODES", "PIPELINING", "AUTH-RESP-CODE", "USER", "SASL PLAIN LOGIN"}
				if !c.isTLS() {
					capa = []string{"TOP", "UIDL", "RESP-CODES", "PIPELINING", "AUTH-RESP-CODE", "STLS"}
				}
			}
			c.send(capa...)
			c.send(".")
		case "STLS":
			c.send("+OK Begin TLS negotiation now.")
			if !c.upgrade(f.tls) {
				return
			}
		case "USER":
			if !c.isTLS() {
				c.send("-ERR [AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) connections.")
				continue
			}
			user = arg
			c.send("+OK")
		case "PASS":
			f.logins.Add(1)
			if f.passErr != "" {
				c.send(f.passErr)
			} else if user == testUser && arg == testPass {
				c.send("+OK Logged in.")
			} else {
				c.send("-ERR [AUTH] Authentication failed.")
			}
		case "AUTH":
			f.logins.Add(1)
			fields := strings.Fields(arg)
			if len(fields) == 2 {
				if u, p := decodePlain(fields[1]); u == testUser && p == testPass && f.passErr == "" {
					c.send("+OK Logged in.")
					continue
				}
			}
			c.send(or(f.passErr, "-ERR [AUTH] Authentication failed."))
		case "STAT":
			c.send("+OK 2 1024")
		case "UIDL":
			c.send("+OK " + arg + " 00000001566c8e6d")
		case "QUIT":
			c.send("+OK Logging out.")
			return
		default:
			c.send("-ERR Unknown command: " + cmd)
		}
	}
}

// zone is a fake DNS server's data. Names are lower case without the final
// dot.
type zone struct {
	mu     sync.Mutex
	a      map[string]string
	mx     map[string][]string
	srv    map[string][]*dns.SRV
	rcode  map[string]int
	silent map[string]bool
	cname  map[string]string
}

func newZone() *zone {
	return &zone{a: map[string]string{}, mx: map[string][]string{}, srv: map[string][]*dns.SRV{}, rcode: map[string]int{}, silent: map[string]bool{}, cname: map[string]string{}}
}

func (z *zone) addSRV(service, domain, target string, port int) {
	z.mu.Lock()
	defer z.mu.Unlock()
	name := "_" + service + "._tcp." + domain
	z.srv[name] = append(z.srv[name], &dns.SRV{Hdr: dns.RR_Header{Name: name + ".", Rrtype: dns.TypeSRV, Class: dns.ClassINET, Ttl: 60}, Target: target + ".", Port: uint16(port)})
}

func (z *zone) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	z.mu.Lock()
	defer z.mu.Unlock()
	q := r.Question[0]
	name := strings.ToLower(strings.TrimSuffix(q.Name, "."))
	if z.silent[name] {
		return
	}
	m := new(dns.Msg)
	m.SetReply(r)
	if rc, ok := z.rcode[name]; ok {
		m.Rcode = rc
		w.WriteMsg(m)
		return
	}
	hdr := func(t uint16) dns.RR_Header {
		return dns.RR_Header{Name: q.Name, Rrtype: t, Class: dns.ClassINET, Ttl: 60}
	}
	exists := false
	if target, ok := z.cname[name]; ok {
		m.Answer = append(m.Answer, &dns.CNAME{Hdr: hdr(dns.TypeCNAME), Target: target + "."})
		if ip, ok := z.a[target]; ok && q.Qtype == dns.TypeA {
			m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: target + ".", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.ParseIP(ip)})
		}
		w.WriteMsg(m)
		return
	}
	if ip, ok := z.a[name]; ok {
		exists = true
		if q.Qtype == dns.TypeA {
			m.Answer = append(m.Answer, &dns.A{Hdr: hdr(dns.TypeA), A: net.ParseIP(ip)})
		}
	}
	if hosts, ok := z.mx[name]; ok {
		exists = true
		if q.Qtype == dns.TypeMX {
			for i, h := range hosts {
				m.Answer = append(m.Answer, &dns.MX{Hdr: hdr(dns.TypeMX), Preference: uint16(10 * (i + 1)), Mx: h + "."})
			}
		}
	}
	if recs, ok := z.srv[name]; ok {
		exists = true
		if q.Qtype == dns.TypeSRV {
			for _, s := range recs {
				m.Answer = append(m.Answer, s)
			}
		}
	}
	if !exists {
		m.Rcode = dns.RcodeNameError
	}
	w.WriteMsg(m)
}

// startDNS serves z on 127.0.0.1 (UDP).
func startDNS(t *testing.T, z *zone) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: z}
	go srv.ActivateAndServe()
	t.Cleanup(func() { srv.Shutdown() })
	return pc.LocalAddr().String()
}

// lab bundles a fake DNS server for example.test and a CA.
type lab struct {
	t    *testing.T
	zone *zone
	dns  string
	ca   *testpki.CA
}

func newLab(t *testing.T) *lab {
	t.Helper()
	z := newZone()
	z.a["mail.example.test"] = "127.0.0.1"
	z.a["smtp.example.test"] = "127.0.0.1"
	z.a["imap.example.test"] = "127.0.0.1"
	z.mx["example.test"] = []string{"mail.example.test"}
	return &lab{t: t, zone: z, dns: startDNS(t, z), ca: labCA(t)}
}

var (
	labCAOnce sync.Once
	labCAVal  *testpki.CA
)

// labCA is one CA for all tests (key generation is the slow part).
func labCA(t *testing.T) *testpki.CA {
	labCAOnce.Do(func() {
		labCAVal = testpki.NewRoot(t, "maillab test CA", testpki.Opts{NotBefore: time.Now().Add(-48 * time.Hour)})
	})
	return labCAVal
}

// serverTLS returns a TLS config with a certificate from the lab CA for
// the lab hosts, shaped by o.
func (l *lab) serverTLS(o testpki.Opts) *tls.Config {
	if o.Names == nil {
		o.Names = []string{"mail.example.test", "smtp.example.test", "imap.example.test", "127.0.0.1"}
	}
	leaf := l.ca.Leaf(l.t, o)
	return &tls.Config{Certificates: []tls.Certificate{leaf.TLS()}}
}

// config returns a Config for alice with the lab resolver and CA.
func (l *lab) config(services ...Service) Config {
	return Config{
		Email:         testUser,
		Username:      testUser,
		Password:      testPass,
		Services:      services,
		Resolver:      l.dns,
		CAPEM:         l.ca.PEM(),
		NoSystemRoots: true,
		Timeout:       2 * time.Second,
	}
}

func testPKIOpts() testpki.Opts { return testpki.Opts{} }

func newBufReader(c net.Conn) *bufio.Reader { return bufio.NewReader(c) }

func (z *zone) setA(name, ip string) { z.mu.Lock(); defer z.mu.Unlock(); z.a[name] = ip }
func (z *zone) setRcode(name string, rc int) {
	z.mu.Lock()
	defer z.mu.Unlock()
	z.rcode[name] = rc
}
func (z *zone) setSilent(name string) { z.mu.Lock(); defer z.mu.Unlock(); z.silent[name] = true }

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}
