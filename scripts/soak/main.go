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
//
// --rounds N puts the same load on the same lab N times, one round after
// another, each with its own Message-IDs, count and wait for RSS: RSS that
// is sized by the peak stays about level from round to round, a leak grows
// with every round.
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
	rounds        int           // times the load runs against the same lab
}

// Targets of issue 12.
const (
	maxRecovery   = 2 * time.Second
	maxRSSGrowth  = 0.20
	maxLatencyP99 = 250 * time.Millisecond
)

func main() {
	cfg, err := parseFlags(os.Args[1:], os.Stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	case errors.Is(err, errBadFlag):
		os.Exit(2) // the flag package said what and printed the usage
	case err != nil:
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(2)
	}
	o, err := run(cfg, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(2)
	}
	if misses := o.misses(cfg); len(misses) > 0 {
		fmt.Println("FAIL:", strings.Join(misses, "; "))
		os.Exit(1)
	}
	fmt.Println("PASS")
}

// errBadFlag is parseFlags' error for a command line the flag package
// rejected (and explained on stderr).
var errBadFlag = errors.New("bad flag")

// parseFlags turns the command line into a run's config.
func parseFlags(args []string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("soak", flag.ContinueOnError)
	fs.SetOutput(stderr)
	quick := fs.Bool("quick", false, "a small run (well under a minute) for tests and CI; only correctness targets are enforced")
	scale := fs.Float64("scale", 1, "the full run's load times this factor (0.25: a quarter of the sessions, messages, slowloris connections, descriptors and burst), every target enforced")
	rssWait := fs.Duration("rss-wait", 0, "how long RSS may take to come back after the load (default 3m, 10s with --quick)")
	rounds := fs.Int("rounds", 1, "put the load on the same lab this many times, one round after another (each round counted, its RSS waited for and reported; the RSS target compares the last round with the start)")
	bin := fs.String("maillab", "", "path of the maillab binary (scripts/soak.sh builds it)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return config{}, err
		}
		return config{}, fmt.Errorf("%w: %w", errBadFlag, err)
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if *bin == "" {
		return config{}, errors.New("--maillab is required (run scripts/soak.sh)")
	}
	if *scale <= 0 || *scale > 1 {
		return config{}, errors.New("--scale must be in (0, 1]")
	}
	if *rounds < 1 {
		return config{}, fmt.Errorf("--rounds must be at least 1, not %d", *rounds)
	}
	cfg := fullConfig().scaled(*scale)
	if *quick {
		cfg = quickConfig()
	}
	if *rssWait > 0 {
		cfg.rssWait = *rssWait
	}
	cfg.maillab = *bin
	cfg.rounds = *rounds
	return cfg, nil
}

func fullConfig() config {
	return config{imapsSessions: 1000, hold: 60 * time.Second, messages: 20000, slowloris: 5000, slowAddrs: 10,
		drip: time.Second, smtpTimeout: 10 * time.Second, labNofile: 2000, burst: 2200, rssWait: 3 * time.Minute, enforceAll: true, rounds: 1}
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
		drip: 200 * time.Millisecond, smtpTimeout: 2 * time.Second, labNofile: 300, burst: 400, rssWait: 10 * time.Second, rounds: 1}
}

// outcome is what a run measured: the lab's memory at the start, read
// once before the first round, and each round's figures.
type outcome struct {
	memStart  mem
	loadStart string
	rounds    []*result
}

