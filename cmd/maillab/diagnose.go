package main

import (
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/maillab/maillab/diagnose"
	"github.com/maillab/maillab/diagnose/discover"
	"github.com/maillab/maillab/settings"
	"github.com/urfave/cli/v2"
)

func init() { registerCommand(diagnoseCommand()) }

const diagnoseDescription = `diagnose probes the mail services of one account layer by layer
(DNS, TCP, TLS or STARTTLS, greeting, capabilities, login, a send or fetch
test) and names the root cause of a failure with a code of maillab's
catalog, the evidence (the server's exact reply, the certificate, the
timing) and a fix a helpdesk can act on. It works against any mail server.

EXAMPLES:
   maillab diagnose --email alice@example.com --imap imap.example.com:993 \
       --smtp smtp.example.com:587 --username alice@example.com
       (the password is read from $MAILLAB_PASSWORD or --password-file)
   maillab diagnose --settings customer.json --json
   maillab diagnose --autoconfig config-v1.1.xml --email alice@example.com
   maillab diagnose --email alice@example.test --resolver 127.0.0.1:5353
       (no servers given: found as Thunderbird and Outlook find them)
   maillab diagnose --smtp mail.example.com:25 --smtp-security none \
       --to someone@elsewhere.example    (test relaying without a login)

SERVERS:
   --smtp, --imap and --pop3 take HOST or HOST:PORT. A bare HOST uses the
   standard port of its security mode (SMTP 587 STARTTLS, IMAP 993 and
   POP3 995 SSL/TLS unless --*-security says otherwise). HOST:PORT without
   --*-security implies: 465, 993, 995 tls; 25 none; anything else starttls.

TIMING:
   --connect-timeout (default 3s) bounds each TCP connect and DNS query: a
   blackholed port is named TCP_TIMEOUT after it. --reply-timeout (default
   60s, Outlook's server timeout; Thunderbird waits 100s) bounds each wait for
   the server: greeting, TLS handshake, every reply. A reply within it is not
   the root cause but a finding with the measured delay (e.g. a refused login
   delayed against password guessing); SERVER_SLOW means slower than that.
   --timeout, the old single timeout, sets both where they are not given.
   Ctrl-C prints the steps run so far, no root cause, and exits 130.

ACCOUNT SET-UP:
   With --email and no --smtp/--imap/--pop3/--settings/--autoconfig, the
   servers are discovered as mail clients' wizards do (Thunderbird:
   autoconfig over HTTPS then HTTP, the well-known URL, its ISP database
   (on the internet: skipped), SRV records, MX, probing common host names;
   Outlook: Autodiscover and its redirects); every step, its outcome and its
   time is printed, then what was found is diagnosed. With servers given too,
   the domain's published configuration is compared with them and a stale
   document, a foreign Autodiscover redirect or a guessed host becomes the
   root cause. --setup-https-port/--setup-http-port name the web ports of a
   lab on free ports (its settings file names them itself). No password is
   sent to a host outside the address's domain that discovery (or a
   redirect) proposes unless --allow-foreign-host.

SAFETY:
   At most one login attempt per service and run, and none at all on the
   other services once a login was refused, so a diagnosis never locks an
   account. A password is never sent over an unencrypted connection unless
   --allow-plaintext is given (the report then says so); without it the
   diagnoser learns what it can with commands that carry no secret. Nothing
   is deleted or changed in the mailbox (IMAP EXAMINE, POP3 STAT/UIDL); the
   send test delivers one small message to the account itself unless --to
   or --message say otherwise. Every step has a deadline.

` + exitCodesHelp

func diagnoseCommand() *cli.Command {
	return &cli.Command{
		Name:        "diagnose",
		Usage:       "find why a mail account cannot reach its servers, and how to fix it",
		UsageText:   "maillab diagnose [--settings FILE | --autoconfig FILE | --smtp HOST[:PORT] --imap HOST[:PORT] --pop3 HOST[:PORT]] [options]",
		Description: diagnoseDescription,
		Flags:       diagnoseFlags(),
		Action:      diagnoseAction,
	}
}

