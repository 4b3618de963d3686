package pop3

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// curlPath returns the curl binary or skips the test.
func curlPath(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("curl")
	if err != nil {
		t.Skipf("curl not installed (%v): interoperability with a real client is not checked", err)
	}
	return path
}

// runCurl runs curl with a deadline and returns its standard output.
func runCurl(t *testing.T, curl string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, curl, append([]string{"--silent", "--show-error", "--max-time", "20"}, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("curl %q: %v\n%s", args, err, stderr.String())
	}
	return string(out)
}

func TestCurl(t *testing.T) {
	curl := curlPath(t)
	p := getPKI(t)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, p.caPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	listing := fmt.Sprintf("1 %d\r\n2 %d\r\n3 %d\r\n", size1, size2, size3)
	retr1 := "From: bob@example.test\r\nSubject: one\r\n\r\nHello\r\n.dot line\r\n..two dots\r\n.\r\nend\r\n"

	tests := []struct {
		name   string
		server func(s *Server)
		be     func(be *testBackend)
		args   func(addr string) []string
		want   string
	}{
		{
			name:   "LIST over plaintext",
			server: func(s *Server) { s.AllowInsecureAuth = true },
			args:   func(addr string) []string { return []string{"pop3://" + addr + "/", "-u", "alice:s3cret pass"} },
			want:   listing,
		},
		{
			name:   "RETR over plaintext",
			server: func(s *Server) { s.AllowInsecureAuth = true },
			args:   func(addr string) []string { return []string{"pop3://" + addr + "/1", "-u", "alice:s3cret pass"} },
			want:   retr1,
		},
		{
			// No SASL mechanism offered: curl falls back to USER/PASS.
			name:   "RETR with USER/PASS",
			server: func(s *Server) { s.AllowInsecureAuth = true },
			be:     func(be *testBackend) { be.mechanisms = []string{} },
			args:   func(addr string) []string { return []string{"pop3://" + addr + "/2", "-u", "alice:s3cret pass"} },
			want:   "Subject: two\r\n\r\nline1\r\nline2\r\nline3\r\n",
		},
		{
			name:   "LIST over STLS",
			server: func(s *Server) { s.TLSConfig = p.serverConfig() },
			args: func(addr string) []string {
				return []string{"--ssl-reqd", "--cacert", caFile, "pop3://" + addr + "/", "-u", "alice:s3cret pass"}
			},
			want: listing,
		},
		{
			name:   "RETR over STLS",
			server: func(s *Server) { s.TLSConfig = p.serverConfig() },
			args: func(addr string) []string {
				return []string{"--ssl-reqd", "--cacert", caFile, "pop3://" + addr + "/1", "-u", "alice:s3cret pass"}
			},
			want: retr1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			be := newTestBackend()
			if tt.be != nil {
				tt.be(be)
			}
			rec := &recorder{}
			s := newTestServer(be, rec)
			tt.server(s)
			addr := serve(t, s, nil)
			got := runCurl(t, curl, tt.args(addr)...)
			if testing.Verbose() {
				t.Logf("transcript:\n%s", strings.Join(rec.traceLines(), "\n"))
			}
			if got != tt.want {
				t.Errorf("curl output = %q, want %q\ntranscript:\n%s", got, tt.want, strings.Join(rec.traceLines(), "\n"))
			}
		})
	}
}
