//go:build e2e

package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/maillab/maillab/settings"
)

// serveProcess is a running `maillab serve`.
type serveProcess struct {
	cmd   *exec.Cmd
	out   *lockedBuffer
	done  chan struct{}
	base  string // http://127.0.0.1:PORT
	token string
}

var consoleURL = regexp.MustCompile(`open (http://[0-9.:]+)/\?token=([0-9a-f]+)`)

// startServe runs maillab serve and waits for the console URL it prints.
func startServe(t *testing.T, bin, dataDir, listen string) *serveProcess {
	t.Helper()
	p := &serveProcess{out: &lockedBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, "serve", "--listen", listen, "--data", dataDir)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start maillab serve: %v", err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { p.stop(t) })
	deadline := time.Now().Add(30 * time.Second)
	for {
		if m := consoleURL.FindStringSubmatch(p.out.String()); m != nil {
			p.base, p.token = m[1], m[2]
			return p
		}
		select {
		case <-p.done:
			t.Fatalf("maillab serve exited:\n%s", p.out)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("maillab serve printed no URL within 30s:\n%s", p.out)
		}
	}
}

// stop sends SIGTERM and waits (SIGKILL and a failure after 15 s).
func (p *serveProcess) stop(t *testing.T) {
	t.Helper()
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
		t.Errorf("maillab serve did not stop on SIGTERM within 15s:\n%s", p.out)
	}
}

// api calls the API with curl and returns the status and body.
func (p *serveProcess) api(t *testing.T, method, path, body string) (int, string) {
	t.Helper()
	args := []string{"-sS", "--max-time", "60", "-X", method, "-H", "Authorization: Bearer " + p.token, "-w", "\n%{http_code}"}
	if body != "" {
		args = append(args, "-H", "Content-Type: application/json", "-d", body)
	}
	r := run(t, command{client: "curl", args: append(args, p.base+path)})
	if r.exit != 0 {
		t.Fatalf("%s", r)
	}
	i := strings.LastIndex(r.out, "\n")
	var code int
	fmt.Sscan(r.out[i+1:], &code)
	return code, r.out[:i]
}

// must calls the API and fails unless the status is want; out (if not
// nil) receives the JSON answer.
func (p *serveProcess) must(t *testing.T, want int, method, path, body string, out any) string {
	t.Helper()
	code, data := p.api(t, method, path, body)
	if code != want {
		t.Fatalf("curl -X %s %s = %d %s, want %d", method, path, code, data, want)
	}
	if out != nil {
		if err := json.Unmarshal([]byte(data), out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, path, err, data)
		}
	}
	return data
}

// customerSettings downloads settings.json (and checks ca.pem against
// the file it names).
func (p *serveProcess) customerSettings(t *testing.T, id string) *settings.Settings {
	t.Helper()
	data := p.must(t, 200, "GET", "/api/v1/labs/"+id+"/settings.json", "", nil)
	s, err := settings.Parse("settings.json", []byte(data))
	if err != nil {
		t.Fatalf("settings.json: %v", err)
	}
	ca := p.must(t, 200, "GET", "/api/v1/labs/"+id+"/ca.pem", "", nil)
	if file, err := os.ReadFile(s.CAFile); err != nil || strings.TrimSpace(string(file)) != strings.TrimSpace(ca) {
		t.Fatalf("ca.pem differs from the settings' CA file %s (%v)", s.CAFile, err)
	}
	return s
}

// eventStream is `curl -N .../events` running in the background.
type eventStream struct {
	cmd *exec.Cmd
	out *lockedBuffer
}

func (p *serveProcess) watch(t *testing.T, id string) *eventStream {
	t.Helper()
	e := &eventStream{out: &lockedBuffer{}}
	e.cmd = exec.Command(need(t, "curl"), "-sSN", "-H", "Authorization: Bearer "+p.token, p.base+"/api/v1/labs/"+id+"/events")
	stdout, _ := e.cmd.StdoutPipe()
	if err := e.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			fmt.Fprintln(e.out, sc.Text())
		}
		io.Copy(io.Discard, stdout)
	}()
	t.Cleanup(func() { e.cmd.Process.Kill(); e.cmd.Wait() })
	return e
}

