package verify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/maillab/maillab/diagnose"
	"github.com/maillab/maillab/diagnose/discover"
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
	// Findings are the other codes the diagnoser reported: its findings
	// list and its failing steps. Optional: a diagnoser that reports none
	// still passes single-cause scenarios.
	Findings []string
	// Unverifiable maps a code the diagnoser could not check to the
	// reason: named in a finding with "unverifiable", or implied by a step
	// of the code's layer that was skipped or stopped at another failure.
	Unverifiable map[string]string
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
	// The account's set-up is judged too: the documents and records its
	// domain publishes, as mail clients' wizards read them.
	dopts, err := discover.OptionsFor(s)
	if err != nil {
		return nil, err
	}
	dopts.NoGuess = true
	rep, _, err := discover.Diagnose(ctx, cfg, dopts)
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
			Skipped  bool   `json:"skipped"`
		} `json:"steps"`
	} `json:"services"`
	// Findings is optional: the other causes found, or, with
	// "unverifiable" set to the reason, causes that could not be checked.
	Findings []struct {
		Code         string `json:"code"`
		Unverifiable string `json:"unverifiable"`
	} `json:"findings"`
}

// layerSteps are the diagnose steps that check a layer's codes: a code
// whose steps were skipped, or stopped at another failure, was not checked.
var layerSteps = map[rootcause.Layer][]string{
	rootcause.LayerResolver:         {diagnose.StepDNS},
	rootcause.LayerName:             {diagnose.StepDNS},
	rootcause.LayerHostNotForDomain: {diagnose.StepDNS},
	rootcause.LayerTCP:              {diagnose.StepTCP},
	rootcause.LayerPort:             {diagnose.StepTLS, diagnose.StepGreeting},
	rootcause.LayerTLS:              {diagnose.StepTLS, diagnose.StepStartTLS},
	rootcause.LayerStartTLS:         {diagnose.StepStartTLS, diagnose.StepCapabilities},
	rootcause.LayerAuth:             {diagnose.StepAuth},
	rootcause.LayerPolicy:           {diagnose.StepSend, diagnose.StepFetch},
	rootcause.LayerSlow:             {diagnose.StepGreeting, diagnose.StepSend, diagnose.StepFetch},
}

// unchecked returns why code was not checked, from the steps of its
// layer, or "" when every such step ran to its end.
func (r *reportJSON) unchecked(code string) string {
	steps := layerSteps[rootcause.LayerOf(rootcause.Code(code))]
	for _, svc := range r.Services {
		for _, st := range svc.Steps {
			if !slices.Contains(steps, st.Step) {
				continue
			}
			switch {
			case st.Skipped:
				return fmt.Sprintf("%s %s: %s", svc.Service, st.Step, oneLine(st.Evidence))
			case !st.OK && st.Code != "" && st.Code != code:
				return fmt.Sprintf("%s %s stopped at %s: %s", svc.Service, st.Step, st.Code, oneLine(st.Evidence))
			}
		}
	}
	return ""
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
	res := &Result{RootCause: r.RootCause, Summary: r.Summary, Unverifiable: map[string]string{}}
	var ev []string
	found := func(code string) {
		if code != "" && !slices.Contains(res.Findings, code) {
			res.Findings = append(res.Findings, code)
		}
	}
	for _, svc := range r.Services {
		for _, st := range svc.Steps {
			if !st.OK {
				ev = append(ev, fmt.Sprintf("%s %s: %s %s", svc.Service, st.Step, st.Code, st.Evidence))
				found(st.Code)
			}
		}
	}
	for _, f := range r.Findings {
		if f.Unverifiable != "" {
			res.Unverifiable[f.Code] = f.Unverifiable
			continue
		}
		found(f.Code)
	}
	for _, info := range rootcause.All {
		code := string(info.Code)
		if _, named := res.Unverifiable[code]; named || slices.Contains(res.Findings, code) {
			continue
		}
		if why := r.unchecked(code); why != "" {
			res.Unverifiable[code] = why
		}
	}
	res.Evidence = strings.Join(ev, "\n")
	return res, nil
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
