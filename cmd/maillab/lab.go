package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/maillab/maillab/lab"
	"github.com/maillab/maillab/servers/transcript"
	"github.com/maillab/maillab/settings"
)

func init() { registerCommand(labCommand()) }

// labOptions are the flags of `maillab lab` (and of `maillab scenario`,
// which starts a lab too).
type labOptions struct {
	dir              string
	store            string
	address          string
	allowNonLoopback bool
	advertise        string
	standardPorts    bool
	settingsOut      string
	json             bool
	quiet            bool
	logLevel         string
	quota            string
	maxMessageSize   string
	logMaxMiB        int
	logKeep          int

	maxConnsPerClient  int
	maxConns           int
	smtpTimeout        time.Duration
	smtpDataTimeout    time.Duration
	imapCommandTimeout time.Duration
	imapIdleTimeout    time.Duration
	pop3Timeout        time.Duration
}

func labFlags(o *labOptions) []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "dir", Usage: "lab `DIR` for the CA file and lab.log (default: a temporary directory removed at exit)", EnvVars: []string{"MAILLAB_DIR"}, Destination: &o.dir, TakesFile: true},
		&cli.StringFlag{Name: "store", Usage: "keep mail in Maildir under `DIR`, so a restarted lab still has it (default: in memory)", EnvVars: []string{"MAILLAB_STORE"}, Destination: &o.store, TakesFile: true},
		&cli.StringFlag{Name: "address", Value: "127.0.0.1", Usage: "`IP` address every service binds; anything but loopback also needs --expose", EnvVars: []string{"MAILLAB_ADDRESS"}, Destination: &o.address},
		&cli.BoolFlag{Name: "expose", Usage: "allow a non-loopback --address: the lab serves deliberately broken TLS, so this exposes it to the network", EnvVars: []string{"MAILLAB_EXPOSE"}, Destination: &o.allowNonLoopback},
		&cli.StringFlag{Name: "advertise", Usage: "IP `ADDRESS` to put in the settings, DNS answers and certificate (default: --address; 127.0.0.1 if that is 0.0.0.0); for a lab in a container whose ports are published elsewhere", EnvVars: []string{"MAILLAB_ADVERTISE"}, Destination: &o.advertise},
		&cli.StringSliceFlag{Name: "port", Usage: "fix a service's port as `SERVICE=PORT` (repeatable; services: " + strings.Join(lab.PortNames(), ", ") + ")", EnvVars: []string{"MAILLAB_PORT"}},
		&cli.BoolFlag{Name: "standard-ports", Usage: "bind 25, 587, 465, 143, 993, 110, 995 and 53 (needs root or CAP_NET_BIND_SERVICE)", EnvVars: []string{"MAILLAB_STANDARD_PORTS"}, Destination: &o.standardPorts},
		&cli.StringFlag{Name: "settings-out", Usage: "write the settings JSON to `FILE` (for maillab diagnose --settings and other tools)", EnvVars: []string{"MAILLAB_SETTINGS_OUT"}, Destination: &o.settingsOut, TakesFile: true},
		&cli.BoolFlag{Name: "json", Usage: "print the settings JSON instead of the settings for a person", EnvVars: []string{"MAILLAB_JSON"}, Destination: &o.json},
		&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "do not print the transcript of client sessions (it is still in lab.log)", EnvVars: []string{"MAILLAB_QUIET"}, Destination: &o.quiet},
		&cli.StringFlag{Name: "quota", Value: "256MiB", Usage: "mail `SIZE` each account may hold (0: unlimited); over it SMTP says 552 5.2.2 and IMAP APPEND NO [OVERQUOTA]", EnvVars: []string{"MAILLAB_QUOTA"}, Destination: &o.quota},
		&cli.StringFlag{Name: "max-message-size", Value: "25MiB", Usage: "largest message `SIZE`, the same for SMTP (SIZE) and IMAP APPEND (APPENDLIMIT; 0: unlimited)", EnvVars: []string{"MAILLAB_MAX_MESSAGE_SIZE"}, Destination: &o.maxMessageSize},
		&cli.StringFlag{Name: "log-level", Value: "warn", Usage: "`LEVEL` of diagnostics on stderr: debug, info, warn or error", EnvVars: []string{"MAILLAB_LOG_LEVEL"}, Destination: &o.logLevel},
		&cli.IntFlag{Name: "log-max-size", Value: transcript.DefaultMaxBytes >> 20, Usage: "rotate lab.log when it reaches `MIB` mebibytes (0: never)", EnvVars: []string{"MAILLAB_LOG_MAX_SIZE"}, Destination: &o.logMaxMiB},
		&cli.IntFlag{Name: "log-keep", Value: transcript.DefaultKeep, Usage: "keep `N` rotated lab.log files (lab.log.1 is the newest; 0: keep none)", EnvVars: []string{"MAILLAB_LOG_KEEP"}, Destination: &o.logKeep},
		&cli.IntFlag{Name: "max-connections-per-client", Value: lab.DefaultMaxConnectionsPerClient, Usage: "`N` connections one client IP address may hold at once over all ports (Postfix's smtpd_client_connection_count_limit); more get 421 4.7.0, * BYE [LIMIT] or -ERR [SYS/TEMP]; -1: no limit", EnvVars: []string{"MAILLAB_MAX_CONNECTIONS_PER_CLIENT"}, Destination: &o.maxConnsPerClient, Category: "Limits"},
		&cli.IntFlag{Name: "max-connections", Value: lab.DefaultMaxConnections, Usage: "`N` connections all clients together may hold at once; -1: no limit", EnvVars: []string{"MAILLAB_MAX_CONNECTIONS"}, Destination: &o.maxConns, Category: "Limits"},
		&cli.DurationFlag{Name: "smtp-timeout", Value: lab.DefaultSMTPTimeout, Usage: "`DURATION` an SMTP command line may take to arrive, waiting included (RFC 5321 §4.5.3.2); then 421 4.4.2", EnvVars: []string{"MAILLAB_SMTP_TIMEOUT"}, Destination: &o.smtpTimeout, Category: "Limits"},
		&cli.DurationFlag{Name: "smtp-data-timeout", Value: lab.DefaultSMTPDataTimeout, Usage: "`DURATION` the message after DATA may take to arrive (RFC 5321 §4.5.3.2.6); then 421 4.4.2", EnvVars: []string{"MAILLAB_SMTP_DATA_TIMEOUT"}, Destination: &o.smtpDataTimeout, Category: "Limits"},
		&cli.DurationFlag{Name: "imap-command-timeout", Value: lab.DefaultIMAPCommandTimeout, Usage: "`DURATION` IMAP waits for a command before login, and for the rest of any command once begun", EnvVars: []string{"MAILLAB_IMAP_COMMAND_TIMEOUT"}, Destination: &o.imapCommandTimeout, Category: "Limits"},
		&cli.DurationFlag{Name: "imap-idle-timeout", Value: lab.DefaultIMAPIdleTimeout, Usage: "IMAP autologout `DURATION` after login (RFC 9051 §5.4: at least 30m)", EnvVars: []string{"MAILLAB_IMAP_IDLE_TIMEOUT"}, Destination: &o.imapIdleTimeout, Category: "Limits"},
		&cli.DurationFlag{Name: "pop3-timeout", Value: lab.DefaultPOP3Timeout, Usage: "POP3 autologout `DURATION`: a command line must arrive within it (RFC 1939 §3: at least 10m)", EnvVars: []string{"MAILLAB_POP3_TIMEOUT"}, Destination: &o.pop3Timeout, Category: "Limits"},
	}
}