// waitFor waits until the stream holds an event line with all of texts.
func (e *eventStream) waitFor(t *testing.T, texts ...string) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		for _, line := range strings.Split(e.out.String(), "\n") {
			ok := strings.HasPrefix(line, "data: ")
			for _, want := range texts {
				ok = ok && strings.Contains(line, want)
			}
			if ok {
				return line
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no event with %q within 20s; stream:\n%s", texts, e.out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type serveLab struct {
	ID    string         `json:"id"`
	Ports map[string]int `json:"ports"`
}

// TestServeJourney is the "Done when", with curl and swaks only:
// start serve; create expired-cert and see curl fail against the
// customer's settings as with `maillab scenario expired-cert`, watching
// the failure arrive on /events; send a message with swaks to a healthy
// lab and read it through /messages; add a wrong-password-style fault at
// runtime and see the next login fail; restart serve and find the same
// labs; delete everything.
func TestServeJourney(t *testing.T) {
	need(t, "curl")
	need(t, "swaks")
	bin := buildMaillab(t, t.TempDir())
	data := t.TempDir()
	p := startServe(t, bin, data, "127.0.0.1:0")
	if mode, err := os.Stat(filepath.Join(data, "token")); err != nil || mode.Mode().Perm() != 0o600 {
		t.Errorf("token file: %v, mode %v, want 0600", err, mode)
	}

	var expired serveLab
	p.must(t, 201, "POST", "/api/v1/labs", `{"scenario":"expired-cert"}`, &expired)
	events := p.watch(t, expired.ID)
	events.waitFor(t, `"kind":"lab"`, "lab started")
	s := p.customerSettings(t, expired.ID)
	if s.ExpectedRootCause != "TLS_CERT_EXPIRED" {
		t.Errorf("settings.json expected_root_cause = %q", s.ExpectedRootCause)
	}
	e := &scenarioEnv{t: t, c: newMailClient(t, "expired-cert", s)}
	for _, st := range scenarioSteps["expired-cert"][:2] { // the two curl steps
		t.Run("expired-cert/"+st.name, func(t *testing.T) {
			st.expect.check(t, "expired-cert over serve", st.run(&scenarioEnv{t: t, c: e.c.in(t)}))
		})
	}
	events.waitFor(t, `"service":"imaps"`, "TLS handshake failed")
	events.waitFor(t, `"service":"submission"`, "STARTTLS")

	var healthy serveLab
	p.must(t, 201, "POST", "/api/v1/labs", `{}`, &healthy)
	hs := p.customerSettings(t, healthy.ID)
	hc := newMailClient(t, "healthy", hs)
	if r := hc.swaks("submission", "--header", "Subject: sent through serve"); r.exit != 0 {
		t.Fatalf("swaks to a healthy lab failed:\n%s", r)
	}
	var boxes []struct {
		Account  string `json:"account"`
		Messages []struct {
			ID, Subject string
		} `json:"messages"`
	}
	p.must(t, 200, "GET", "/api/v1/labs/"+healthy.ID+"/messages", "", &boxes)
	mid := ""
	for _, b := range boxes {
		for _, m := range b.Messages {
			if m.Subject == "sent through serve" {
				mid = m.ID
			}
		}
	}
	if mid == "" {
		t.Fatalf("/messages lacks the swaks message: %+v", boxes)
	}
	if raw := p.must(t, 200, "GET", "/api/v1/labs/"+healthy.ID+"/messages/"+mid+"/raw", "", nil); !strings.Contains(raw, "Subject: sent through serve") {
		t.Errorf("raw message lacks the subject:\n%s", raw)
	}

	// A wrong-password-style fault at runtime: the next login fails.
	if r := hc.curl("imaps", "/"); r.exit != 0 {
		t.Fatalf("curl on the healthy lab before the fault:\n%s", r)
	}
	var change struct {
		Restarted bool `json:"restarted"`
	}
	p.must(t, 201, "POST", "/api/v1/labs/"+healthy.ID+"/faults", `{"type":"password-changed"}`, &change)
	if !change.Restarted {
		t.Errorf("adding a fault did not say restarted")
	}
	hevents := p.watch(t, healthy.ID)
	expectation{exit: 67, want: []string{curlLoginDenied}}.check(t, "healthy + password-changed", hc.curl("imaps", "/"))
	hevents.waitFor(t, `"kind":"auth"`, "login refused: invalid credentials")

	// Restart: the same labs, ports, CA and mail come back.
	p.stop(t)
	p2 := startServe(t, bin, data, strings.TrimPrefix(p.base, "http://"))
	var labs []serveLab
	p2.must(t, 200, "GET", "/api/v1/labs", "", &labs)
	if len(labs) != 2 || labs[0].ID != expired.ID || labs[1].ID != healthy.ID {
		t.Fatalf("labs after restart = %+v, want %s and %s", labs, expired.ID, healthy.ID)
	}
	for i, want := range []serveLab{expired, healthy} {
		for name, port := range want.Ports {
			if labs[i].Ports[name] != port {
				t.Errorf("lab %s: %s port %d after restart, want %d", want.ID, name, labs[i].Ports[name], port)
			}
		}
	}
	e2 := &scenarioEnv{t: t, c: newMailClient(t, "expired-cert", p2.customerSettings(t, expired.ID))}
	st := scenarioSteps["expired-cert"][0]
	st.expect.check(t, "expired-cert after restart", st.run(e2))
	if got := p2.must(t, 200, "GET", "/api/v1/labs/"+healthy.ID+"/messages", "", nil); !strings.Contains(got, "sent through serve") {
		t.Errorf("message lost across restart:\n%s", got)
	}
	expectation{exit: 67, want: []string{curlLoginDenied}}.check(t, "password-changed after restart", hc.curl("imaps", "/"))

	// Delete everything: the ports are free when DELETE returns.
	for _, l := range labs {
		p2.must(t, 204, "DELETE", "/api/v1/labs/"+l.ID, "", nil)
		for name, port := range l.Ports {
			ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", fmt.Sprint(port)))
			if err != nil {
				t.Errorf("lab %s: %s port %d still taken after DELETE: %v", l.ID, name, port, err)
				continue
			}
			ln.Close()
		}
	}
	if got := p2.must(t, 200, "GET", "/api/v1/labs", "", nil); strings.TrimSpace(got) != "[]" {
		t.Errorf("labs after deleting all = %s", got)
	}
	if entries, _ := os.ReadDir(filepath.Join(data, "labs")); len(entries) != 0 {
		t.Errorf("%d lab directories left after deleting all", len(entries))
	}
}
