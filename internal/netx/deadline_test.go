package netx_test

import (
	"errors"
	"os"
	"testing"
	"time"

	"github.com/maillab/maillab/internal/netx"
)

func TestFinalTimeout(t *testing.T) {
	server, client := tcpPair(t)
	defer client.Close()
	f := netx.NewFinalTimeout(server)
	defer f.Close()
	buf := make([]byte, 16)
	f.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
	if _, err := f.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("first read: %v, want a timeout", err)
	}
	// Re-armed, with data waiting: still the timeout.
	client.Write([]byte("NOOP\r\n"))
	f.SetReadDeadline(time.Now().Add(time.Minute))
	if n, err := f.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("read after re-arming: %d, %v; want the first timeout again", n, err)
	}
}