// limits checks the limit flags and copies them into opts.
func (o *labOptions) limits(opts *lab.Options) error {
	for _, f := range []struct {
		name string
		v    int
	}{{"max-connections-per-client", o.maxConnsPerClient}, {"max-connections", o.maxConns}} {
		if f.v == 0 || f.v < -1 {
			return usageErrorf("--%s %d: want a positive number of connections, or -1 for no limit", f.name, f.v)
		}
	}
	for _, f := range []struct {
		name string
		v    time.Duration
	}{{"smtp-timeout", o.smtpTimeout}, {"smtp-data-timeout", o.smtpDataTimeout}, {"imap-command-timeout", o.imapCommandTimeout}, {"imap-idle-timeout", o.imapIdleTimeout}, {"pop3-timeout", o.pop3Timeout}} {
		if f.v <= 0 {
			return usageErrorf("--%s %s: want a positive duration such as 30s or 10m", f.name, f.v)
		}
	}
	opts.MaxConnectionsPerClient = o.maxConnsPerClient
	opts.MaxConnections = o.maxConns
	opts.SMTPTimeout = o.smtpTimeout
	opts.SMTPDataTimeout = o.smtpDataTimeout
	opts.IMAPCommandTimeout = o.imapCommandTimeout
	opts.IMAPIdleTimeout = o.imapIdleTimeout
	opts.POP3Timeout = o.pop3Timeout
	return nil
}

