package serve

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/maillab/maillab/servers/transcript"
)

func TestErrors(t *testing.T) {
	ts := newTestServer(t, Options{MaxLabs: 1, MaxBody: 4096})
	l := ts.create(map[string]any{})
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	takenPort := taken.Addr().(*net.TCPAddr).Port
	tests := []struct {
		name, method, path string
		body               any
		code               int
		field, text        string
	}{
		{"unknown scenario", "POST", "/api/v1/labs", `{"scenario":"expird-cert"}`, 400, "scenario", "did you mean expired-cert"},
		{"unknown field", "POST", "/api/v1/labs", `{"scenari":"x"}`, 400, "scenari", "unknown field"},
		{"wrong type", "POST", "/api/v1/labs", `{"scenario":5}`, 400, "scenario", "want string"},
		{"not JSON", "POST", "/api/v1/labs", `{"scenario":`, 400, "", "JSON"},
		{"trailing data", "POST", "/api/v1/labs", `{} {}`, 400, "", "trailing"},
		{"both scenario forms", "POST", "/api/v1/labs", `{"scenario":"expired-cert","scenario_yaml":"x"}`, 400, "scenario_yaml", "not both"},
		{"custom scenario error has field and line", "POST", "/api/v1/labs", map[string]string{"scenario_yaml": "name: x\ntitle: t\nroot_cause: NOPE\nstory: s\nfix: f\n"}, 400, "scenario_yaml.root_cause", "scenario_yaml:3:"},
		{"bad fault in custom scenario", "POST", "/api/v1/labs", map[string]string{"scenario_yaml": "name: x\ntitle: t\nroot_cause: HEALTHY\nstory: s\nfix: f\nfaults:\n  - type: nope\n"}, 400, "scenario_yaml.faults[0].type", "valid:"},
		{"body too large", "POST", "/api/v1/labs", `{"scenario_yaml":"` + strings.Repeat("x", 5000) + `"}`, 413, "", "over 4096 bytes"},
		{"over max labs", "POST", "/api/v1/labs", `{}`, 429, "", "limit"},
		{"unknown lab", "GET", "/api/v1/labs/nope", nil, 404, "id", "no lab"},
		{"unknown lab delete", "DELETE", "/api/v1/labs/nope", nil, 404, "id", "no lab"},
		{"unknown fault type", "POST", "/api/v1/labs/" + l.ID + "/faults", `{"type":"wrong-pasword"}`, 400, "type", "valid:"},
		{"missing fault type", "POST", "/api/v1/labs/" + l.ID + "/faults", `{}`, 400, "type", "missing type"},
		{"bad knob", "POST", "/api/v1/labs/" + l.ID + "/faults", `{"type":"expired-certificate","services":["dns"]}`, 400, "services", "valid:"},
		{"per-connection knob on a whole-service fault", "POST", "/api/v1/labs/" + l.ID + "/faults", `{"type":"expired-certificate","one_in":2}`, 400, "after_connections", "per connection"},
		{"unknown parameter", "POST", "/api/v1/labs/" + l.ID + "/faults", `{"type":"lockout","params":{"treshold":2}}`, 400, "treshold", ""},
		{"id set by client", "POST", "/api/v1/labs/" + l.ID + "/faults", `{"id":"f9","type":"lockout"}`, 400, "id", "set by the server"},
		{"unknown fault id", "DELETE", "/api/v1/labs/" + l.ID + "/faults/f99", nil, 404, "fid", "no fault"},
		{"unknown message", "GET", "/api/v1/labs/" + l.ID + "/messages/bm9wZQ", nil, 404, "mid", "no message"},
		{"bad since", "GET", "/api/v1/labs/" + l.ID + "/transcript?since=x", nil, 400, "since", "not an event number"},
		{"unknown endpoint", "GET", "/api/v1/nothing", nil, 404, "", "no endpoint"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, data := ts.do(tt.method, tt.path, tt.body)
			var e apiError
			if err := json.Unmarshal(data, &e); err != nil {
				t.Fatalf("%s %s: not a JSON error: %s", tt.method, tt.path, data)
			}
			if code != tt.code || e.Field != tt.field || !strings.Contains(e.Msg, tt.text) {
				t.Errorf("%s %s = %d field %q %q, want %d field %q containing %q", tt.method, tt.path, code, e.Field, e.Msg, tt.code, tt.field, tt.text)
			}
		})
	}
	t.Run("port taken", func(t *testing.T) {
		ts2 := newTestServer(t, Options{})
		code, data := ts2.do("POST", "/api/v1/labs", map[string]any{"ports": map[string]int{"submission": takenPort}})
		var e apiError
		json.Unmarshal(data, &e)
		if code != http.StatusConflict || e.Field != "ports" {
			t.Errorf("POST with a taken port = %d %s, want 409 field ports", code, data)
		}
		entries, _ := os.ReadDir(filepath.Join(ts2.dir, "labs"))
		if len(entries) != 0 {
			t.Errorf("a lab that failed to start left %d directories", len(entries))
		}
	})
}

