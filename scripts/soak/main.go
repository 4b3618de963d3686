// Command soak reproduces the "Measured" section of issue 12 against one
// lab: IMAPS sessions held open, messages through submission (STARTTLS +
// AUTH) and the relay port, slowloris SMTP connections and a burst that
// exhausts the lab's file descriptors, all at once. It reports messages
// lost or duplicated, the time until every listener greets again after the
// burst, the lab's RSS before and after, and a normal client's latency,
// and exits 1 when a target is missed (2 when the soak itself failed).
//
// It starts `maillab lab` itself under `prlimit --nofile` (the lab's
// descriptor limit decides when the burst exhausts it), talks to loopback
// only (source addresses from 127.0.0.0/8 stand for distinct clients), and
// raises its own descriptor limit to what it needs. Run it through
// scripts/soak.sh; --quick is a small run for tests and CI.
package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/maillab/maillab/settings"
)

// config is one soak run's size.
type config struct {
	maillab       string
	imapsSessions int
	hold          time.Duration
	messages      int
	slowloris     int
	slowAddrs     int           // slowloris client addresses
	drip          time.Duration // slowloris: one byte per drip
	smtpTimeout   time.Duration // the lab's --smtp-timeout
	labNofile     int           // the lab's RLIMIT_NOFILE
	burst         int           // connections of the exhaustion burst
	rssWait       time.Duration // how long RSS may take to come back
	enforceAll    bool          // all targets (full run) or correctness only
}

// Targets of issue 12.
const (
	maxRecovery   = 2 * time.Second
	maxRSSGrowth  = 0.20
	maxLatencyP99 = 250 * time.Millisecond
)

func main() {
	quick := flag.Bool("quick", false, "a small run (well under a minute) for tests and CI; only correctness targets are enforced")
	scale := flag.Float64("scale", 1, "the full run's load times this factor (0.25: a quarter of the sessions, messages, slowloris connections, descriptors and burst), every target enforced")
	rssWait := flag.Duration("rss-wait", 0, "how long RSS may take to come back after the load (default 3m, 10s with --quick)")
	bin := flag.String("maillab", "", "path of the maillab binary (scripts/soak.sh builds it)")
	flag.Parse()
	if *bin == "" {
		fmt.Fprintln(os.Stderr, "soak: --maillab is required (run scripts/soak.sh)")
		os.Exit(2)
	}
	if *scale <= 0 || *scale > 1 {
		fmt.Fprintln(os.Stderr, "soak: --scale must be in (0, 1]")
		os.Exit(2)
	}
	cfg := fullConfig().scaled(*scale)
	if *quick {
		cfg = quickConfig()
	}
	if *rssWait > 0 {
		cfg.rssWait = *rssWait
	}
	cfg.maillab = *bin
	r, err := run(cfg, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(2)
	}
	if misses := r.misses(cfg); len(misses) > 0 {
		fmt.Println("FAIL:", strings.Join(misses, "; "))
		os.Exit(1)
	}
	fmt.Println("PASS")
}

func fullConfig() config {
	return config{imapsSessions: 1000, hold: 60 * time.Second, messages: 20000, slowloris: 5000, slowAddrs: 10,
		drip: time.Second, smtpTimeout: 10 * time.Second, labNofile: 2000, burst: 2200, rssWait: 3 * time.Minute, enforceAll: true}
}

// scaled is c with its load times f: the descriptor limit and the burst
// shrink with it, so the burst still exhausts the lab's descriptors.
func (c config) scaled(f float64) config {
	n := func(v int) int { return max(1, int(float64(v)*f+0.5)) }
	c.imapsSessions = n(c.imapsSessions)
	c.messages = n(c.messages)
	c.slowloris = n(c.slowloris)
	c.slowAddrs = n(c.slowAddrs)
	c.labNofile = n(c.labNofile)
	c.burst = n(c.burst)
	return c
}

func quickConfig() config {
	return config{imapsSessions: 40, hold: 3 * time.Second, messages: 300, slowloris: 150, slowAddrs: 2,
		drip: 200 * time.Millisecond, smtpTimeout: 2 * time.Second, labNofile: 300, burst: 400, rssWait: 10 * time.Second}
}