// labOpts turns flags into lab.Options; errors name the flag.
func (o *labOptions) labOpts(c *cli.Context, stdout, stderr io.Writer) (lab.Options, error) {
	var opts lab.Options
	level, err := parseLogLevel(o.logLevel)
	if err != nil {
		return opts, err
	}
	ports, err := parsePorts(c.StringSlice("port"))
	if err != nil {
		return opts, err
	}
	quota, err := parseSize("quota", o.quota)
	if err != nil {
		return opts, err
	}
	maxSize, err := parseSize("max-message-size", o.maxMessageSize)
	if err != nil {
		return opts, err
	}
	if o.logMaxMiB < 0 {
		return opts, usageErrorf("--log-max-size %d: want a size in MiB, or 0 to never rotate", o.logMaxMiB)
	}
	if o.logKeep < 0 {
		return opts, usageErrorf("--log-keep %d: want a number of files, 0 or more", o.logKeep)
	}
	ip := net.ParseIP(o.address)
	if ip == nil {
		return opts, usageErrorf("--address %q is not an IP address", o.address)
	}
	if !ip.IsLoopback() {
		if !o.allowNonLoopback {
			return opts, usageErrorf("--address %s is not a loopback address; the lab serves deliberately broken TLS, so add --expose to make it reachable from the network", o.address)
		}
		fmt.Fprintf(stderr, "maillab: WARNING: the lab listens on %s and is reachable from the network; it serves deliberately broken TLS and known passwords. Stop it when the class is over.\n", o.address)
	}
	opts = lab.Options{
		Dir:              o.dir,
		StoreDir:         o.store,
		Address:          o.address,
		AllowNonLoopback: o.allowNonLoopback,
		Advertise:        o.advertise,
		Ports:            ports,
		StandardPorts:    o.standardPorts,
		Quota:            orUnlimited(quota),
		MaxMessageSize:   orUnlimited(maxSize),
		Logger:           slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})),
		LogMaxBytes:      int64(o.logMaxMiB) << 20,
		LogKeep:          o.logKeep,
	}
	// Zero flags mean "never" and "none"; zero options mean the defaults.
	if o.logMaxMiB == 0 {
		opts.LogMaxBytes = -1
	}
	if o.logKeep == 0 {
		opts.LogKeep = -1
	}
	if err := o.limits(&opts); err != nil {
		return opts, err
	}
	if !o.quiet && !o.json {
		opts.Transcript = transcript.NewTextSink(stdout)
	}
	return opts, nil
}

// orUnlimited maps a flag's 0 ("unlimited") to lab.Options' -1 (its 0
// means the default).
func orUnlimited(n int64) int64 {
	if n == 0 {
		return -1
	}
	return n
}

func parseLogLevel(s string) (slog.Level, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(s)); err != nil {
		return 0, usageErrorf("--log-level %q: want debug, info, warn or error", s)
	}
	return level, nil
}

