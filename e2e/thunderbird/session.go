//go:build e2e

package thunderbird

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

// session is one Thunderbird process on its own display with its own
// profile.
type session struct {
	dir     string // the case's directory: profile, logs, screenshot
	profile string
	tools   map[string]string
	disp    *display
	cmd     *exec.Cmd
	exited  chan struct{}
	mario   *marionette
}

// mozLogModules are the MOZ_LOG modules written to moz.log*: the IMAP and
// SMTP protocol exchanges (POP3 for POP3 accounts), with timestamps.
const mozLogModules = "IMAP:5,SMTP:5,POP3:5,timestamp"

// startSession starts Thunderbird with the profile on a display of its
// own and connects Marionette; extra are more command-line arguments
// (-compose ...).
func startSession(ctx context.Context, dir, profile string, tools map[string]string, extra ...string) (*session, error) {
	return startSessionWrapped(ctx, dir, profile, tools, nil, extra...)
}

// startSessionWrapped is startSession with Thunderbird's command line
// prefixed by wrap (a program that ends by exec'ing the rest, so the
// process is Thunderbird's own), e.g. one that gives it its own
// /etc/hosts.
func startSessionWrapped(ctx context.Context, dir, profile string, tools map[string]string, wrap []string, extra ...string) (*session, error) {
	disp, err := startDisplay(ctx, tools["Xvfb"], dir)
	if err != nil {
		return nil, err
	}
	s := &session{dir: dir, profile: profile, tools: tools, disp: disp, exited: make(chan struct{})}
	home := filepath.Join(dir, "home")
	if err := os.MkdirAll(home, 0o700); err != nil {
		disp.stop()
		return nil, err
	}
	out, err := os.Create(filepath.Join(dir, "thunderbird.out"))
	if err != nil {
		disp.stop()
		return nil, err
	}
	defer out.Close()
	// -remote-allow-system-access lets Marionette run scripts in the
	// chrome context, where the windows' prompts are.
	args := append([]string{"--profile", profile, "--no-remote", "--marionette", "-remote-allow-system-access"}, extra...)
	argv := append(append(append([]string{}, wrap...), tools["thunderbird"]), args...)
	s.cmd = exec.Command(argv[0], argv[1:]...)
	s.cmd.Env = append(os.Environ(),
		"DISPLAY="+disp.name,
		"HOME="+home,
		"XDG_CONFIG_HOME="+filepath.Join(home, ".config"),
		"XDG_CACHE_HOME="+filepath.Join(home, ".cache"),
		"MOZ_LOG="+mozLogModules,
		"MOZ_LOG_FILE="+filepath.Join(dir, "moz.log"),
		"MOZ_CRASHREPORTER_DISABLE=1",
		"NO_AT_BRIDGE=1",
	)
	s.cmd.Stdout, s.cmd.Stderr = out, out
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		disp.stop()
		return nil, fmt.Errorf("start thunderbird: %w", err)
	}
	go func() { s.cmd.Wait(); close(s.exited) }()
	if err := s.connect(ctx); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

// connect waits for Marionette's port file and the main window, then
// opens a session. (A session asked for before the main window is up
// waits for Thunderbird's idle startup tasks, which were seen to take
// minutes on a loaded machine.)
func (s *session) connect(ctx context.Context) error {
	portFile := filepath.Join(s.profile, "MarionetteActivePort")
	for {
		if port := s.marionettePort(ctx, portFile); port != "" {
			m, err := dialMarionette(ctx, "127.0.0.1:"+port)
			if err == nil {
				s.mario = m
				return nil
			}
			if ctx.Err() != nil {
				return err
			}
		}
		select {
		case <-s.exited:
			out, _ := os.ReadFile(filepath.Join(s.dir, "thunderbird.out"))
			return fmt.Errorf("thunderbird exited before Marionette listened: %s", tail(string(out), 800))
		case <-ctx.Done():
			return fmt.Errorf("thunderbird: no main window and Marionette port (%s) in time: %w", portFile, ctx.Err())
		case <-time.After(300 * time.Millisecond):
		}
	}
}

// marionettePort returns Marionette's port once the main window is shown
// and the port file written; "" before.
func (s *session) marionettePort(ctx context.Context, portFile string) string {
	if !s.mainWindowShown(ctx) {
		return ""
	}
	data, err := os.ReadFile(portFile)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(data))
}

// mainWindowShown reports whether the 3-pane window is visible: its
// title ends in "Mozilla Thunderbird" and names a folder or tab.
func (s *session) mainWindowShown(ctx context.Context) bool {
	for _, title := range s.titles(ctx) {
		if strings.HasSuffix(title, " - Mozilla Thunderbird") {
			return true
		}
	}
	return false
}

// stop ends Thunderbird (its process group: it starts content processes)
// and the display.
func (s *session) stop() {
	if s.mario != nil {
		s.mario.Close()
	}
	syscall.Kill(-s.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(5 * time.Second):
		syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.exited
	}
	s.disp.stop()
}

// windows reads every window's title, prompts, notifications and status
// line through Marionette.
func (s *session) windows(ctx context.Context) ([]window, error) {
	var ws []window
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := s.mario.execute(ctx, screenScript, &ws); err != nil {
		return nil, err
	}
	return ws, nil
}

// xdotool runs xdotool on the session's display.
func (s *session) xdotool(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.tools["xdotool"], args...)
	cmd.Env = append(os.Environ(), "DISPLAY="+s.disp.name)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// titles are the names of the visible X windows (xdotool search), sorted.
func (s *session) titles(ctx context.Context) []string {
	out, err := s.xdotool(ctx, "search", "--onlyvisible", "--name", ".", "getwindowname", "%@")
	if err != nil {
		return nil // no visible window yet: xdotool exits 1
	}
	var ts []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			ts = append(ts, l)
		}
	}
	sort.Strings(ts)
	return ts
}

// pressKeys focuses the visible window whose name starts with prefix and
// types the keys (xdotool key syntax, e.g. "ctrl+Return").
func (s *session) pressKeys(ctx context.Context, prefix string, keys ...string) error {
	out, err := s.xdotool(ctx, "search", "--onlyvisible", "--name", "^"+prefix)
	if err != nil {
		return fmt.Errorf("no window %q: %w", prefix, err)
	}
	id := strings.Fields(out)[0]
	// No window manager runs: focus the window directly.
	if out, err := s.xdotool(ctx, "windowfocus", "--sync", id); err != nil {
		return fmt.Errorf("focus %s: %w: %s", id, err, out)
	}
	if out, err := s.xdotool(ctx, append([]string{"key", "--clearmodifiers"}, keys...)...); err != nil {
		return fmt.Errorf("keys %v: %w: %s", keys, err, out)
	}
	return nil
}

// mozLog returns Thunderbird's protocol log: MOZ_LOG_FILE gets a suffix
// per process (moz.log.moz_log, moz.log.child-N.moz_log).
func (s *session) mozLog() string {
	files, _ := filepath.Glob(filepath.Join(s.dir, "moz.log*"))
	sort.Strings(files)
	var b strings.Builder
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			continue
		}
		b.Write(data)
	}
	return b.String()
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
