package console

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
)

const testToken = "test-token-0123456789"

// fakeAPI answers the serve API's endpoints with canned JSON shaped as
// serve/openapi.json and the console contract describe, and records the
// calls. It checks the token on admin paths exactly as serve does, and
// that trainee paths arrive without it.
type fakeAPI struct {
	t   *testing.T
	mu  sync.Mutex
	got []string // "METHOD path body"

	message map[string]any // the message GET .../messages/m1 returns
	answer  map[string]any // the trainee answer, once posted
	hints   int
}

func newFakeAPI(t *testing.T) *fakeAPI {
	return &fakeAPI{t: t, message: map[string]any{
		"id": "m1", "account": "alice@example.test", "mailbox": "INBOX", "uid": 1,
		"from": "bob@example.test", "to": "alice@example.test", "subject": "Hello", "date": "2026-12-05T06:00:00Z", "size": 1234,
		"headers":     []map[string]string{{"name": "Subject", "value": "Hello"}},
		"text":        []string{"plain body"},
		"html":        []string{"<p>html body</p>"},
		"attachments": []map[string]any{{"filename": "report.pdf", "content_type": "application/pdf", "size": 2048}},
	}}
}

func (f *fakeAPI) calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.got...)
}

var (
	fakeSettings = map[string]any{
		"domain": "example.test", "resolver": "127.0.0.1:5353",
		"accounts": []map[string]string{{"email": "alice@example.test", "username": "alice@example.test", "password": "s3cret-pw"}},
		"services": map[string]any{
			"submission": map[string]any{"host": "mail.example.test", "port": 2587, "security": "starttls"},
			"imaps":      map[string]any{"host": "mail.example.test", "port": 2993, "security": "tls"},
		},
	}
	fakeLab = map[string]any{
		"id": "lab1", "scenario": "expired-cert", "expected_root_cause": "TLS_CERT_EXPIRED", "created": "2026-12-05T06:00:00Z",
		"running": true, "ports": map[string]int{"smtp": 2525, "submission": 2587, "imaps": 2993, "dns": 5353},
		"faults":   []map[string]any{{"id": "f1", "type": "expired-certificate", "origin": "scenario"}},
		"settings": fakeSettings, "lab": fakeSettings,
	}
	fakeTicket = map[string]any{
		"id": "tk1", "scenario": "expired-cert", "title": "The certificate has expired", "lab_id": "lab1", "status": "connected",
		"opened_at": "2026-12-05T06:01:00Z", "connected_at": "2026-12-05T06:02:00Z", "answered_at": nil, "seconds": nil,
		"hints_used": 1, "answer": nil, "right": nil, "expected_root_cause": "TLS_CERT_EXPIRED", "score": nil,
	}
	fakeTicket2 = map[string]any{
		"id": "tk2", "scenario": "wrong-password", "title": "Wrong password", "lab_id": "lab2", "status": "answered",
		"opened_at": "2026-12-05T06:01:00Z", "connected_at": nil, "answered_at": "2026-12-05T06:05:00Z", "seconds": 240.0,
		"hints_used": 0, "answer": map[string]string{"code": "AUTH_FAILED", "fix": "retype it"}, "right": true, "expected_root_cause": "AUTH_FAILED", "score": 100,
	}
	fakeClass = map[string]any{
		"id": "c1", "name": "Monday group", "created": "2026-12-05T06:00:00Z", "scenarios": []string{"expired-cert", "wrong-password"},
		"trainees": []map[string]any{{"id": "tr1", "name": "Ann", "key": "ann-key", "link": "/t/ann-key", "tickets": []any{fakeTicket, fakeTicket2}}},
	}
)