// result is what a run measured.
type result struct {
	sent, undelivered, lost, duplicated int
	imapsOpened, imapsFailed            int
	slowRefused, slowCut, slowKept      int
	slowOther                           int
	recovery                            time.Duration
	recovered                           bool
	rssBefore, rssPeak, rssAfter        int64
	rssWaited                           time.Duration
	memBefore, memAfter                 mem
	latencies                           []time.Duration
	probeFailures, burstProbeFailures   int
	load                                string
}

func (r *result) p99() time.Duration {
	if len(r.latencies) == 0 {
		return 0
	}
	s := slices.Clone(r.latencies)
	slices.Sort(s)
	return s[(len(s)*99+99)/100-1]
}

func (r *result) misses(cfg config) []string {
	var m []string
	if r.lost > 0 || r.duplicated > 0 || r.undelivered > 0 {
		m = append(m, fmt.Sprintf("%d messages lost, %d duplicated, %d never accepted", r.lost, r.duplicated, r.undelivered))
	}
	if !r.recovered {
		m = append(m, "a listener never greeted again after the burst")
	}
	if r.slowKept > 0 {
		m = append(m, fmt.Sprintf("%d slowloris connections never cut", r.slowKept))
	}
	if !cfg.enforceAll {
		return m
	}
	if r.recovery > maxRecovery {
		m = append(m, fmt.Sprintf("recovery %s > %s", r.recovery, maxRecovery))
	}
	if float64(r.rssAfter) > float64(r.rssBefore)*(1+maxRSSGrowth) {
		m = append(m, fmt.Sprintf("RSS %d kB after > %d kB before + 20%%", r.rssAfter, r.rssBefore))
	}
	if p := r.p99(); p > maxLatencyP99 {
		m = append(m, fmt.Sprintf("normal client p99 %s > %s", p.Round(time.Millisecond), maxLatencyP99))
	}
	return m
}

// soak holds a running lab and what the phases share.
type soak struct {
	cfg      config
	s        *settings.Settings
	tls      *tls.Config
	pid      int
	inBurst  atomic.Bool
	stopping chan struct{}
}

func run(cfg config, out io.Writer) (*result, error) {
	need := cfg.imapsSessions + cfg.slowloris + cfg.burst + 500
	if err := raiseNofile(need); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "maillab-soak-*")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	lab, s, err := startLab(cfg, dir)
	if err != nil {
		return nil, err
	}
	defer func() {
		lab.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { lab.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			lab.Process.Kill()
			<-done
		}
	}()
	pem, err := os.ReadFile(s.CAFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	sk := &soak{cfg: cfg, s: s, pid: lab.Process.Pid, stopping: make(chan struct{}),
		tls: &tls.Config{RootCAs: pool, ServerName: s.Services["imaps"].Host}}
	r := &result{}
	time.Sleep(time.Second)
	if r.memBefore, err = memory(sk.pid); err != nil {
		return nil, err
	}
	r.rssBefore = r.memBefore.rss
	fmt.Fprintf(out, "lab pid %d, RLIMIT_NOFILE %d, RSS %s at start\n", sk.pid, cfg.labNofile, r.memBefore)

	var wg sync.WaitGroup
	probeDone := make(chan struct{})
	go func() { sk.probe(r); close(probeDone) }()

	var opened sync.WaitGroup
	opened.Add(1)
	wg.Add(3)
	go func() { defer wg.Done(); sk.imapsSessions(r, &opened) }()
	go func() { defer wg.Done(); sk.sendMessages(r) }()
	go func() { defer wg.Done(); sk.slowloris(r) }()
	opened.Wait()
	time.Sleep(cfg.hold / 3)
	r.recovery, r.recovered = sk.burst(out)
	wg.Wait()
	close(sk.stopping)
	<-probeDone

	if err := sk.count(r); err != nil {
		return nil, fmt.Errorf("count messages: %w", err)
	}
	waitStart := time.Now()
	r.rssAfter = sk.waitRSS(r.rssBefore)
	r.rssWaited = time.Since(waitStart)
	r.memAfter, _ = memory(sk.pid)
	r.load = loadAverage()
	report(out, cfg, r)
	return r, nil
}

func raiseNofile(need int) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return err
	}
	if lim.Max < uint64(need) {
		return fmt.Errorf("the soak needs %d file descriptors; the hard limit is %d (raise it with ulimit -Hn or prlimit)", need, lim.Max)
	}
	lim.Cur = lim.Max
	return syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
}