// result is what one round measured.
type result struct {
	round                               int // from 1
	sent, undelivered, lost, duplicated int
	stray                               int // messages of another round read back
	imapsOpened, imapsFailed            int
	slowRefused, slowCut, slowKept      int
	slowOther                           int
	recovery                            time.Duration
	recovered                           bool
	rssPeak                             int64
	rssWaited                           time.Duration
	memAfter                            mem // read when RSS was back within target of the start or the wait ended
	latencies                           []time.Duration
	probeFailures, burstProbeFailures   int
	took                                time.Duration // the round, its count and RSS wait included
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

// misses lists the targets the run missed: every target but RSS is checked
// for every round; RSS after the last round is compared with the start.
func (o *outcome) misses(cfg config) []string {
	var m []string
	for _, r := range o.rounds {
		for _, miss := range r.misses(cfg) {
			if len(o.rounds) > 1 {
				miss = fmt.Sprintf("round %d: %s", r.round, miss)
			}
			m = append(m, miss)
		}
	}
	if !cfg.enforceAll || len(o.rounds) == 0 {
		return m
	}
	last := o.rounds[len(o.rounds)-1]
	if float64(last.memAfter.rss) > float64(o.memStart.rss)*(1+maxRSSGrowth) {
		after := "after"
		if len(o.rounds) > 1 {
			after = "after the last round"
		}
		m = append(m, fmt.Sprintf("RSS %d kB %s > %d kB before + 20%%", last.memAfter.rss, after, o.memStart.rss))
	}
	return m
}

// misses lists the targets one round missed, RSS aside.
func (r *result) misses(cfg config) []string {
	var m []string
	if r.lost > 0 || r.duplicated > 0 || r.undelivered > 0 || r.stray > 0 {
		miss := fmt.Sprintf("%d messages lost, %d duplicated, %d never accepted", r.lost, r.duplicated, r.undelivered)
		if r.stray > 0 {
			miss += fmt.Sprintf(", %d of another round read back", r.stray)
		}
		m = append(m, miss)
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
	memStart mem // the lab's memory before the first round
}

func run(cfg config, out io.Writer) (*outcome, error) {
	if cfg.rounds < 1 {
		return nil, fmt.Errorf("rounds must be at least 1, not %d", cfg.rounds)
	}
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
	sk := &soak{cfg: cfg, s: s, pid: lab.Process.Pid,
		tls: &tls.Config{RootCAs: pool, ServerName: s.Services["imaps"].Host}}
	time.Sleep(time.Second)
	if sk.memStart, err = memory(sk.pid); err != nil {
		return nil, err
	}
	o := &outcome{memStart: sk.memStart, loadStart: loadAverage()}
	fmt.Fprintf(out, "lab pid %d, RLIMIT_NOFILE %d, RSS %s at start, load average %s\n", sk.pid, cfg.labNofile, o.memStart, o.loadStart)

	for i := 1; i <= cfg.rounds; i++ {
		if cfg.rounds > 1 {
			fmt.Fprintf(out, "round %d of %d\n", i, cfg.rounds)
		}
		r, err := sk.round(i, out)
		if err != nil {
			if cfg.rounds > 1 {
				err = fmt.Errorf("round %d: %w", i, err)
			}
			return nil, err
		}
		o.rounds = append(o.rounds, r)
		report(out, cfg, o, r)
	}
	if cfg.rounds > 1 {
		reportRounds(out, o)
	}
	return o, nil
}

// round puts the load on the lab once, counts the messages, waits for RSS
// to come back and returns the round's figures. Everything a round
// changes (its result, the probe's stop channel) is its own.
func (sk *soak) round(n int, out io.Writer) (*result, error) {
	cfg := sk.cfg
	start := time.Now()
	r := &result{round: n}
	var wg sync.WaitGroup
	stopping := make(chan struct{})
	probeDone := make(chan struct{})
	go func() { sk.probe(r, stopping); close(probeDone) }()

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
	close(stopping)
	<-probeDone

	if err := sk.count(r); err != nil {
		return nil, fmt.Errorf("count messages: %w", err)
	}
	waitStart := time.Now()
	r.memAfter = sk.waitRSS(sk.memStart.rss)
	r.rssWaited = time.Since(waitStart)
	r.took = time.Since(start)
	r.load = loadAverage()
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

// sendMessages sends the round's cfg.messages messages, half through
// submission with STARTTLS and AUTH, half through the relay port, five per
// connection, each retried until accepted (or given up after a minute).
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
					done, err := sk.sendBatch(w, r.round, ids)
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

// sendBatch sends the messages ids of round over one connection and
// returns how many the server accepted before an error.
func (sk *soak) sendBatch(worker, round int, ids []int) (int, error) {
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
		msg := fmt.Sprintf("From: %s\r\nTo: %s\r\nMessage-ID: <%s>\r\nSubject: soak round %d message %d\r\n\r\nsoak round %d message %d\r\n",
			alice.Email, rcpt, msgID{round, id}, round, id, round, id)
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
// taken during the burst are counted apart. It ends when stop is closed.
func (sk *soak) probe(r *result, stop <-chan struct{}) {
	svc := sk.s.Services["smtp"]
	for i := 0; ; i++ {
		select {
		case <-stop:
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

// msgID is a soak message's Message-ID: its round (from 1) and its number
// in the round (from 0).
type msgID struct{ round, n int }

func (id msgID) String() string { return fmt.Sprintf("soak-r%d-%d@soak.example", id.round, id.n) }

// parseMsgID reads a Message-ID as the envelope gives it (no angle
// brackets); ok is false for one the soak did not write.
func parseMsgID(s string) (id msgID, ok bool) {
	if _, err := fmt.Sscanf(s, "soak-r%d-%d@soak.example", &id.round, &id.n); err != nil {
		return msgID{}, false
	}
	return id, id.String() == s
}

// tally compares the soak messages read back (Message-ID → copies) with
// round's messages 0 to messages-1. lost: never read back, less the
// undelivered the lab never accepted (not lost by the lab); duplicated:
// copies beyond the first; stray: copies of another round's messages (the
// earlier rounds' were expunged when they were counted).
func tally(seen map[msgID]int, round, messages, undelivered int) (lost, duplicated, stray int) {
	for id, n := range seen {
		if id.round != round || id.n < 0 || id.n >= messages {
			stray += n
		}
	}
	for i := 0; i < messages; i++ {
		switch n := seen[msgID{round, i}]; {
		case n == 0:
			lost++
		case n > 1:
			duplicated += n - 1
		}
	}
	return lost - undelivered, duplicated, stray
}

// count reads every Message-ID of every account's INBOX, compares them
// with what the round sent, and expunges every message, so that the next
// round starts from empty mailboxes.
func (sk *soak) count(r *result) error {
	seen := map[msgID]int{}
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
			if id, ok := parseMsgID(m.Envelope.MessageID); ok {
				seen[id]++
			}
		}
		if len(msgs) > 0 {
			if err := c.Store(all, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
				c.Close()
				return fmt.Errorf("%s: flag \\Deleted: %w", a.Username, err)
			}
			if err := c.Expunge().Close(); err != nil {
				c.Close()
				return fmt.Errorf("%s: expunge: %w", a.Username, err)
			}
		}
		c.Logout().Wait()
		c.Close()
	}
	r.lost, r.duplicated, r.stray = tally(seen, r.round, sk.cfg.messages, r.undelivered)
	return nil
}

// waitRSS polls the lab's RSS until it is within the target of before, or
// cfg.rssWait passed, and returns the last reading.
func (sk *soak) waitRSS(before int64) mem {
	deadline := time.Now().Add(sk.cfg.rssWait)
	for {
		now, err := memory(sk.pid)
		if err != nil || float64(now.rss) <= float64(before)*(1+maxRSSGrowth) || time.Now().After(deadline) {
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

// growth is how much after is above before, in percent.
func growth(after, before int64) float64 { return 100 * (float64(after)/float64(before) - 1) }

// report prints round r's figures: with more than one round its RSS after
// is compared with the start and, from round 2, with the previous round's.
func report(out io.Writer, cfg config, o *outcome, r *result) {
	start, after := o.memStart, r.memAfter
	fmt.Fprintf(out, "IMAPS sessions held %s: %d opened, %d failed\n", cfg.hold, r.imapsOpened, r.imapsFailed)
	if cfg.rounds == 1 {
		fmt.Fprintf(out, "messages: %d sent, %d never accepted, %d lost, %d duplicated (target 0)\n", r.sent, r.undelivered, r.lost, r.duplicated)
	} else {
		fmt.Fprintf(out, "messages: %d sent, %d never accepted, %d lost, %d duplicated, %d of another round read back (target 0)\n", r.sent, r.undelivered, r.lost, r.duplicated, r.stray)
	}
	fmt.Fprintf(out, "slowloris: %d refused (421 4.7.0), %d cut by the %s command timeout, %d never cut, %d other\n", r.slowRefused, r.slowCut, cfg.smtpTimeout, r.slowKept, r.slowOther)
	fmt.Fprintf(out, "fd exhaustion: every listener greeting again %s after the burst (target %s)\n", r.recovery.Round(time.Millisecond), maxRecovery)
	if cfg.rounds == 1 {
		fmt.Fprintf(out, "RSS: %d kB before, %d kB at the peak of the load, %d kB after (%+.0f%%, read %s after the load; target +%.0f%%)\n",
			start.rss, r.rssPeak, after.rss, growth(after.rss, start.rss), r.rssWaited.Round(time.Second), 100*maxRSSGrowth)
	} else {
		fmt.Fprintf(out, "RSS: %d kB before round 1, %d kB at the peak of round %d, %d kB after it (%+.1f%% against the start, read %s after the load; target +%.0f%% after the last round)\n",
			start.rss, r.rssPeak, r.round, after.rss, growth(after.rss, start.rss), r.rssWaited.Round(time.Second), 100*maxRSSGrowth)
	}
	fmt.Fprintf(out, "  of which anonymous %d → %d kB, pages of the binary %d → %d kB\n", start.anon, after.anon, start.file, after.file)
	if r.round > 1 {
		prev := o.rounds[r.round-2].memAfter
		fmt.Fprintf(out, "  against round %d's %d kB after: %+.1f%% (anonymous %d → %d kB, pages of the binary %d → %d kB)\n",
			r.round-1, prev.rss, growth(after.rss, prev.rss), prev.anon, after.anon, prev.file, after.file)
	}
	fmt.Fprintf(out, "normal client (connect, EHLO, QUIT): p99 %s over %d samples, %d failures; %d failures during the burst (target p99 %s)\n",
		r.p99().Round(time.Millisecond), len(r.latencies), r.probeFailures, r.burstProbeFailures, maxLatencyP99)
	if cfg.rounds == 1 {
		fmt.Fprintf(out, "load average at the end: %s\n", r.load)
	} else {
		fmt.Fprintf(out, "load average at the end of round %d: %s (the round took %s)\n", r.round, r.load, r.took.Round(time.Second))
	}
}

// reportRounds prints the RSS after each round side by side, and the
// growth of the last round's after-figure over the first round's: RSS
// sized by the load's peak stays about level from round to round, memory
// that leaks grows with each. The growth is reported; it is not a target.
func reportRounds(out io.Writer, o *outcome) {
	s := o.memStart
	fmt.Fprintf(out, "RSS after each round, kB (start %d: %d anonymous, %d of the binary; load average %s):\n", s.rss, s.anon, s.file, o.loadStart)
	fmt.Fprintf(out, "  round     after  anonymous  binary  vs start  vs previous    peak  waited  load average\n")
	prev := s
	for _, r := range o.rounds {
		a := r.memAfter
		fmt.Fprintf(out, "  %5d  %8d  %9d  %6d  %+7.1f%%  %+10.1f%%  %6d  %6s  %s\n",
			r.round, a.rss, a.anon, a.file, growth(a.rss, s.rss), growth(a.rss, prev.rss), r.rssPeak, r.rssWaited.Round(time.Second), r.load)
		prev = a
	}
	first, last := o.rounds[0].memAfter, o.rounds[len(o.rounds)-1].memAfter
	fmt.Fprintf(out, "RSS after round %d against after round 1: %d → %d kB, %+.1f%% (anonymous %d → %d kB, binary %d → %d kB; reported, not a target)\n",
		len(o.rounds), first.rss, last.rss, growth(last.rss, first.rss), first.anon, last.anon, first.file, last.file)
}
