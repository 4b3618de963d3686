//go:build e2e

package thunderbird

import (
	"bufio"
	"context"
	"fmt"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// display is an Xvfb server of the test's own, on a free display number
// it picked itself (-displayfd), keeping its screen in an XWD file
// (-fbdir) that screenshot reads.
type display struct {
	name  string // ":N"
	fbdir string
	cmd   *exec.Cmd
}

// startDisplay starts Xvfb with a 1280x900 24-bit screen.
func startDisplay(ctx context.Context, xvfb, dir string) (*display, error) {
	fbdir := filepath.Join(dir, "fb")
	if err := os.MkdirAll(fbdir, 0o700); err != nil {
		return nil, err
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	log, err := os.Create(filepath.Join(dir, "xvfb.log"))
	if err != nil {
		w.Close()
		return nil, err
	}
	defer log.Close()
	cmd := exec.Command(xvfb, "-displayfd", "3", "-screen", "0", "1280x900x24", "-fbdir", fbdir, "-nolisten", "tcp", "-noreset")
	cmd.ExtraFiles = []*os.File{w}
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		w.Close()
		return nil, fmt.Errorf("start Xvfb: %w", err)
	}
	w.Close()
	got := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(r).ReadString('\n')
		got <- strings.TrimSpace(line)
	}()
	select {
	case n := <-got:
		if n == "" {
			cmd.Process.Kill()
			cmd.Wait()
			data, _ := os.ReadFile(filepath.Join(dir, "xvfb.log"))
			return nil, fmt.Errorf("xvfb exited without a display number: %s", strings.TrimSpace(string(data)))
		}
		return &display{name: ":" + n, fbdir: fbdir, cmd: cmd}, nil
	case <-ctx.Done():
		cmd.Process.Kill()
		cmd.Wait()
		return nil, fmt.Errorf("xvfb gave no display number: %w", ctx.Err())
	}
}

// screenshot writes the screen as a PNG.
func (d *display) screenshot(path string) error {
	data, err := os.ReadFile(filepath.Join(d.fbdir, "Xvfb_screen0"))
	if err != nil {
		return err
	}
	img, err := decodeXWD(data)
	if err != nil {
		return fmt.Errorf("screen of %s: %w", d.name, err)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// stop ends Xvfb (its own process group) and waits for it.
func (d *display) stop() {
	syscall.Kill(-d.cmd.Process.Pid, syscall.SIGTERM)
	done := make(chan struct{})
	go func() { d.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
}