func startLab(cfg config, dir string) (*exec.Cmd, *settings.Settings, error) {
	prlimit, err := exec.LookPath("prlimit")
	if err != nil {
		return nil, nil, errors.New("prlimit (util-linux) not found: it sets the lab's descriptor limit")
	}
	settingsFile := filepath.Join(dir, "settings.json")
	n := strconv.Itoa(cfg.labNofile)
	cmd := exec.Command(prlimit, "--nofile="+n+":"+n, "--", cfg.maillab, "lab",
		"--quiet", "--json", "--dir", filepath.Join(dir, "lab"), "--settings-out", settingsFile,
		"--log-level", "error",
		// Exhaustion must come from descriptors, not from the total cap.
		"--max-connections", "-1",
		"--smtp-timeout", cfg.smtpTimeout.String())
	cmd.Stdout = io.Discard
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("start lab: %w", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		data, err := os.ReadFile(settingsFile)
		if err == nil && len(data) > 0 {
			var s settings.Settings
			if err := json.Unmarshal(data, &s); err == nil {
				return cmd, &s, nil
			}
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			return nil, nil, errors.New("the lab wrote no settings within 30s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// from returns a dialer from loopback client address 127.<a>.<b>.<c>.
func from(a, n int) *net.Dialer {
	return &net.Dialer{Timeout: 10 * time.Second,
		LocalAddr: &net.TCPAddr{IP: net.IPv4(127, byte(a), byte(n/250), byte(n%250+1))}}
}

func addr(s settings.Service) string { return net.JoinHostPort(s.Address, strconv.Itoa(s.Port)) }

// imapsSessions logs cfg.imapsSessions sessions in over IMAPS, 25 per
// client address, and holds them for cfg.hold.
func (sk *soak) imapsSessions(r *result, opened *sync.WaitGroup) {
	var mu sync.Mutex
	var conns []net.Conn
	sem := make(chan struct{}, 32)
	var wg sync.WaitGroup
	for i := 0; i < sk.cfg.imapsSessions; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := sk.imapsLogin(from(1, i/25), sk.s.Accounts[i%len(sk.s.Accounts)])
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				r.imapsFailed++
				return
			}
			r.imapsOpened++
			conns = append(conns, c)
		}()
	}
	wg.Wait()
	opened.Done()
	time.Sleep(sk.cfg.hold)
	for _, c := range conns {
		io.WriteString(c, "z LOGOUT\r\n")
		c.Close()
	}
}

func (sk *soak) imapsLogin(d *net.Dialer, a settings.Account) (net.Conn, error) {
	c, err := tls.DialWithDialer(d, "tcp", addr(sk.s.Services["imaps"]), sk.tls)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReader(c)
	if _, err := br.ReadString('\n'); err != nil {
		c.Close()
		return nil, err
	}
	fmt.Fprintf(c, "a LOGIN %q %q\r\n", a.Username, a.Password)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			c.Close()
			return nil, err
		}
		if strings.HasPrefix(line, "a ") {
			if !strings.HasPrefix(line, "a OK") {
				c.Close()
				return nil, fmt.Errorf("login: %s", strings.TrimSpace(line))
			}
			c.SetDeadline(time.Time{})
			return c, nil
		}
	}
}

// sendMessages sends cfg.messages messages, half through submission with
// STARTTLS and AUTH, half through the relay port, five per connection,
// each retried until accepted (or given up after a minute).
func (sk *soak) sendMessages(r *result) {
	const perConn, workers = 5, 16
	var next, undelivered, sent atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				first := int(next.Add(perConn)) - perConn
				if first >= sk.cfg.messages {
					return
				}
				ids := make([]int, 0, perConn)
				for id := first; id < min(first+perConn, sk.cfg.messages); id++ {
					ids = append(ids, id)
				}
				deadline := time.Now().Add(time.Minute)
				for len(ids) > 0 {
					done, err := sk.sendBatch(w, ids)
					sent.Add(int64(done))
					ids = ids[done:]
					if err == nil {
						break
					}
					if time.Now().After(deadline) {
						undelivered.Add(int64(len(ids)))
						break
					}
					time.Sleep(100 * time.Millisecond)
				}
			}
		}()
	}
	wg.Wait()
	r.sent, r.undelivered = int(sent.Load()), int(undelivered.Load())
}

