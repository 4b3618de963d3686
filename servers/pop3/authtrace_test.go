package pop3

import (
	"encoding/base64"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// traceSession runs one client session against a real server over pipes:
// the client's bytes are written in the given segments, one after the
// other, then the client closes. It returns the trace.
func traceSession(t testing.TB, mechanisms []string, segments [][]byte) []string {
	t.Helper()
	be := newTestBackend()
	be.mechanisms = mechanisms
	rec := &recorder{}
	s := &Server{
		Backend:           be,
		AllowInsecureAuth: true,
		MaxBadCommands:    50,
		ReadTimeout:       5 * time.Second,
		WriteTimeout:      5 * time.Second,
		ErrorLog:          rec,
		Trace:             rec.Trace,
	}
	serverIn, clientOut := net.Pipe()
	clientIn, serverOut := net.Pipe()
	go func() {
		for _, seg := range segments {
			if _, err := clientOut.Write(seg); err != nil {
				break
			}
		}
		clientOut.Close()
	}()
	go func() { _, _ = io.Copy(io.Discard, clientIn) }()
	done := make(chan error, 1)
	go func() { done <- s.ServeConn(pipeConn{in: serverIn, out: serverOut}) }()
	timer := time.NewTimer(10 * time.Second)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
		t.Fatalf("ServeConn did not return")
	}
	clientIn.Close()
	return rec.traceLines()
}

// TestTracePipelinedAuthRefused is the POP3 case of issue 12, defect 2: the
// client sends AUTH LOGIN and both its responses in one write; the server
// does not offer LOGIN, refuses the command and reads the responses as
// commands. They were traced unmasked.
func TestTracePipelinedAuthRefused(t *testing.T) {
	b64 := base64.StdEncoding.EncodeToString
	user, pass := b64([]byte("alice")), b64([]byte("s3cret pass"))
	got := traceSession(t, []string{"PLAIN"}, [][]byte{[]byte("AUTH LOGIN\r\n" + user + "\r\n" + pass + "\r\nNOOP x\r\nQUIT\r\n")})
	want := []string{
		"S: +OK POP3 server ready",
		"C: AUTH LOGIN", "S: -ERR Unsupported authentication mechanism.",
		"C: ****", "S: -ERR Unknown command.",
		"C: ****", "S: -ERR Unknown command.",
		"C: NOOP x",
	}
	if len(got) < len(want) || strings.Join(got[:len(want)], "\n") != strings.Join(want, "\n") {
		t.Errorf("trace:\n%s\nwant it to begin with:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// FuzzAuthTrace cuts a client's login (USER/PASS, AUTH PLAIN with and
// without initial response, AUTH LOGIN refused, AUTH XTEST) into arbitrary
// segments and checks that no trace line holds the password, its Base64
// or the Base64 of the SASL message.
func FuzzAuthTrace(f *testing.F) {
	f.Add(uint8(0), "s3cret pass", []byte{5, 9})
	f.Add(uint8(1), "s3cret pass", []byte{})
	f.Add(uint8(2), "s3cret pass", []byte{11})
	f.Add(uint8(3), "+OK pass", []byte{0, 0, 0})
	f.Add(uint8(4), "-ERR x", []byte{40})
	f.Add(uint8(5), "s3cret pass", []byte{3})
	f.Fuzz(func(t *testing.T, kind uint8, pass string, cuts []byte) {
		if strings.ContainsAny(pass, "\r\n") || len(pass) > 100 {
			t.Skip()
		}
		pass = "Zq" + pass + "qZ"
		b64 := base64.StdEncoding.EncodeToString
		blob := b64([]byte("\x00alice\x00" + pass))
		secrets := []string{pass, b64([]byte(pass)), blob, b64([]byte("token:" + pass))}
		var stream string
		switch kind % 6 {
		case 0:
			stream = "USER alice\r\nPASS " + pass + "\r\n"
		case 1:
			stream = "AUTH PLAIN " + blob + "\r\n"
		case 2:
			stream = "AUTH PLAIN\r\n" + blob + "\r\n"
		case 3:
			stream = "AUTH LOGIN\r\n" + b64([]byte("alice")) + "\r\n" + b64([]byte(pass)) + "\r\n"
		case 4:
			stream = "AUTH XTEST\r\n" + b64([]byte("token:"+pass)) + "\r\n"
		case 5:
			stream = "AUTH PLAIN\r\n*\r\nAUTH PLAIN " + blob + "\r\n"
		}
		stream = "CAPA\r\n" + stream + "STAT\r\nQUIT\r\n"
		var segments [][]byte
		for i := 0; stream != ""; i++ {
			n := len(stream)
			if i < len(cuts) {
				n = min(n, int(cuts[i])+1)
			}
			segments = append(segments, []byte(stream[:n]))
			stream = stream[n:]
		}
		for _, line := range traceSession(t, []string{"PLAIN", "XTEST"}, segments) {
			for _, s := range secrets {
				if strings.Contains(line, s) {
					t.Fatalf("trace line %q holds %q", line, s)
				}
			}
		}
	})
}