func diagnoseFlags() []cli.Flag {
	env := func(name string) []string { return []string{"MAILLAB_" + name} }
	return []cli.Flag{
		&cli.StringFlag{Name: "email", Usage: "the account's `ADDRESS`; its domain's MX and SRV records are checked against the servers", EnvVars: env("EMAIL")},
		&cli.StringFlag{Name: "smtp", Usage: "outgoing server `HOST[:PORT]`", EnvVars: env("SMTP")},
		&cli.StringFlag{Name: "smtp-security", Usage: "`MODE` of the outgoing server: none, starttls or tls", EnvVars: env("SMTP_SECURITY")},
		&cli.StringFlag{Name: "imap", Usage: "IMAP server `HOST[:PORT]`", EnvVars: env("IMAP")},
		&cli.StringFlag{Name: "imap-security", Usage: "`MODE` of the IMAP server: none, starttls or tls", EnvVars: env("IMAP_SECURITY")},
		&cli.StringFlag{Name: "pop3", Usage: "POP3 server `HOST[:PORT]`", EnvVars: env("POP3")},
		&cli.StringFlag{Name: "pop3-security", Usage: "`MODE` of the POP3 server: none, starttls or tls", EnvVars: env("POP3_SECURITY")},
		&cli.StringFlag{Name: "username", Usage: "login `NAME` (default: the email address)", EnvVars: env("USERNAME")},
		&cli.StringFlag{Name: "password", Usage: "the `PASSWORD` (prefer $MAILLAB_PASSWORD or --password-file: command lines are visible to other users)", EnvVars: env("PASSWORD")},
		&cli.StringFlag{Name: "password-file", Usage: "read the password from the first line of `FILE`", EnvVars: env("PASSWORD_FILE")},
		&cli.StringFlag{Name: "resolver", Usage: "DNS server `HOST:PORT` to ask (default: /etc/hosts, then the system's nameservers)", EnvVars: env("RESOLVER")},
		&cli.StringFlag{Name: "ca", Usage: "PEM `FILE` of extra trusted root certificates", EnvVars: env("CA")},
		&cli.StringFlag{Name: "client-max-tls", Usage: "highest TLS `VERSION` of the client to reproduce: 1.0, 1.1, 1.2 or 1.3", EnvVars: env("CLIENT_MAX_TLS")},
		&cli.StringSliceFlag{Name: "auth-mech", Usage: "allowed SASL `MECHANISM` of the client to reproduce (PLAIN, LOGIN, CRAM-MD5); repeatable", EnvVars: env("AUTH_MECH")},
		&cli.StringFlag{Name: "to", Usage: "recipient `ADDRESS` of the send test (default: the account itself)", EnvVars: env("TO")},
		&cli.StringFlag{Name: "message", Usage: "RFC 5322 message `FILE` (.eml) for the send test (default: a small test message)", EnvVars: env("MESSAGE")},
		&cli.DurationFlag{Name: "connect-timeout", Value: diagnose.DefaultConnectTimeout, Usage: "`DURATION` to wait for each TCP connection and DNS answer (a firewall that drops packets is named after it)", EnvVars: env("CONNECT_TIMEOUT")},
		&cli.DurationFlag{Name: "reply-timeout", Value: diagnose.DefaultReplyTimeout, Usage: "`DURATION` to wait for each answer of the server (greeting, TLS handshake, replies): what the mail client waits; slower is SERVER_SLOW (Outlook 60s, Thunderbird 100s)", EnvVars: env("REPLY_TIMEOUT")},
		&cli.DurationFlag{Name: "timeout", Usage: "deprecated: sets both --connect-timeout and --reply-timeout to `DURATION` (where they are not given)", EnvVars: env("TIMEOUT")},
		&cli.IntFlag{Name: "setup-https-port", Usage: "`PORT` of the domain's set-up documents over HTTPS (default 443)", EnvVars: env("SETUP_HTTPS_PORT")},
		&cli.IntFlag{Name: "setup-http-port", Usage: "`PORT` of the domain's set-up documents over HTTP (default 80)", EnvVars: env("SETUP_HTTP_PORT")},
		&cli.BoolFlag{Name: "allow-foreign-host", Usage: "log in on a server outside the address's domain that discovery or a redirect proposed", EnvVars: env("ALLOW_FOREIGN_HOST")},
		&cli.BoolFlag{Name: "allow-plaintext", Usage: "allow sending the password over an unencrypted connection", EnvVars: env("ALLOW_PLAINTEXT")},
		&cli.StringFlag{Name: "settings", Usage: "settings JSON `FILE` (as written by maillab lab/scenario --settings-out); its client options apply", EnvVars: env("SETTINGS")},
		&cli.StringFlag{Name: "autoconfig", Usage: "Mozilla autoconfig clientConfig XML `FILE`", EnvVars: env("AUTOCONFIG")},
		&cli.BoolFlag{Name: "json", Usage: "print the report as JSON"},
	}
}