// sendBatch sends ids over one connection and returns how many the server
// accepted before an error.
func (sk *soak) sendBatch(worker int, ids []int) (int, error) {
	submission := ids[0]%2 == 0
	svc := sk.s.Services["smtp"]
	if submission {
		svc = sk.s.Services["submission"]
	}
	conn, err := from(2, worker).Dial("tcp", addr(svc))
	if err != nil {
		return 0, err
	}
	var c *smtp.Client
	if submission {
		c, err = smtp.NewClientStartTLS(conn, &tls.Config{RootCAs: sk.tls.RootCAs, ServerName: svc.Host})
		if err != nil {
			conn.Close()
			return 0, err
		}
	} else {
		c = smtp.NewClient(conn)
	}
	defer c.Close()
	c.CommandTimeout = 30 * time.Second
	c.SubmissionTimeout = 30 * time.Second
	alice := sk.s.Accounts[0]
	if !submission {
		// NewClientStartTLS said EHLO already.
		if err := c.Hello("soak.example"); err != nil {
			return 0, err
		}
	}
	if submission {
		if err := c.Auth(sasl.NewPlainClient("", alice.Username, alice.Password)); err != nil {
			return 0, err
		}
	}
	for i, id := range ids {
		rcpt := sk.s.Accounts[id%len(sk.s.Accounts)].Email
		msg := fmt.Sprintf("From: %s\r\nTo: %s\r\nMessage-ID: <soak-%d@soak.example>\r\nSubject: soak %d\r\n\r\nsoak message %d\r\n", alice.Email, rcpt, id, id, id)
		if err := c.SendMail(alice.Email, []string{rcpt}, strings.NewReader(msg)); err != nil {
			return i, err
		}
	}
	c.Quit()
	return len(ids), nil
}

// slowloris opens cfg.slowloris SMTP connections from cfg.slowAddrs
// addresses, each sending one byte per drip and never ending its line,
// and classifies how each ended.
func (sk *soak) slowloris(r *result) {
	var refused, cut, kept, other atomic.Int64
	var wg sync.WaitGroup
	deadline := time.Now().Add(sk.cfg.hold + 2*sk.cfg.smtpTimeout + 30*time.Second)
	pace := time.Duration(0)
	if sk.cfg.slowloris > 0 {
		pace = sk.cfg.hold / 2 / time.Duration(sk.cfg.slowloris)
	}
	for i := 0; i < sk.cfg.slowloris; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			switch sk.slowConn(from(3, i%sk.cfg.slowAddrs), deadline) {
			case "refused":
				refused.Add(1)
			case "cut":
				cut.Add(1)
			case "kept":
				kept.Add(1)
			default:
				other.Add(1)
			}
		}()
		time.Sleep(pace)
	}
	wg.Wait()
	r.slowRefused, r.slowCut, r.slowKept, r.slowOther = int(refused.Load()), int(cut.Load()), int(kept.Load()), int(other.Load())
}

func (sk *soak) slowConn(d *net.Dialer, deadline time.Time) string {
	c, err := d.Dial("tcp", addr(sk.s.Services["smtp"]))
	if err != nil {
		return "other"
	}
	defer c.Close()
	c.SetDeadline(deadline)
	br := bufio.NewReader(c)
	greeting, err := br.ReadString('\n')
	if err != nil {
		return "other"
	}
	if strings.HasPrefix(greeting, "421 4.7.0") {
		return "refused"
	}
	lines := make(chan string, 16)
	go func() {
		defer close(lines)
		for {
			l, err := br.ReadString('\n')
			if err != nil {
				return
			}
			lines <- l
		}
	}()
	const drip = "EHLO slowloris.example"
	last := ""
	for i := 0; ; i++ {
		select {
		case l, ok := <-lines:
			if !ok {
				if strings.HasPrefix(last, "421 4.4.2") || strings.HasPrefix(last, "500 5.5.1") {
					return "cut"
				}
				return "other"
			}
			last = l
			continue
		case <-time.After(sk.cfg.drip):
		}
		if time.Now().After(deadline) {
			return "kept"
		}
		if _, err := c.Write([]byte{drip[i%len(drip)]}); err != nil {
			// Closed by the server: read what it said.
			for l := range lines {
				last = l
			}
			if strings.HasPrefix(last, "421 4.4.2") {
				return "cut"
			}
			return "other"
		}
	}
}