// sseReader reads events from an SSE stream.
type sseReader struct {
	resp *http.Response
	sc   *bufio.Scanner
}

func (ts *testServer) subscribe(id string, since uint64) *sseReader {
	ts.t.Helper()
	req, _ := http.NewRequest("GET", fmt.Sprintf("%s/api/v1/labs/%s/events?since=%d", ts.http.URL, id, since), nil)
	req.Header.Set("Authorization", "Bearer "+ts.srv.Token())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		ts.t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		ts.t.Fatalf("events = %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	ts.t.Cleanup(func() { resp.Body.Close() })
	return &sseReader{resp: resp, sc: bufio.NewScanner(resp.Body)}
}

// next returns the next event's kind and data.
func (r *sseReader) next() (kind string, ev Event, err error) {
	for r.sc.Scan() {
		line := r.sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			kind = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &ev)
		case line == "" && kind != "":
			return kind, ev, nil
		}
	}
	return "", ev, errors.Join(r.sc.Err(), errors.New("stream ended"))
}

// waitFor reads until an event matches, failing after a deadline.
func (r *sseReader) waitFor(t *testing.T, what string, match func(kind string, ev Event) bool) Event {
	t.Helper()
	timer := time.AfterFunc(20*time.Second, func() { r.resp.Body.Close() })
	defer timer.Stop()
	for {
		kind, ev, err := r.next()
		if err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		if match(kind, ev) {
			return ev
		}
	}
}

func TestEventsAndRuntimeFault(t *testing.T) {
	ts := newTestServer(t, Options{})
	l := ts.create(map[string]any{})
	events := ts.subscribe(l.ID, 0)
	events.waitFor(t, "lab started", func(k string, ev Event) bool { return k == EventLab })
	pool, caPEM := ts.caPool(l.ID)
	if err := submit(t, l.Settings, pool, "bob@example.test", "before the fault"); err != nil {
		t.Fatalf("healthy lab: submission failed: %v", err)
	}
	events.waitFor(t, "AUTH line", func(k string, ev Event) bool {
		return k == EventTranscript && ev.Service == "submission" && ev.Dir == "C" && strings.HasPrefix(ev.Text, "AUTH PLAIN")
	})
	events.waitFor(t, "delivery", func(k string, ev Event) bool {
		return k == EventDelivery && strings.Contains(ev.Text, "bob@example.test")
	})

	var change faultChange
	ts.must(http.StatusCreated, "POST", "/api/v1/labs/"+l.ID+"/faults", map[string]any{"type": "password-changed"}, &change)
	if !change.Restarted || change.Fault == nil || change.Fault.ID != "f1" || change.PortsChanged || len(change.Services) != len(l.Ports) {
		t.Fatalf("add fault = %+v, want f1, restarted, same ports", change)
	}
	events.waitFor(t, "restart", func(k string, ev Event) bool { return k == EventLab && strings.Contains(ev.Text, "restarted") })
	var after labResp
	ts.must(http.StatusOK, "GET", "/api/v1/labs/"+l.ID, nil, &after)
	for name, port := range l.Ports {
		if after.Ports[name] != port {
			t.Errorf("%s port %d after the fault, want %d", name, after.Ports[name], port)
		}
	}
	if _, again := ts.caPool(l.ID); string(again) != string(caPEM) {
		t.Errorf("CA changed when the lab restarted")
	}
	err := submit(t, l.Settings, pool, "bob@example.test", "after the fault")
	var se *smtp.SMTPError
	if !errors.As(err, &se) || se.Code != 535 {
		t.Fatalf("login after password-changed = %v, want 535", err)
	}
	events.waitFor(t, "refused login", func(k string, ev Event) bool {
		return k == EventAuth && ev.Service == "submission" && strings.HasPrefix(ev.Text, "login refused: invalid credentials")
	})
	ts.must(http.StatusOK, "DELETE", "/api/v1/labs/"+l.ID+"/faults/f1", nil, &change)
	if len(change.Faults) != 0 || !change.Restarted {
		t.Errorf("remove fault = %+v", change)
	}
	if err := submit(t, l.Settings, pool, "bob@example.test", "fault removed"); err != nil {
		t.Fatalf("after removing the fault: %v", err)
	}

	// Messages survive the restarts (Maildir in the lab directory).
	var boxes []accountMessages
	ts.must(http.StatusOK, "GET", "/api/v1/labs/"+l.ID+"/messages", nil, &boxes)
	var subjects []string
	var first messageSummary
	for _, b := range boxes {
		for _, m := range b.Messages {
			subjects = append(subjects, m.Subject)
			if m.Subject == "before the fault" {
				first = m
			}
		}
	}
	if strings.Join(subjects, "|") != "before the fault|fault removed" {
		t.Fatalf("messages = %q, want the two accepted ones", subjects)
	}
	var view messageView
	ts.must(http.StatusOK, "GET", "/api/v1/labs/"+l.ID+"/messages/"+first.ID, nil, &view)
	if len(view.Text) != 1 || !strings.Contains(view.Text[0], "hello from the test") ||
		len(view.HTML) != 1 || !strings.Contains(view.HTML[0], "<script>") ||
		len(view.Attachments) != 1 || view.Attachments[0].Filename != "invoice.pdf" || view.Attachments[0].Size != 9 {
		t.Errorf("message view = %+v", view)
	}
	raw := ts.must(http.StatusOK, "GET", "/api/v1/labs/"+l.ID+"/messages/"+first.ID+"/raw", nil, nil)
	if !strings.Contains(string(raw), "Subject: before the fault") {
		t.Errorf("raw message lacks its subject:\n%s", raw)
	}
	ts.must(http.StatusNoContent, "DELETE", "/api/v1/labs/"+l.ID+"/messages/"+first.ID, nil, nil)
	var cleared map[string]int
	ts.must(http.StatusOK, "DELETE", "/api/v1/labs/"+l.ID+"/messages", nil, &cleared)
	if cleared["removed"] != 1 {
		t.Errorf("clear removed %d, want 1", cleared["removed"])
	}

	// Deleting the lab ends the stream.
	ts.must(http.StatusNoContent, "DELETE", "/api/v1/labs/"+l.ID, nil, nil)
	events.waitFor(t, "closed", func(k string, ev Event) bool { return k == "closed" })
}

