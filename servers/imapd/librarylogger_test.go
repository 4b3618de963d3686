package imapd

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
)

// TestLibraryLoggerLevels: go-imap's complaints about a connection the
// client dropped (what clients failing against a fault do) are debug
// lines, not level=WARN lines between the transcript's; other complaints
// stay warnings and panics errors.
func TestLibraryLoggerLevels(t *testing.T) {
	reset := &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}
	alert := &net.OpError{Op: "remote error", Err: errors.New("tls: bad certificate")}
	tests := []struct {
		name   string
		format string
		args   []any
		want   string
	}{
		{"reset by client", "failed to read command: %v", []any{reset}, "level=DEBUG"},
		{"cut mid-line", "failed to read command: %v", []any{fmt.Errorf("read literal: %w", io.ErrUnexpectedEOF)}, "level=DEBUG"},
		{"tls alert from client", "failed to read command: %v", []any{alert}, "level=DEBUG"},
		{"broken pipe", "failed to write response: %v", []any{os.NewSyscallError("write", syscall.EPIPE)}, "level=DEBUG"},
		{"protocol complaint", "failed to handle command: %v", []any{errors.New("bad state")}, "level=WARN"},
		{"panic", "panic serving %v: %v", []any{"x", "boom"}, "level=ERROR"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			c := &conn{log: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))}
			libraryLogger{c}.Printf(tt.format, tt.args...)
			if got := buf.String(); !strings.Contains(got, tt.want) {
				t.Errorf("Printf(%q) logged %q, want %s", tt.format, got, tt.want)
			}
		})
	}
}