func diagnoseAction(c *cli.Context) error {
	if c.NArg() > 0 {
		return usageErrorf("diagnose takes no arguments, got %q", c.Args().First())
	}
	cfg, err := diagnoseConfig(c)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	dopts, err := discoverOptions(c)
	if err != nil {
		return err
	}
	if len(cfg.Services) == 0 {
		// --email alone: find the servers first, as a wizard does.
		res, err := discover.Discover(ctx, dopts)
		if err != nil {
			return usageErrorf("--email: %v", err)
		}
		if !c.Bool("json") {
			printDiscovery(c.App.Writer, res)
		}
		best := res.Best()
		if best == nil {
			if ctx.Err() != nil {
				return silentExit(exitInterrupted)
			}
			fmt.Fprintf(c.App.ErrWriter, "maillab: no configuration found for %s: %s publishes none that a mail client finds (see the steps above)\n", dopts.Email, dopts.Email[strings.LastIndexByte(dopts.Email, '@')+1:])
			return silentExit(exitFinding)
		}
		for _, name := range best.Settings.SortedServiceNames() {
			svc := best.Settings.Services[name]
			cfg.Services = append(cfg.Services, diagnose.Service{Name: name, Host: svc.Host, Port: svc.Port, Security: svc.Security})
		}
		slices.SortStableFunc(cfg.Services, func(a, b diagnose.Service) int { return diagnoseServiceIndex(a.Name) - diagnoseServiceIndex(b.Name) })
		if cfg.Username == "" || (!c.IsSet("username") && len(best.Settings.Accounts) > 0 && best.Settings.Accounts[0].Username != "") {
			cfg.Username = best.Settings.Accounts[0].Username
		}
	}
	report, _, err := discover.Diagnose(ctx, cfg, dopts)
	interrupted := errors.Is(err, diagnose.ErrInterrupted)
	if err != nil && !interrupted {
		return diagnoseUsage(err)
	}
	out := c.App.Writer
	if c.Bool("json") {
		data, err := report.JSON()
		if err != nil {
			return fmt.Errorf("encode report: %w", err)
		}
		if _, err := out.Write(data); err != nil {
			return fmt.Errorf("write report: %w", err)
		}
	} else if err := report.WriteText(out); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	if interrupted {
		return silentExit(exitInterrupted)
	}
	if !report.Healthy() {
		return silentExit(exitFinding)
	}
	return nil
}

// diagnoseUsage turns a configuration error into exit 2 with one line.
func diagnoseUsage(err error) error {
	var ue *diagnose.UsageError
	var se *settings.Error
	var ae *diagnose.AutoconfigError
	switch {
	case errors.As(err, &ue), errors.As(err, &se), errors.As(err, &ae):
		return usageErrorf("%s", err)
	}
	return usageErrorf("diagnose: %s", err)
}

