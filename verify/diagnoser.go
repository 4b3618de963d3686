package verify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/maillab/maillab/diagnose"
	"github.com/maillab/maillab/rootcause"
	"github.com/maillab/maillab/settings"
)

// Diagnoser is what verify checks: given a customer's settings, name a
// root cause.
type Diagnoser interface {
	// Diagnose examines the account described by s, which is also written
	// as settings JSON at path. An error means the diagnoser could not
	// give an answer (crash, hang, garbage); it counts as a failure of the
	// scenario, with the error as the reason.
	Diagnose(ctx context.Context, path string, s *settings.Settings) (*Result, error)
	// Name says which diagnoser this is, for reports.
	Name() string
}

// Result is a diagnoser's answer.
type Result struct {
	// RootCause is the code the diagnoser named.
	RootCause string
	// Summary and Evidence explain the answer, shown next to the
	// scenario's story when it is wrong.
	Summary  string
	Evidence string
}

// Bundled is maillab's own diagnoser, called in-process.
type Bundled struct {
	// Timeout bounds each connect and reply wait (diagnose.Config.Timeout);
	// 0 means the diagnoser's default.
	Timeout time.Duration
}

// Name implements Diagnoser.
func (b Bundled) Name() string { return "maillab diagnose (bundled)" }

// Diagnose implements Diagnoser.
func (b Bundled) Diagnose(ctx context.Context, _ string, s *settings.Settings) (*Result, error) {
	cfg, err := diagnose.FromSettings(s)
	if err != nil {
		return nil, err
	}
	if b.Timeout > 0 {
		cfg.ConnectTimeout, cfg.ReplyTimeout = b.Timeout, b.Timeout
	}
	rep, err := diagnose.Run(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return resultFromReport(rep), nil
}

// reportJSON is the part of the diagnose JSON verify reads; the contract
// requires only root_cause.
type reportJSON struct {
	RootCause string `json:"root_cause"`
	Summary   string `json:"summary"`
	Services  []struct {
		Service string `json:"service"`
		Steps   []struct {
			Step     string `json:"step"`
			OK       bool   `json:"ok"`
			Code     string `json:"code"`
			Evidence string `json:"evidence"`
		} `json:"steps"`
	} `json:"services"`
}

func resultFromReport(rep *diagnose.Report) *Result {
	data, err := json.Marshal(rep)
	if err != nil {
		return &Result{RootCause: string(rep.RootCause), Summary: rep.Summary}
	}
	res, _ := parseReport(data)
	return res
}

// parseReport reads diagnose JSON. Evidence lists the failing steps.
func parseReport(data []byte) (*Result, error) {
	var r reportJSON
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("output is not diagnose JSON: %v; output starts %q", err, head(data, 120))
	}
	if r.RootCause == "" {
		return nil, fmt.Errorf("output has no root_cause; output starts %q", head(data, 120))
	}
	var ev []string
	for _, svc := range r.Services {
		for _, st := range svc.Steps {
			if !st.OK {
				ev = append(ev, fmt.Sprintf("%s %s: %s %s", svc.Service, st.Step, st.Code, st.Evidence))
			}
		}
	}
	return &Result{RootCause: r.RootCause, Summary: r.Summary, Evidence: strings.Join(ev, "\n")}, nil
}

func head(b []byte, n int) string {
	s := strings.TrimSpace(string(b))
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// Command is an external diagnoser: a command run with the path of the
// customer's settings JSON as its last argument (and in MAILLAB_SETTINGS),
// which prints the diagnose JSON (at least "root_cause") on stdout. It may
// exit 0 or 1 (healthy / fault found, as maillab diagnose does); any other
// exit, a timeout, or output that is not such JSON fails the scenario.
type Command struct {
	// Line is the command, interpreted by /bin/sh (so quoting and
	// environment assignments work); the settings path is appended as
	// "$1".
	Line string
	// Timeout bounds one run; 0 means one minute.
	Timeout time.Duration
}

// Name implements Diagnoser.
func (c Command) Name() string { return c.Line }

// Diagnose implements Diagnoser.
func (c Command) Diagnose(ctx context.Context, path string, _ *settings.Settings) (*Result, error) {
	timeout := c.Timeout
	if timeout == 0 {
		timeout = time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.Command("/bin/sh", "-c", c.Line+` "$1"`, "maillab-verify", path)
	cmd.Env = append(os.Environ(), "MAILLAB_SETTINGS="+path)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &limitedBuffer{buf: &stdout, max: 4 << 20}
	cmd.Stderr = &limitedBuffer{buf: &stderr, max: 64 << 10}
	// A process group of its own, so a timeout kills the children too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %q: %w", c.Line, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, fmt.Errorf("timed out after %s (killed)", timeout)
		}
		return nil, ctx.Err()
	}
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		code := exitErr.ExitCode()
		if code != 1 {
			return nil, fmt.Errorf("exited with %s%s", exitErr, stderrTail(stderr.Bytes()))
		}
	} else if err != nil {
		return nil, err
	}
	res, perr := parseReport(stdout.Bytes())
	if perr != nil {
		return nil, fmt.Errorf("%v%s", perr, stderrTail(stderr.Bytes()))
	}
	if !rootcause.Valid(res.RootCause) {
		// Still a result: the scenario fails on the comparison, and the
		// unknown code shows in the report.
		res.Summary = strings.TrimSpace(res.Summary + " (not a code of the catalog)")
	}
	return res, nil
}

func stderrTail(b []byte) string {
	s := strings.TrimSpace(string(b))
	if s == "" {
		return ""
	}
	if len(s) > 300 {
		s = "..." + s[len(s)-300:]
	}
	return "; stderr: " + s
}

// limitedBuffer keeps at most max bytes, so a runaway diagnoser cannot
// exhaust memory.
type limitedBuffer struct {
	buf *bytes.Buffer
	max int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := l.max - l.buf.Len(); room > 0 {
		if len(p) > room {
			l.buf.Write(p[:room])
		} else {
			l.buf.Write(p)
		}
	}
	return len(p), nil
}

// Func adapts a Go function to Diagnoser, for tests in other projects.
type Func func(ctx context.Context, s *settings.Settings) (rootCause string, err error)

// Name implements Diagnoser.
func (f Func) Name() string { return "Go function" }

// Diagnose implements Diagnoser.
func (f Func) Diagnose(ctx context.Context, _ string, s *settings.Settings) (*Result, error) {
	code, err := f(ctx, s)
	if err != nil {
		return nil, err
	}
	return &Result{RootCause: code}, nil
}