// TestSlowSubscriberNeverBlocks: a subscriber that never reads loses
// events (counted); publishing never waits for it.
func TestSlowSubscriberNeverBlocks(t *testing.T) {
	var dropped atomic.Uint64
	h := newHub(100, &dropped, nil)
	_, sub, cancel := h.subscribe(0, 4)
	defer cancel()
	done := make(chan struct{})
	go func() {
		for i := 0; i < 1000; i++ {
			h.Record(transcript.Entry{Service: "smtp", Dir: transcript.Client, Text: fmt.Sprint(i)})
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Record blocked on a subscriber that does not read")
	}
	if got := sub.dropped.Load(); got != 996 || dropped.Load() != 996 {
		t.Errorf("dropped %d (total %d), want 996", got, dropped.Load())
	}
	if got := h.since(0, 1000); len(got) != 100 || got[0].Seq != 901 {
		t.Errorf("kept %d events from %d, want the last 100", len(got), got[0].Seq)
	}
	h.close()
	for range sub.ch {
	}
}

func TestRestartKeepsLabs(t *testing.T) {
	dir := t.TempDir()
	ts := newTestServer(t, Options{DataDir: dir})
	healthy := ts.create(map[string]any{})
	custom := ts.create(map[string]string{"scenario_yaml": "name: my-case\ntitle: t\nroot_cause: AUTH_FAILED\nstory: s\nfix: f\nfaults:\n  - type: password-changed\n"})
	pool, caPEM := ts.caPool(healthy.ID)
	if err := submit(t, healthy.Settings, pool, "bob@example.test", "kept"); err != nil {
		t.Fatal(err)
	}
	ts.must(http.StatusCreated, "POST", "/api/v1/labs/"+healthy.ID+"/faults", map[string]any{"type": "lockout", "params": map[string]any{"threshold": 2, "window": "1m"}}, nil)
	token := ts.srv.Token()
	ts.close()

	ts2 := newTestServer(t, Options{DataDir: dir})
	if ts2.srv.Token() != token {
		t.Errorf("token changed across restart")
	}
	var list []labResp
	ts2.must(http.StatusOK, "GET", "/api/v1/labs", nil, &list)
	if len(list) != 2 || list[0].ID != healthy.ID || list[1].ID != custom.ID {
		t.Fatalf("labs after restart = %+v, want %s and %s", list, healthy.ID, custom.ID)
	}
	for name, port := range healthy.Ports {
		if list[0].Ports[name] != port {
			t.Errorf("%s port %d after restart, want %d", name, list[0].Ports[name], port)
		}
	}
	if len(list[0].Faults) != 1 || list[0].Faults[0].Type != "lockout" || list[0].Faults[0].Params["window"] != "1m" {
		t.Errorf("faults after restart = %+v, want the lockout added at runtime", list[0].Faults)
	}
	if list[1].Scenario != "my-case" || list[1].ExpectedRootCause != "AUTH_FAILED" || list[1].Settings.Accounts[0].Password != custom.Settings.Accounts[0].Password {
		t.Errorf("custom lab after restart = %+v", list[1])
	}
	if _, again := ts2.caPool(healthy.ID); string(again) != string(caPEM) {
		t.Errorf("CA changed across restart")
	}
	if list[0].Settings.Accounts[0].Password != healthy.Settings.Accounts[0].Password {
		t.Errorf("password changed across restart")
	}
	var boxes []accountMessages
	ts2.must(http.StatusOK, "GET", "/api/v1/labs/"+healthy.ID+"/messages", nil, &boxes)
	if len(boxes) != 2 || len(boxes[1].Messages) != 1 || boxes[1].Messages[0].Subject != "kept" {
		t.Errorf("messages after restart = %+v", boxes)
	}
	// The handed-out settings still work.
	if err := submit(t, healthy.Settings, pool, "bob@example.test", "after restart"); err != nil {
		t.Errorf("handed-out settings after restart: %v", err)
	}
}

func TestDiagnose(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the diagnoser against two labs")
	}
	ts := newTestServer(t, Options{})
	for _, tt := range []struct{ scenario, want string }{
		{"expired-cert", "TLS_CERT_EXPIRED"},
		{"", "HEALTHY"},
	} {
		t.Run(tt.want, func(t *testing.T) {
			body := map[string]any{}
			if tt.scenario != "" {
				body["scenario"] = tt.scenario
			}
			l := ts.create(body)
			var rep struct {
				RootCause string `json:"root_cause"`
			}
			ts.must(http.StatusOK, "POST", "/api/v1/labs/"+l.ID+"/diagnose", map[string]string{"timeout": "3s"}, &rep)
			if rep.RootCause != tt.want {
				t.Errorf("diagnose %s = %s, want %s", tt.scenario, rep.RootCause, tt.want)
			}
		})
	}
}