const fakeScenarioStory = "Since this morning Outlook warns about the certificate."

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.got = append(f.got, strings.TrimSpace(r.Method+" "+r.URL.RequestURI()+" "+string(body)))
	f.mu.Unlock()
	p := r.URL.Path
	trainee := strings.HasPrefix(p, "/api/v1/trainee/")
	bearer := r.Header.Get("Authorization") == "Bearer "+testToken
	if trainee && r.Header.Get("Authorization") != "" {
		f.t.Errorf("%s %s: a trainee API call carries a token", r.Method, p)
	}
	if !trainee && !bearer {
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"error":"missing or wrong token"}`)
		return
	}
	reply := func(status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(v)
	}
	notFound := func() { reply(http.StatusNotFound, map[string]string{"error": "not found"}) }
	route := r.Method + " " + p
	switch {
	case route == "GET /api/v1/scenarios":
		reply(200, []map[string]string{
			{"name": "expired-cert", "title": "Expired certificate", "section": "4", "root_cause": "TLS_CERT_EXPIRED", "story": fakeScenarioStory, "fix": "renew"},
			{"name": "wrong-password", "title": "Wrong password", "section": "3,9", "root_cause": "AUTH_FAILED", "story": "The password was changed.", "fix": "retype"},
			{"name": "healthy", "title": "Healthy", "section": "–", "root_cause": "HEALTHY", "story": "works", "fix": ""},
			{"name": "mailbox-full", "title": "Mailbox full", "section": "–", "root_cause": "MAILBOX_FULL", "story": "full", "fix": "clean"},
		})
	case route == "GET /api/v1/scenarios/expired-cert":
		reply(200, map[string]string{"name": "expired-cert", "title": "Expired certificate", "section": "4", "root_cause": "TLS_CERT_EXPIRED", "story": fakeScenarioStory, "fix": "renew"})
	case route == "GET /api/v1/faults":
		reply(200, []map[string]any{{"name": "expired-certificate", "summary": "serve an expired certificate", "layer": "tls", "knobs": []string{"services"}}})
	case route == "POST /api/v1/labs":
		var req map[string]any
		json.Unmarshal(body, &req)
		if req["scenario"] == "nope" {
			reply(400, map[string]string{"error": "unknown scenario \"nope\"", "field": "scenario"})
			return
		}
		reply(201, fakeLab)
	case route == "GET /api/v1/labs":
		reply(200, []any{fakeLab})
	case route == "GET /api/v1/labs/lab1":
		reply(200, fakeLab)
	case route == "DELETE /api/v1/labs/lab1":
		w.WriteHeader(http.StatusNoContent)
	case route == "GET /api/v1/labs/lab1/transcript":
		w.Header().Set("Content-Type", "application/x-ndjson")
		io.WriteString(w, `{"seq":1,"time":"2026-12-05T06:00:00Z","kind":"lab","text":"lab started"}
{"seq":2,"time":"2026-12-05T06:00:01Z","kind":"transcript","service":"submission","session":1,"dir":"C","text":"EHLO <client>"}
{"seq":3,"time":"2026-12-05T06:00:01Z","kind":"fault","service":"submission","session":1,"dir":"*","text":"fault strip-starttls: STARTTLS stripped from the EHLO reply"}
{"seq":4,"time":"2026-12-05T06:00:02Z","kind":"auth","service":"imaps","session":2,"dir":"*","text":"login refused: account locked"}
`)
	case route == "POST /api/v1/labs/lab1/faults":
		var req map[string]any
		json.Unmarshal(body, &req)
		if req["type"] != "expired-certificate" {
			reply(400, map[string]string{"error": "unknown fault", "field": "type"})
			return
		}
		reply(201, map[string]any{"fault": map[string]any{"id": "f2", "type": "expired-certificate", "origin": "api"}, "faults": []any{}, "restarted": true, "services": []string{"submission"}, "ports_changed": false})
	case route == "DELETE /api/v1/labs/lab1/faults/f1":
		reply(200, map[string]any{"faults": []any{}, "restarted": true, "services": []string{"submission", "imaps"}, "ports_changed": false})
	case route == "POST /api/v1/labs/lab1/diagnose":
		reply(200, map[string]any{"root_cause": "TLS_CERT_EXPIRED", "summary": "the certificate expired 3 days ago", "fix": "Renew the certificate.",
			"services": []any{map[string]any{"service": "submission", "host": "mail.example.test", "port": 2587, "security": "starttls", "ok": false,
				"steps": []any{map[string]any{"step": "starttls", "ok": false, "code": "TLS_CERT_EXPIRED", "evidence": "certificate expired at 2026-12-02"}}}}})
	case route == "GET /api/v1/labs/lab1/messages":
		reply(200, []any{map[string]any{"account": "alice@example.test", "messages": []any{f.message}}})
	case route == "DELETE /api/v1/labs/lab1/messages":
		w.WriteHeader(http.StatusNoContent)
	case route == "GET /api/v1/labs/lab1/messages/m1":
		reply(200, f.message)
	case strings.HasPrefix(p, "/api/v1/labs/"):
		notFound()
	case route == "GET /api/v1/root-causes":
		reply(200, []map[string]string{
			{"code": "TLS_CERT_EXPIRED", "title": "The certificate has expired", "layer": "tls", "layer_title": "Secure connection (TLS)", "meaning": "m"},
			{"code": "TLS_UNTRUSTED", "title": "The certificate is not trusted", "layer": "tls", "layer_title": "Secure connection (TLS)", "meaning": "m"},
			{"code": "AUTH_FAILED", "title": "The user name or password is wrong", "layer": "auth", "layer_title": "Signing in", "meaning": "m"},
			{"code": "TLS_HOSTNAME_MISMATCH", "title": "The certificate names another server", "layer": "tls", "layer_title": "Secure connection (TLS)", "meaning": "m"},
		})
	case route == "GET /api/v1/classes":
		reply(200, []any{fakeClass})
	case route == "POST /api/v1/classes":
		var req map[string]any
		json.Unmarshal(body, &req)
		if list, _ := req["scenarios"].([]any); len(list) == 0 {
			reply(400, map[string]string{"error": "scenarios: choose at least one scenario", "field": "scenarios"})
			return
		}
		if req["name"] == "" {
			reply(400, map[string]string{"error": "name: empty", "field": "name"})
			return
		}
		reply(201, fakeClass)
	case route == "GET /api/v1/classes/c1":
		reply(200, fakeClass)
	case route == "DELETE /api/v1/classes/c1":
		w.WriteHeader(http.StatusNoContent)
	case route == "GET /api/v1/classes/c1/debrief":
		reply(200, []any{map[string]any{"scenario": "expired-cert", "title": "Expired certificate", "story": fakeScenarioStory, "cause": "the certificate expired",
			"symptoms": "Thunderbird shows a certificate warning", "fix": "renew", "expected_root_cause": "TLS_CERT_EXPIRED",
			"answers": []any{map[string]any{"trainee": "Ann", "code": "TLS_UNTRUSTED", "right": false, "fix": "import the CA", "seconds": 100.0, "hints_used": 1}}}})
	case strings.HasPrefix(p, "/api/v1/classes/"):
		notFound()
	case trainee:
		f.trainee(w, r, strings.TrimPrefix(p, "/api/v1/trainee/"), body, reply, notFound)
	default:
		notFound()
	}
}

func (f *fakeAPI) trainee(w http.ResponseWriter, r *http.Request, rest string, body []byte, reply func(int, any), notFound func()) {
	parts := strings.Split(rest, "/")
	if parts[0] != "ann-key" {
		notFound()
		return
	}
	if len(parts) == 1 && r.Method == http.MethodGet {
		reply(200, map[string]any{"name": "Ann", "class": "Monday group", "tickets": []any{map[string]any{"id": "tk1", "title": "Ticket one", "status": "connected", "answered": false}}})
		return
	}
	if len(parts) < 3 || parts[1] != "tickets" || parts[2] != "tk1" {
		notFound()
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	t := map[string]any{
		"id": "tk1", "title": "Ticket one", "story": fakeScenarioStory, "status": "connected", "card": map[string]any{},
		"settings": fakeSettings, "dns": "127.0.0.1:5353", "hints": []string{}, "hints_left": 2 - f.hints, "answered": false,
	}
	for i := 0; i < f.hints; i++ {
		t["hints"] = append(t["hints"].([]string), fmt.Sprintf("hint number %d", i+1))
	}
	if f.answer != nil {
		t["answered"] = true
		t["answer"] = f.answer
		t["right"] = f.answer["code"] == "TLS_CERT_EXPIRED"
		t["expected_root_cause"] = "TLS_CERT_EXPIRED"
		t["debrief"] = map[string]string{"cause": "the certificate expired", "symptoms": "a warning", "fix": "renew it"}
	}
	switch {
	case len(parts) == 3 && r.Method == http.MethodGet:
		reply(200, t)
	case len(parts) == 4 && parts[3] == "hints" && r.Method == http.MethodPost:
		if f.answer != nil || f.hints >= 2 {
			reply(409, map[string]string{"error": "no hint left"})
			return
		}
		f.hints++
		reply(200, t)
	case len(parts) == 4 && parts[3] == "answer" && r.Method == http.MethodPost:
		var a map[string]any
		json.Unmarshal(body, &a)
		if a["code"] != "TLS_CERT_EXPIRED" && a["code"] != "AUTH_FAILED" {
			reply(400, map[string]string{"error": "unknown root cause", "field": "code"})
			return
		}
		if f.answer != nil {
			reply(409, map[string]string{"error": "already answered"})
			return
		}
		f.answer = a
		reply(200, t)
	default:
		notFound()
	}
}

// client drives a console behind httptest like a browser: it keeps the
// cookie, sends Origin and Sec-Fetch-Site on POSTs and never follows
// redirects.
type client struct {
	t      *testing.T
	srv    *httptest.Server
	api    *fakeAPI
	c      *Console
	cookie *http.Cookie
}

func newClient(t *testing.T, admin bool) *client {
	t.Helper()
	api := newFakeAPI(t)
	c := New(api, Options{Token: testToken})
	srv := httptest.NewServer(c)
	t.Cleanup(srv.Close)
	cl := &client{t: t, srv: srv, api: api, c: c}
	if admin {
		cl.cookie = &http.Cookie{Name: DefaultCookieName, Value: testToken}
	}
	return cl
}

type response struct {
	status int
	header http.Header
	body   string
}

func (cl *client) do(method, path string, form url.Values, hdr map[string]string) response {
	cl.t.Helper()
	var rd io.Reader
	if form != nil {
		rd = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, cl.srv.URL+path, rd)
	if err != nil {
		cl.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if cl.cookie != nil {
		req.AddCookie(cl.cookie)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := hc.Do(req)
	if err != nil {
		cl.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{resp.StatusCode, resp.Header, string(b)}
}

func (cl *client) get(path string) response { cl.t.Helper(); return cl.do("GET", path, nil, nil) }

// post sends a form as the console's own page would (same origin).
func (cl *client) post(path string, form url.Values) response {
	cl.t.Helper()
	return cl.do("POST", path, form, map[string]string{"Origin": cl.srv.URL, "Sec-Fetch-Site": "same-origin"})
}

func (cl *client) adminCSRF() string { return cl.c.csrfToken("admin") }