// burst opens cfg.burst connections over every port from many addresses
// (so no per-client limit turns them away) until the lab runs out of
// descriptors, holds them, closes them, and returns how long it took
// until every listener greeted again.
func (sk *soak) burst(out io.Writer) (time.Duration, bool) {
	names := []string{"smtp", "submission", "submissions", "imap", "imaps", "pop3", "pop3s"}
	sk.inBurst.Store(true)
	defer sk.inBurst.Store(false)
	var mu sync.Mutex
	var held []net.Conn
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for i := 0; i < sk.cfg.burst; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			d := from(4, i/40)
			d.Timeout = 2 * time.Second
			c, err := d.Dial("tcp", addr(sk.s.Services[names[i%len(names)]]))
			if err == nil {
				mu.Lock()
				held = append(held, c)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	exhausted := false
	for _, n := range names {
		if greets(sk.s.Services[n], sk.tls, 500*time.Millisecond) != nil {
			exhausted = true
		}
	}
	fmt.Fprintf(out, "burst: %d connections held, lab exhausted: %v\n", len(held), exhausted)
	time.Sleep(2 * time.Second)
	for _, c := range held {
		c.Close()
	}
	start := time.Now()
	pending := slices.Clone(names)
	for len(pending) > 0 {
		if time.Since(start) > 30*time.Second {
			fmt.Fprintf(out, "burst: %v never greeted again within 30s\n", pending)
			return time.Since(start), false
		}
		var still []string
		for _, n := range pending {
			if greets(sk.s.Services[n], sk.tls, time.Second) != nil {
				still = append(still, n)
			}
		}
		pending = still
		if len(pending) > 0 {
			time.Sleep(20 * time.Millisecond)
		}
	}
	return time.Since(start), true
}

// greets dials svc (TLS on implicit-TLS ports) and reads a positive
// greeting within timeout.
func greets(svc settings.Service, cfg *tls.Config, timeout time.Duration) error {
	c, err := net.DialTimeout("tcp", addr(svc), timeout)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	if svc.Security == settings.SecurityTLS {
		tc := tls.Client(c, &tls.Config{RootCAs: cfg.RootCAs, ServerName: svc.Host})
		if err := tc.Handshake(); err != nil {
			return err
		}
		c = tc
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	for _, ok := range []string{"220 ", "* OK", "+OK"} {
		if strings.HasPrefix(line, ok) {
			return nil
		}
	}
	return fmt.Errorf("greeting %q", strings.TrimSpace(line))
}

// probe is the normal client: every 100 ms it connects to the relay port
// from its own address, reads the greeting, says EHLO and QUIT. Samples
// taken during the burst are counted apart.
func (sk *soak) probe(r *result) {
	svc := sk.s.Services["smtp"]
	for i := 0; ; i++ {
		select {
		case <-sk.stopping:
			return
		case <-time.After(100 * time.Millisecond):
		}
		if i%10 == 0 {
			if now, err := rss(sk.pid); err == nil && now > r.rssPeak {
				r.rssPeak = now
			}
		}
		burst := sk.inBurst.Load()
		start := time.Now()
		err := func() error {
			c, err := smtp.Dial(addr(svc))
			if err != nil {
				return err
			}
			defer c.Close()
			c.CommandTimeout = 5 * time.Second
			if err := c.Hello("probe.example"); err != nil {
				return err
			}
			return c.Quit()
		}()
		elapsed := time.Since(start)
		switch {
		case burst || sk.inBurst.Load():
			if err != nil {
				r.burstProbeFailures++
			}
		case err != nil:
			r.probeFailures++
		default:
			r.latencies = append(r.latencies, elapsed)
		}
	}
}

// count reads every Message-ID of every account's INBOX, compares them
// with what was sent, and expunges the soak's messages.
func (sk *soak) count(r *result) error {
	seen := map[int]int{}
	for _, a := range sk.s.Accounts {
		c, err := imapclient.DialTLS(addr(sk.s.Services["imaps"]), &imapclient.Options{TLSConfig: sk.tls})
		if err != nil {
			return err
		}
		if err := c.Login(a.Username, a.Password).Wait(); err != nil {
			c.Close()
			return err
		}
		sel, err := c.Select("INBOX", nil).Wait()
		if err != nil {
			c.Close()
			return err
		}
		all := imap.SeqSet{}
		all.AddRange(1, 0)
		var msgs []*imapclient.FetchMessageBuffer
		if sel.NumMessages > 0 {
			if msgs, err = c.Fetch(all, &imap.FetchOptions{Envelope: true}).Collect(); err != nil {
				c.Close()
				return err
			}
		}
		for _, m := range msgs {
			if m.Envelope == nil {
				continue
			}
			var id int
			if _, err := fmt.Sscanf(m.Envelope.MessageID, "soak-%d@soak.example", &id); err == nil {
				seen[id]++
			}
		}
		if len(msgs) > 0 {
			c.Store(all, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close()
			c.Expunge().Close()
		}
		c.Logout().Wait()
		c.Close()
	}
	for id := 0; id < sk.cfg.messages; id++ {
		switch n := seen[id]; {
		case n == 0:
			r.lost++
		case n > 1:
			r.duplicated += n - 1
		}
	}
	// Messages never accepted were not lost by the lab.
	r.lost -= r.undelivered
	return nil
}

// waitRSS polls the lab's RSS until it is within the target of before, or
// cfg.rssWait passed, and returns the last value.
func (sk *soak) waitRSS(before int64) int64 {
	deadline := time.Now().Add(sk.cfg.rssWait)
	for {
		now, err := rss(sk.pid)
		if err != nil || float64(now) <= float64(before)*(1+maxRSSGrowth) || time.Now().After(deadline) {
			return now
		}
		time.Sleep(time.Second)
	}
}

// rss is VmRSS of pid in kB.
func rss(pid int) (int64, error) {
	m, err := memory(pid)
	return m.rss, err
}

// mem is a process's resident memory in kB: anonymous (the heap, stacks,
// the runtime's own) and file-backed (the pages of the binary that ran).
type mem struct{ rss, anon, file int64 }

func (m mem) String() string {
	return fmt.Sprintf("%d kB (%d anonymous, %d of the binary)", m.rss, m.anon, m.file)
}

// memory reads VmRSS, RssAnon and RssFile of pid.
func memory(pid int) (mem, error) {
	var m mem
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return m, err
	}
	found := false
	for _, line := range strings.Split(string(data), "\n") {
		key, rest, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		v, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		switch key {
		case "VmRSS":
			m.rss, found = v, err == nil
		case "RssAnon":
			m.anon = v
		case "RssFile":
			m.file = v
		}
	}
	if !found {
		return m, errors.New("no VmRSS")
	}
	return m, nil
}

func loadAverage() string {
	data, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func report(out io.Writer, cfg config, r *result) {
	fmt.Fprintf(out, "IMAPS sessions held %s: %d opened, %d failed\n", cfg.hold, r.imapsOpened, r.imapsFailed)
	fmt.Fprintf(out, "messages: %d sent, %d never accepted, %d lost, %d duplicated (target 0)\n", r.sent, r.undelivered, r.lost, r.duplicated)
	fmt.Fprintf(out, "slowloris: %d refused (421 4.7.0), %d cut by the %s command timeout, %d never cut, %d other\n", r.slowRefused, r.slowCut, cfg.smtpTimeout, r.slowKept, r.slowOther)
	fmt.Fprintf(out, "fd exhaustion: every listener greeting again %s after the burst (target %s)\n", r.recovery.Round(time.Millisecond), maxRecovery)
	fmt.Fprintf(out, "RSS: %d kB before, %d kB at the peak of the load, %d kB after (%+.0f%%, read %s after the load; target +%.0f%%)\n",
		r.rssBefore, r.rssPeak, r.rssAfter, 100*(float64(r.rssAfter)/float64(r.rssBefore)-1), r.rssWaited.Round(time.Second), 100*maxRSSGrowth)
	fmt.Fprintf(out, "  of which anonymous %d → %d kB, pages of the binary %d → %d kB\n", r.memBefore.anon, r.memAfter.anon, r.memBefore.file, r.memAfter.file)
	fmt.Fprintf(out, "normal client (connect, EHLO, QUIT): p99 %s over %d samples, %d failures; %d failures during the burst (target p99 %s)\n",
		r.p99().Round(time.Millisecond), len(r.latencies), r.probeFailures, r.burstProbeFailures, maxLatencyP99)
	fmt.Fprintf(out, "load average at the end: %s\n", r.load)
}
