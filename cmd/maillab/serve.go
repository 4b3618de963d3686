package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/maillab/maillab/serve"
)

func init() { registerCommand(serveCommand()) }

// serveOptions are the flags of `maillab serve`.
type serveOptions struct {
	listen     string
	data       string
	maxLabs    int
	expose     bool
	labAddress string
	advertise  string
	logLevel   string
}

func serveCommand() *cli.Command {
	o := &serveOptions{}
	return &cli.Command{
		Name:  "serve",
		Usage: "host many labs in one process, steered over an HTTP API",
		Description: `Starts one long-running process that hosts any number of labs (each a full
provider with its own ports and CA), created, steered and deleted over a JSON
API under /api/v1 (described at /api/v1/openapi.json). It prints the console URL
with the access token; API clients send the token as "Authorization: Bearer TOKEN"
(it is also in DATA/token). The labs wanted are kept in DATA/maillab.db: after a
restart they come back with the same ids, ports (where free), CA, accounts and mail.

Examples:
   maillab serve
   TOKEN=$(cat ~/.local/state/maillab/token)
   curl -H "Authorization: Bearer $TOKEN" -d '{"scenario":"expired-cert"}' http://127.0.0.1:8025/api/v1/labs

` + exitCodesHelp,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "listen", Value: "127.0.0.1:8025", Usage: "`HOST:PORT` of the API; anything but loopback also needs --expose", EnvVars: []string{"MAILLAB_LISTEN"}, Destination: &o.listen},
			&cli.StringFlag{Name: "data", Usage: "data `DIR` (database, token, one directory per lab); default $XDG_STATE_HOME/maillab or ~/.local/state/maillab", EnvVars: []string{"MAILLAB_DATA"}, Destination: &o.data, TakesFile: true},
			&cli.IntFlag{Name: "max-labs", Value: 500, Usage: "refuse to start more than `N` labs at once (429)", EnvVars: []string{"MAILLAB_MAX_LABS"}, Destination: &o.maxLabs},
			&cli.BoolFlag{Name: "expose", Usage: "allow a non-loopback --listen or --lab-address: labs serve deliberately broken TLS, so this exposes them to the network", EnvVars: []string{"MAILLAB_EXPOSE"}, Destination: &o.expose},
			&cli.StringFlag{Name: "lab-address", Value: "127.0.0.1", Usage: "`IP` address every lab binds; anything but loopback also needs --expose", EnvVars: []string{"MAILLAB_LAB_ADDRESS"}, Destination: &o.labAddress},
			&cli.StringFlag{Name: "advertise", Usage: "IP `ADDRESS` labs write into settings, DNS answers and certificates (default: --lab-address)", EnvVars: []string{"MAILLAB_ADVERTISE"}, Destination: &o.advertise},
			&cli.StringFlag{Name: "log-level", Value: "warn", Usage: "`LEVEL` of diagnostics on stderr: debug, info, warn or error", EnvVars: []string{"MAILLAB_LOG_LEVEL"}, Destination: &o.logLevel},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usageErrorf("serve takes no arguments, got %q", c.Args().First())
			}
			return runServe(c.Context, o, c.App.Writer, c.App.ErrWriter)
		},
	}
}

// defaultDataDir is $XDG_STATE_HOME/maillab, else ~/.local/state/maillab.
func defaultDataDir() (string, error) {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "maillab"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", usageErrorf("--data: no home directory to keep the data in (%v); give --data DIR", err)
	}
	return filepath.Join(home, ".local", "state", "maillab"), nil
}

func runServe(ctx context.Context, o *serveOptions, stdout, stderr io.Writer) error {
	level, err := parseLogLevel(o.logLevel)
	if err != nil {
		return err
	}
	if o.maxLabs < 1 {
		return usageErrorf("--max-labs %d: want at least 1", o.maxLabs)
	}
	host, _, err := net.SplitHostPort(o.listen)
	if err != nil {
		return usageErrorf("--listen %q: want HOST:PORT, e.g. 127.0.0.1:8025", o.listen)
	}
	ip := net.ParseIP(host)
	if host == "localhost" {
		ip = net.IPv4(127, 0, 0, 1)
	}
	if ip == nil && host != "" {
		return usageErrorf("--listen %q: the host must be an IP address", o.listen)
	}
	labIP := net.ParseIP(o.labAddress)
	if labIP == nil {
		return usageErrorf("--lab-address %q is not an IP address", o.labAddress)
	}
	if ip == nil || !ip.IsLoopback() || !labIP.IsLoopback() {
		if !o.expose {
			return usageErrorf("--listen %s / --lab-address %s is not a loopback address; the labs serve deliberately broken TLS, so add --expose to make them reachable from the network", o.listen, o.labAddress)
		}
		fmt.Fprintf(stderr, "maillab: WARNING: the API (%s) or the labs (%s) are reachable from the network; labs serve deliberately broken TLS and known passwords. Stop it when the class is over.\n", o.listen, o.labAddress)
	}
	if o.data == "" {
		if o.data, err = defaultDataDir(); err != nil {
			return err
		}
	}
	// Caught from now on: a signal while the labs are restored still
	// stops serve cleanly (the labs stay in the database).
	waitForStop, release := catchStopSignals()
	defer release()
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return usageErrorf("--listen %s: %v", o.listen, err)
	}
	defer ln.Close()
	srv, err := serve.New(serve.Options{
		DataDir:          o.data,
		MaxLabs:          o.maxLabs,
		LabAddress:       o.labAddress,
		AllowNonLoopback: o.expose,
		Advertise:        o.advertise,
		Logger:           logger,
	})
	if err != nil {
		return usageErrorf("--data %s: %v", o.data, err)
	}
	defer srv.Close()
	fmt.Fprintf(stderr, "maillab serve: data in %s (labs are restored from it)\n", o.data)
	hs := &http.Server{
		Handler:           srv.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	addr := ln.Addr().(*net.TCPAddr)
	shown := addr.String()
	if addr.IP.IsUnspecified() {
		shown = net.JoinHostPort("127.0.0.1", fmt.Sprint(addr.Port))
	}
	fmt.Fprintf(stdout, "maillab serve: %d labs running; open http://%s/?token=%s\n", srv.Labs(), shown, srv.Token())
	fmt.Fprintf(stdout, "API: http://%s/api/v1 with \"Authorization: Bearer %s\" (also in %s)\n", shown, srv.Token(), filepath.Join(o.data, "token"))
	waitCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("http server", "err", err)
		}
		cancel()
	}()
	waitForStop(waitCtx)
	fmt.Fprintln(stderr, "maillab serve: stopping (labs stay in the database)")
	shutCtx, stop := context.WithTimeout(context.Background(), 3*time.Second)
	defer stop()
	// Labs and event streams first, so open SSE responses end.
	srv.Close()
	if err := hs.Shutdown(shutCtx); err != nil {
		hs.Close()
	}
	return nil
}