// diagnoseConfig builds the Config from --settings or --autoconfig, then
// the flags, which override the files.
func diagnoseConfig(c *cli.Context) (diagnose.Config, error) {
	var cfg diagnose.Config
	switch {
	case c.IsSet("settings") && c.IsSet("autoconfig"):
		return cfg, usageErrorf("--settings and --autoconfig exclude each other")
	case c.IsSet("settings"):
		s, err := settings.Load(c.String("settings"))
		if err != nil {
			return cfg, diagnoseFileError("--settings", c.String("settings"), err)
		}
		if cfg, err = diagnose.FromSettings(s); err != nil {
			return cfg, diagnoseUsage(err)
		}
	case c.IsSet("autoconfig"):
		file := c.String("autoconfig")
		data, err := os.ReadFile(file)
		if err != nil {
			return cfg, diagnoseFileError("--autoconfig", file, err)
		}
		ac, err := diagnose.ParseAutoconfig(file, data)
		if err != nil {
			return cfg, diagnoseUsage(err)
		}
		cfg = ac.Config(c.String("email"))
	}
	for _, f := range []struct{ flag, protocol string }{{"smtp", settings.ProtocolSMTP}, {"imap", settings.ProtocolIMAP}, {"pop3", settings.ProtocolPOP3}} {
		secFlag := f.flag + "-security"
		if !c.IsSet(f.flag) {
			if c.IsSet(secFlag) {
				return cfg, usageErrorf("--%s needs --%s", secFlag, f.flag)
			}
			continue
		}
		host, port, err := diagnose.ParseHostPort(c.String(f.flag))
		if err != nil {
			return cfg, usageErrorf("--%s: %v", f.flag, err)
		}
		sec := strings.ToLower(c.String(secFlag))
		switch {
		case sec != "" && !slices.Contains(settings.SecurityModes, sec):
			return cfg, usageErrorf("--%s: %q is not none, starttls or tls", secFlag, sec)
		case sec == "" && port != 0:
			sec = diagnose.DefaultSecurity(port)
		case sec == "" && f.protocol == settings.ProtocolSMTP:
			sec = settings.SecurityStartTLS
		case sec == "":
			sec = settings.SecurityTLS
		}
		if port == 0 {
			port = settings.StandardPort(f.protocol, sec)
		}
		// A flag replaces the file's services of the same protocol.
		cfg.Services = slices.DeleteFunc(cfg.Services, func(s diagnose.Service) bool { return s.Protocol() == f.protocol })
		cfg.Services = append(cfg.Services, diagnose.Service{Name: diagnose.ServiceName(f.protocol, sec, port), Host: host, Port: port, Security: sec})
	}
	slices.SortStableFunc(cfg.Services, func(a, b diagnose.Service) int { return diagnoseServiceIndex(a.Name) - diagnoseServiceIndex(b.Name) })
	if c.IsSet("email") {
		cfg.Email = c.String("email")
	}
	if c.IsSet("username") {
		cfg.Username = c.String("username")
	}
	switch {
	case c.IsSet("password") && c.IsSet("password-file"):
		return cfg, usageErrorf("--password and --password-file exclude each other")
	case c.IsSet("password-file"):
		data, err := os.ReadFile(c.String("password-file"))
		if err != nil {
			return cfg, diagnoseFileError("--password-file", c.String("password-file"), err)
		}
		line, _, _ := strings.Cut(string(data), "\n")
		cfg.Password = strings.TrimSuffix(line, "\r")
		if cfg.Password == "" {
			return cfg, usageErrorf("--password-file %s: the first line is empty", c.String("password-file"))
		}
	case c.IsSet("password"):
		cfg.Password = c.String("password")
	}
	if cfg.Username == "" && cfg.Password != "" {
		cfg.Username = cfg.Email
	}
	if cfg.Password != "" && cfg.Username == "" {
		return cfg, usageErrorf("a password needs --username or --email")
	}
	if c.IsSet("resolver") {
		cfg.Resolver = c.String("resolver")
	}
	if c.IsSet("ca") {
		cfg.CAFile = c.String("ca")
	}
	if c.IsSet("client-max-tls") {
		cfg.ClientMaxTLS = c.String("client-max-tls")
	}
	if c.IsSet("auth-mech") {
		cfg.AuthMechs = c.StringSlice("auth-mech")
	}
	if c.IsSet("to") {
		cfg.SendTo = c.String("to")
	}
	if c.IsSet("message") {
		cfg.MessageFile = c.String("message")
	}
	for _, name := range []string{"timeout", "connect-timeout", "reply-timeout"} {
		if c.IsSet(name) && c.Duration(name) <= 0 {
			return cfg, usageErrorf("--%s must be positive, got %s", name, c.Duration(name))
		}
	}
	// --timeout is the old single timeout: it stands for whichever of the
	// two is not given.
	cfg.ConnectTimeout, cfg.ReplyTimeout = c.Duration("connect-timeout"), c.Duration("reply-timeout")
	if c.IsSet("timeout") {
		if !c.IsSet("connect-timeout") {
			cfg.ConnectTimeout = c.Duration("timeout")
		}
		if !c.IsSet("reply-timeout") {
			cfg.ReplyTimeout = c.Duration("timeout")
		}
	}
	if c.IsSet("allow-plaintext") {
		cfg.AllowPlaintext = c.Bool("allow-plaintext")
	}
	if len(cfg.Services) == 0 && cfg.Email == "" {
		return cfg, usageErrorf("nothing to diagnose: give --email ADDRESS (its servers are discovered), --smtp, --imap or --pop3, or --settings FILE or --autoconfig FILE (see --help)")
	}
	return cfg, nil
}

