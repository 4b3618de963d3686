package maillab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/containerd/errdefs"
	"github.com/testcontainers/testcontainers-go/wait"

	"github.com/maillab/maillab/settings"
)

// StartError reports a lab that stopped before it was ready: a bad
// scenario name, a port it could not bind, a scenario that cannot run in a
// container. Output is the end of what the lab printed, which names the
// cause.
type StartError struct {
	// ExitCode is the lab's exit status (2: a usage error).
	ExitCode int
	// Output is the last lines of the container's stdout and stderr.
	Output string
}

func (e *StartError) Error() string {
	return fmt.Sprintf("maillab container exited with code %d before it was ready: %s", e.ExitCode, e.Output)
}

// readiness waits until the lab has written its settings file, which the
// lab does after every server and the DNS serve (settings.Write replaces
// the file atomically, so a file that exists is complete). A container
// that exits instead fails at once with a *StartError.
type readiness struct {
	path    string
	timeout time.Duration
	poll    time.Duration
}

// WaitUntilReady polls the container's state and the settings file.
func (r *readiness) WaitUntilReady(ctx context.Context, target wait.StrategyTarget) error {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	tick := time.NewTicker(r.poll)
	defer tick.Stop()
	for {
		state, err := target.State(ctx)
		if err != nil {
			return fmt.Errorf("container state: %w", err)
		}
		if !state.Running {
			return &StartError{ExitCode: state.ExitCode, Output: logTail(ctx, target)}
		}
		done, err := r.settingsWritten(ctx, target)
		if err != nil || done {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("maillab not ready within %s (no %s yet): %w", r.timeout, r.path, ctx.Err())
		case <-tick.C:
		}
	}
}

// settingsWritten reports whether the settings file exists and is valid.
func (r *readiness) settingsWritten(ctx context.Context, target wait.StrategyTarget) (bool, error) {
	rc, err := target.CopyFileFromContainer(ctx, r.path)
	if errdefs.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read %s: %w", r.path, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		return false, fmt.Errorf("read %s: %w", r.path, err)
	}
	if _, err := settings.Parse(r.path, data); err != nil {
		return false, err
	}
	return true, nil
}

// Timeout returns the startup timeout, for wait.ForAll.
func (r *readiness) Timeout() *time.Duration { return &r.timeout }

// String describes the strategy in testcontainers' logs.
func (r *readiness) String() string { return fmt.Sprintf("maillab settings in %s", r.path) }

// logTail returns the last lines the container printed, best effort.
func logTail(ctx context.Context, target wait.StrategyTarget) string {
	const keep = 2048
	rc, err := target.Logs(ctx)
	if err != nil {
		return fmt.Sprintf("(no logs: %v)", err)
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, 1<<20))
	if err != nil && !errors.Is(err, io.EOF) && len(data) == 0 {
		return fmt.Sprintf("(no logs: %v)", err)
	}
	data = bytes.TrimSpace(data)
	if len(data) > keep {
		data = data[len(data)-keep:]
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			data = data[i+1:]
		}
	}
	return string(data)
}

var (
	_ wait.Strategy        = (*readiness)(nil)
	_ wait.StrategyTimeout = (*readiness)(nil)
	_ error                = (*StartError)(nil)
)