func parsePorts(specs []string) (map[string]int, error) {
	ports := map[string]int{}
	for _, spec := range specs {
		name, num, ok := strings.Cut(spec, "=")
		if !ok {
			return nil, usageErrorf("--port %q: want SERVICE=PORT, e.g. --port submission=2587", spec)
		}
		name = strings.ToLower(strings.TrimSpace(name))
		valid := false
		for _, n := range lab.PortNames() {
			valid = valid || n == name
		}
		if !valid {
			return nil, usageErrorf("--port %q: unknown service %q; valid: %s", spec, name, strings.Join(lab.PortNames(), ", "))
		}
		p, err := strconv.Atoi(strings.TrimSpace(num))
		if err != nil || p < 0 || p > 65535 {
			return nil, usageErrorf("--port %q: %q is not a port number (0-65535)", spec, num)
		}
		ports[name] = p
	}
	return ports, nil
}

func labCommand() *cli.Command {
	o := &labOptions{}
	return &cli.Command{
		Name:  "lab",
		Usage: "start a working mail provider for example.test on loopback",
		Description: `Starts SMTP (relay, submission with STARTTLS, submission with implicit TLS),
IMAP (STARTTLS and TLS), POP3 (STLS and TLS) and DNS servers for example.test,
with a fresh certificate authority, and prints the settings to type into a mail
client. A message alice sends to bob over SMTP can be read over IMAP and POP3.
Every session's protocol exchange (passwords masked) is printed as it happens
and kept in lab.log in the lab directory. Stop with Ctrl-C (or SIGTERM, SIGHUP).

Examples:
   maillab lab                                  free ports, mail in memory
   maillab lab --settings-out lab.json          then: maillab diagnose --settings lab.json
   maillab lab --port submission=2587 --port imaps=9993 --store ./mail
   sudo maillab lab --standard-ports            25, 587, 465, 143, 993, 110, 995, 53

` + exitCodesHelp,
		Flags: labFlags(o),
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usageErrorf("lab takes no arguments, got %q", c.Args().First())
			}
			waitForSignal, release := catchStopSignals()
			defer release()
			opts, err := o.labOpts(c, c.App.Writer, c.App.ErrWriter)
			if err != nil {
				return err
			}
			l, err := lab.Start(opts)
			if err != nil {
				return usageErrorf("%v", err)
			}
			defer l.Close()
			s := l.Settings()
			if err := o.publish(c.App.Writer, s, func(w io.Writer) { printLabIntro(w, l) }); err != nil {
				return err
			}
			waitForSignal(c.Context)
			fmt.Fprintln(c.App.ErrWriter, "maillab: stopping the lab")
			return nil
		},
	}
}

// publish writes the settings file and prints the settings for a person
// (or as JSON).
func (o *labOptions) publish(w io.Writer, s *settings.Settings, intro func(io.Writer)) error {
	if o.settingsOut != "" {
		if err := s.Write(o.settingsOut); err != nil {
			return usageErrorf("--settings-out: %v", err)
		}
	}
	if o.json {
		data, err := s.Marshal()
		if err != nil {
			return err
		}
		w.Write(data)
		return nil
	}
	if intro != nil {
		intro(w)
	}
	printSettings(w, s)
	if !o.quiet {
		fmt.Fprintln(w, "\nTranscript of client sessions (also in lab.log):")
	}
	return nil
}

// stopSignals stop a lab the way Ctrl-C does, so that Close removes its
// directory: SIGINT, SIGTERM (kill's default) and SIGHUP (the terminal went
// away), whose default actions end the process without any cleanup.
var stopSignals = []os.Signal{os.Interrupt, syscall.SIGTERM, syscall.SIGHUP}

// catchStopSignals catches stopSignals from now on, so that one arriving
// while the lab starts still stops it cleanly, and returns wait, which
// blocks until one arrives or ctx ends. release stops catching them.
func catchStopSignals() (wait func(ctx context.Context), release func()) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, stopSignals...)
	wait = func(ctx context.Context) {
		if ctx == nil {
			ctx = context.Background()
		}
		select {
		case <-ch:
		case <-ctx.Done():
		}
	}
	return wait, func() { signal.Stop(ch) }
}

func printLabIntro(w io.Writer, l *lab.Lab) {
	fmt.Fprintf(w, "maillab: a working mail provider for %s is running (Ctrl-C stops it).\n\n", l.Domain)
}