// discoverOptions are the account set-up lookups' options: from the
// settings file where one is given, then the flags.
func discoverOptions(c *cli.Context) (discover.Options, error) {
	var opts discover.Options
	if c.IsSet("settings") {
		s, err := settings.Load(c.String("settings"))
		if err != nil {
			return opts, diagnoseFileError("--settings", c.String("settings"), err)
		}
		if opts, err = discover.OptionsFor(s); err != nil {
			return opts, usageErrorf("--settings %s: %v", c.String("settings"), err)
		}
	}
	if c.IsSet("email") {
		opts.Email = c.String("email")
	}
	if c.IsSet("resolver") {
		opts.Resolver = c.String("resolver")
	}
	if c.IsSet("ca") {
		pem, err := os.ReadFile(c.String("ca"))
		if err != nil {
			return opts, diagnoseFileError("--ca", c.String("ca"), err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return opts, usageErrorf("--ca %s: no PEM certificate in it", c.String("ca"))
		}
		opts.Roots = pool
	}
	for _, f := range []struct {
		name string
		dst  *int
	}{{"setup-https-port", &opts.HTTPSPort}, {"setup-http-port", &opts.HTTPPort}} {
		if c.IsSet(f.name) {
			p := c.Int(f.name)
			if p < 1 || p > 65535 {
				return opts, usageErrorf("--%s: %d is not a port 1-65535", f.name, p)
			}
			*f.dst = p
		}
	}
	opts.AllowForeignHost = c.Bool("allow-foreign-host")
	if c.IsSet("connect-timeout") {
		opts.StepTimeout = c.Duration("connect-timeout")
	}
	return opts, nil
}

// printDiscovery prints what each step of the set-up lookups found.
func printDiscovery(w io.Writer, r *discover.Result) {
	fmt.Fprintf(w, "Account set-up of %s, as mail clients look it up (%s):\n", r.Email, r.Elapsed.Round(time.Millisecond))
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	for _, s := range r.Steps {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", s.Client, s.Method, s.Outcome, s.Elapsed.Round(time.Millisecond), s.Target)
		if s.Detail != "" {
			fmt.Fprintf(tw, "  \t\t\t\t  %s\n", s.Detail)
		}
	}
	tw.Flush()
	for _, x := range []struct {
		who string
		c   *discover.Config
	}{{"Thunderbird", r.Thunderbird}, {"Outlook", r.Outlook}} {
		if x.c == nil {
			fmt.Fprintf(w, "%s would find nothing.\n", x.who)
			continue
		}
		fmt.Fprintf(w, "%s would set up (from %s):\n", x.who, x.c.Source)
		for _, name := range x.c.Settings.SortedServiceNames() {
			svc := x.c.Settings.Services[name]
			fmt.Fprintf(w, "  %-12s %s:%d %s\n", name, svc.Host, svc.Port, discover.SecurityLabel(svc.Security))
		}
		if len(x.c.Foreign) > 0 {
			fmt.Fprintf(w, "  outside the address's domain: %s (no password is sent there without --allow-foreign-host)\n", strings.Join(x.c.Foreign, ", "))
		}
	}
	fmt.Fprintln(w)
}

// diagnoseFileError names the flag and file of an unreadable input.
func diagnoseFileError(flag, file string, err error) error {
	var se *settings.Error
	if errors.As(err, &se) {
		return usageErrorf("%s", se)
	}
	var pe *os.PathError
	if errors.As(err, &pe) {
		return usageErrorf("%s %s: %v", flag, file, pe.Err)
	}
	return usageErrorf("%s %s: %v", flag, file, err)
}

func diagnoseServiceIndex(name string) int {
	for i, s := range settings.Services {
		if s.Name == name {
			return i
		}
	}
	return len(settings.Services)
}