// TestSecondProviderScenariosRunTogether: scenarios that add a provider on
// another loopback address run several times at once (each lab's ports
// differ, and the second provider binds the primary's ports).
func TestSecondProviderScenariosRunTogether(t *testing.T) {
	ts := newTestServer(t, Options{})
	for i := 0; i < 3; i++ {
		for _, name := range []string{"dns-poisoned", "imap-generic-host"} {
			l := ts.create(map[string]string{"scenario": name})
			pool, _ := ts.caPool(l.ID)
			svc := l.Lab.Services["imaps"]
			d := tls.Dialer{Config: &tls.Config{RootCAs: pool, ServerName: "mail.example.test"}}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			c, err := d.DialContext(ctx, "tcp", net.JoinHostPort("127.0.0.1", fmt.Sprint(svc.Port)))
			cancel()
			if err != nil {
				t.Fatalf("%s #%d: primary provider: %v", name, i, err)
			}
			c.Close()
		}
	}
}

func TestHealthAndMetrics(t *testing.T) {
	ts := newTestServer(t, Options{})
	l := ts.create(map[string]any{})
	pool, _ := ts.caPool(l.ID)
	if err := submit(t, l.Settings, pool, "bob@example.test", "counted"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(ts.http.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/healthz = %d without a token, want 200", resp.StatusCode)
	}
	if resp, err := http.Get(ts.http.URL + "/metrics"); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("/metrics without a token = %v %v, want 401", resp, err)
	} else {
		resp.Body.Close()
	}
	req, _ := http.NewRequest("GET", ts.http.URL+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+ts.srv.Token())
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		"maillab_labs_running 1",
		`maillab_sessions_total{service="submission"} 1`,
		"maillab_messages_stored_total 1",
		`maillab_api_request_duration_seconds_count{code="Created",route="POST /api/v1/labs"} 1`,
		"maillab_events_dropped_total 0",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}
