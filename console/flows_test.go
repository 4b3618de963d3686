package console

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"golang.org/x/net/html"
)

// TestMailHTMLSandboxed: a message's HTML is served only by the sandbox
// endpoint, under the mail CSP, and framed with sandbox="" (no
// allow-scripts); the message page itself never carries it.
func TestMailHTMLSandboxed(t *testing.T) {
	cl := newClient(t, true)
	evil := `<p>hi</p><script>window.pwned=1</script><img src="http://remote.example/x.png">`
	cl.api.message["html"] = []string{evil}
	resp := cl.get("/labs/lab1/messages/m1/html")
	if resp.status != http.StatusOK || resp.body != evil {
		t.Fatalf("GET .../html = %d %q, want 200 and the HTML part as sent", resp.status, resp.body)
	}
	if got := resp.header.Get("Content-Security-Policy"); got != MailCSP {
		t.Errorf("mail HTML CSP = %q, want %q", got, MailCSP)
	}
	if !strings.HasPrefix(resp.header.Get("Content-Type"), "text/html") || resp.header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("mail HTML headers: %v", resp.header)
	}
	page := cl.get("/labs/lab1/messages/m1")
	if strings.Contains(page.body, "window.pwned") || strings.Contains(page.body, "remote.example") {
		t.Errorf("the message page carries the HTML part:\n%s", page.body)
	}
	frames := findAll(parseHTML(t, page.body), "iframe")
	if len(frames) != 1 {
		t.Fatalf("%d iframes, want 1", len(frames))
	}
	if v, ok := attr(frames[0], "sandbox"); !ok || v != "" {
		t.Errorf("iframe sandbox = %q (present %v), want present and empty", v, ok)
	}
	cl.api.message["html"] = []string{}
	if resp := cl.get("/labs/lab1/messages/m1/html"); resp.status != http.StatusNotFound {
		t.Errorf("GET .../html of a text-only message = %d, want 404", resp.status)
	}
	page = cl.get("/labs/lab1/messages/m1")
	if len(findAll(parseHTML(t, page.body), "iframe")) != 0 {
		t.Errorf("a text-only message has an iframe")
	}
}

// renderMessage renders the message page for a message with the given
// subject and text, straight through the handler.
func renderMessage(c *Console, api *fakeAPI, subject, body string) string {
	api.mu.Lock()
	api.message["subject"] = subject
	api.message["text"] = []string{body}
	api.message["headers"] = []map[string]string{{"name": "Subject", "value": subject}}
	api.mu.Unlock()
	req := httptest.NewRequest("GET", "/labs/lab1/messages/m1", nil)
	req.AddCookie(&http.Cookie{Name: DefaultCookieName, Value: testToken})
	rec := httptest.NewRecorder()
	c.ServeHTTP(rec, req)
	return rec.Body.String()
}

func countElements(n *html.Node) int {
	k := 0
	if n.Type == html.ElementNode {
		k = 1
	}
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		k += countElements(c)
	}
	return k
}

// FuzzMessageEscaped: whatever a message's subject and text hold, the
// page shows them as text (they read back exactly) and adds no element:
// the document has as many elements as with a harmless message.
func FuzzMessageEscaped(f *testing.F) {
	for _, s := range []string{"hello", "<script>alert(1)</script>", `"><img src=x onerror=alert(1)>`, "</pre><b>x</b>", "&amp; &lt;", "<!--", "]]>", "</textarea></title>", "{{.}}"} {
		f.Add(s, s)
	}
	api := newFakeAPI(&testing.T{})
	c := New(api, Options{Token: testToken})
	base := countElements(mustParse(renderMessage(c, api, "subject", "text")))
	f.Fuzz(func(t *testing.T, subject, body string) {
		if !utf8.ValidString(subject) || !utf8.ValidString(body) || strings.ContainsAny(subject+body, "\x00\r\f") || strings.TrimSpace(subject) == "" {
			t.Skip("the HTML parser normalises these: not a round trip")
		}
		page := renderMessage(c, api, subject, body)
		doc := mustParse(page)
		if n := countElements(doc); n != base {
			t.Fatalf("subject %q text %q: %d elements, want %d\n%s", subject, body, n, base, page)
		}
		if got := text(findAll(doc, "[data-test=message-text]")[0]); got != strings.TrimPrefix(body, "\n") {
			t.Errorf("message text reads back %q, want %q", got, body)
		}
		if got := text(findAll(doc, "h1")[0]); got != subject {
			t.Errorf("subject reads back %q, want %q", got, subject)
		}
	})
}

func mustParse(s string) *html.Node {
	doc, err := html.Parse(strings.NewReader(s))
	if err != nil {
		panic(err)
	}
	return doc
}

// TestTraineeNotFound: an unknown key and another trainee's ticket get
// the same 404 page, for GETs and forms alike, and a trainee page shows
// no admin navigation.
func TestTraineeNotFound(t *testing.T) {
	cl := newClient(t, false)
	csrf := cl.c.csrfToken("trainee:ann-key")
	var first string
	for _, tc := range []struct {
		method, path string
		form         url.Values
	}{
		{"GET", "/t/nobody", nil},
		{"GET", "/t/nobody/tickets/tk1", nil},
		{"GET", "/t/ann-key/tickets/tk9", nil},
		{"GET", "/t/ann-key/tickets/lab1", nil},
		{"POST", "/t/nobody/tickets/tk1/answer", url.Values{"code": {"AUTH_FAILED"}}},
		{"POST", "/t/nobody/tickets/tk1/answer", url.Values{"code": {"AUTH_FAILED"}, "csrf": {csrf}}},
		{"POST", "/t/ann-key/tickets/tk9/answer", url.Values{"code": {"AUTH_FAILED"}, "csrf": {csrf}}},
		{"POST", "/t/ann-key/tickets/tk9/hints", url.Values{"csrf": {csrf}}},
	} {
		var resp response
		if tc.method == "GET" {
			resp = cl.get(tc.path)
		} else {
			resp = cl.post(tc.path, tc.form)
		}
		if resp.status != http.StatusNotFound {
			t.Errorf("%s %s = %d, want 404", tc.method, tc.path, resp.status)
		}
		if first == "" {
			first = resp.body
		} else if resp.body != first {
			t.Errorf("%s %s: the 404 page differs from the others:\n%s\n---\n%s", tc.method, tc.path, resp.body, first)
		}
	}
	if strings.Contains(first, "nav-board") {
		t.Errorf("the trainee 404 shows the admin navigation")
	}
}

// TestTraineeFlow: a hint, a refused answer shown next to its field, the
// answer, then the result and the debrief; a second answer is refused.
func TestTraineeFlow(t *testing.T) {
	cl := newClient(t, false)
	csrf := cl.c.csrfToken("trainee:ann-key")
	base := "/t/ann-key/tickets/tk1"
	if resp := cl.post(base+"/hints", url.Values{"csrf": {csrf}}); resp.status != http.StatusSeeOther || !strings.HasPrefix(resp.header.Get("Location"), base) {
		t.Fatalf("POST hints = %d Location %q, want 303 to the ticket", resp.status, resp.header.Get("Location"))
	}
	doc := parseHTML(t, cl.get(base).body)
	groups := findAll(doc, "select[name=code] optgroup")
	if len(groups) != 2 || len(findAll(groups[0], "option")) != 3 {
		t.Errorf("answer choices: %d optgroups, want 2 (one per layer, the TLS one with 3 codes)", len(groups))
	} else if l, _ := attr(groups[0], "label"); l != "Secure connection (TLS)" {
		t.Errorf("first optgroup %q, want the layer's plain title", l)
	}
	if hints := findAll(doc, "[data-test=hints] li"); len(hints) != 1 || text(hints[0]) != "hint number 1" {
		t.Errorf("hints after one = %d items", len(hints))
	}
	resp := cl.post(base+"/answer", url.Values{"csrf": {csrf}, "code": {"NOT_A_CODE"}, "fix": {"x"}})
	if resp.status != http.StatusBadRequest {
		t.Fatalf("POST answer with an unknown code = %d, want 400", resp.status)
	}
	doc = parseHTML(t, resp.body)
	if len(findAll(doc, "form[data-test=answer-form] [data-test=form-error][id=err-code]")) != 1 {
		t.Errorf("the unknown code's error is not next to the code field:\n%s", resp.body)
	}
	resp = cl.post(base+"/answer", url.Values{"csrf": {csrf}, "code": {"TLS_CERT_EXPIRED"}, "fix": {"renew <it>"}})
	if resp.status != http.StatusSeeOther {
		t.Fatalf("POST answer = %d, want 303", resp.status)
	}
	doc = parseHTML(t, cl.get(base).body)
	if len(findAll(doc, "[data-test=result][data-result=right]")) != 1 || len(findAll(doc, "[data-test=debrief]")) != 1 {
		t.Errorf("after a right answer: no result right or no debrief")
	}
	if len(findAll(doc, "form[data-test=answer-form]")) != 0 || len(findAll(doc, "form[data-test=hint]")) != 0 {
		t.Errorf("after answering the answer and hint forms are still shown")
	}
	if r := findAll(doc, "[data-test=result]"); len(r) == 0 || !strings.Contains(text(r[0]), "renew <it>") || !strings.Contains(text(r[0]), "The certificate has expired") {
		t.Errorf("the result does not repeat the answer in plain words and the fix")
	}
	resp = cl.post(base+"/answer", url.Values{"csrf": {csrf}, "code": {"AUTH_FAILED"}})
	if resp.status != http.StatusConflict || len(findAll(parseHTML(t, resp.body), "[data-test=form-error]")) != 1 {
		t.Errorf("a second answer = %d, want 409 with the reason shown", resp.status)
	}
}

// TestLabActions: the fault panel's forms, the restart note, errors shown
// on the lab page, diagnose's result, starting and deleting labs.
func TestLabActions(t *testing.T) {
	cl := newClient(t, true)
	csrf := cl.adminCSRF()
	resp := cl.post("/labs/lab1/faults", url.Values{"csrf": {csrf}, "type": {"expired-certificate"}, "services": {"submission, imaps"}, "after_connections": {"2"}, "params": {`{"days": 3}`}})
	if resp.status != http.StatusSeeOther {
		t.Fatalf("POST fault = %d, want 303\n%s", resp.status, resp.body)
	}
	calls := cl.api.calls()
	if last := calls[len(calls)-1]; !strings.Contains(last, `"services":["submission","imaps"]`) || !strings.Contains(last, `"after_connections":2`) || !strings.Contains(last, `"params":{"days":3}`) {
		t.Errorf("fault request sent = %s", last)
	}
	page := cl.get(resp.header.Get("Location"))
	if n := findAll(parseHTML(t, page.body), "[data-test=note]"); len(n) != 1 || !strings.Contains(text(n[0]), "restarted on the same port: submission") {
		t.Errorf("no note that the service restarted on the same port")
	}
	resp = cl.post("/labs/lab1/faults", url.Values{"csrf": {csrf}, "type": {"no-such-fault"}})
	if resp.status != http.StatusBadRequest || len(findAll(parseHTML(t, resp.body), "[data-test=form-error]")) != 1 || len(findAll(parseHTML(t, resp.body), "[data-test=fault-panel]")) != 1 {
		t.Errorf("POST unknown fault = %d, want 400 on the lab page with the error", resp.status)
	}
	n := len(cl.api.calls())
	resp = cl.post("/labs/lab1/faults", url.Values{"csrf": {csrf}, "type": {"expired-certificate"}, "params": {"days=3"}})
	if resp.status != http.StatusBadRequest || !strings.Contains(resp.body, "params") {
		t.Errorf("POST fault with params not JSON = %d, want 400 naming params", resp.status)
	}
	for _, c := range cl.api.calls()[n:] {
		if strings.HasPrefix(c, "POST") {
			t.Errorf("a fault with bad params reached the API: %s", c)
		}
	}
	resp = cl.post("/labs/lab1/faults/f1/delete", url.Values{"csrf": {csrf}})
	if resp.status != http.StatusSeeOther || !strings.Contains(resp.header.Get("Location"), "removed=f1") {
		t.Errorf("POST remove fault = %d %q", resp.status, resp.header.Get("Location"))
	}
	resp = cl.post("/labs/lab1/diagnose", url.Values{"csrf": {csrf}})
	doc := parseHTML(t, resp.body)
	if r := findAll(doc, "[data-test=diagnose-result]"); resp.status != http.StatusOK || len(r) != 1 || !strings.Contains(text(r[0]), "TLS_CERT_EXPIRED") || !strings.Contains(text(r[0]), "certificate expired at 2026-12-02") || !strings.Contains(text(r[0]), "Renew the certificate.") {
		t.Errorf("diagnose = %d without root cause, evidence and fix", resp.status)
	}
	if resp := cl.post("/labs", url.Values{"csrf": {csrf}, "scenario": {"expired-cert"}}); resp.status != http.StatusSeeOther || resp.header.Get("Location") != "/labs/lab1" {
		t.Errorf("POST /labs = %d %q, want 303 /labs/lab1", resp.status, resp.header.Get("Location"))
	}
	if resp := cl.post("/labs", url.Values{"csrf": {csrf}}); resp.status != http.StatusSeeOther {
		t.Errorf("POST /labs (healthy) = %d, want 303", resp.status)
	}
	if calls := cl.api.calls(); calls[len(calls)-1] != "POST /api/v1/labs {}" {
		t.Errorf("a healthy lab is requested as %q, want POST /api/v1/labs {}", calls[len(calls)-1])
	}
	if resp := cl.post("/labs", url.Values{"csrf": {csrf}, "scenario": {"nope"}}); resp.status != http.StatusBadRequest || !strings.Contains(resp.body, "unknown scenario") {
		t.Errorf("POST /labs unknown = %d, want 400 with the API's message", resp.status)
	}
	if resp := cl.post("/labs/lab1/delete", url.Values{"csrf": {csrf}}); resp.status != http.StatusSeeOther || resp.header.Get("Location") != "/labs" {
		t.Errorf("POST delete = %d %q", resp.status, resp.header.Get("Location"))
	}
	if resp := cl.get("/labs/nope"); resp.status != http.StatusNotFound {
		t.Errorf("GET /labs/nope = %d, want 404", resp.status)
	}
}

// TestClassForm: the form's values reach the API as the contract's JSON;
// a refusal re-renders the form with the message next to its field and
// the values kept.
func TestClassForm(t *testing.T) {
	cl := newClient(t, true)
	csrf := cl.adminCSRF()
	resp := cl.post("/classes", url.Values{"csrf": {csrf}, "name": {"Tuesday"}, "trainees": {"Ann\r\n\r\nBob \n"}, "assignment": {"all"}})
	if resp.status != http.StatusBadRequest {
		t.Fatalf("POST /classes without scenarios = %d, want 400", resp.status)
	}
	doc := parseHTML(t, resp.body)
	if len(findAll(doc, "fieldset [data-test=form-error][id=err-scenario]")) != 1 {
		t.Errorf("the scenarios error is not next to the scenarios")
	}
	if in := findAll(doc, "input[name=name]"); len(in) != 1 {
		t.Fatal("no name input")
	} else if v, _ := attr(in[0], "value"); v != "Tuesday" {
		t.Errorf("name kept = %q, want Tuesday", v)
	}
	resp = cl.post("/classes", url.Values{"csrf": {csrf}, "name": {"Tuesday"}, "trainees": {"Ann\r\nBob"}, "scenario": {"expired-cert", "wrong-password"}, "assignment": {"random"}, "per_trainee": {"1"}})
	if resp.status != http.StatusSeeOther || resp.header.Get("Location") != "/classes/c1" {
		t.Fatalf("POST /classes = %d %q, want 303 /classes/c1", resp.status, resp.header.Get("Location"))
	}
	calls := cl.api.calls()
	want := `POST /api/v1/classes {"assignment":"random","name":"Tuesday","per_trainee":1,"scenarios":["expired-cert","wrong-password"],"trainees":["Ann","Bob"]}`
	if last := calls[len(calls)-1]; last != want {
		t.Errorf("API request = %s\nwant %s", last, want)
	}
	resp = cl.post("/classes", url.Values{"csrf": {csrf}, "name": {"T"}, "count": {"zero"}, "scenario": {"expired-cert"}, "assignment": {"all"}})
	if resp.status != http.StatusBadRequest || len(findAll(parseHTML(t, resp.body), "[data-test=form-error][id=err-count]")) != 1 {
		t.Errorf("count not a number = %d, want 400 with the error next to count", resp.status)
	}
}

// TestHighlightPatternPortable: app.js builds a JavaScript RegExp from the
// same pattern; JavaScript has no inline flags such as (?i).
func TestHighlightPatternPortable(t *testing.T) {
	if strings.Contains(highlightPattern, "(?") {
		t.Errorf("highlightPattern %q uses a (? group JavaScript does not read", highlightPattern)
	}
	for _, line := range []string{"fault strip-starttls: STARTTLS stripped from the EHLO reply", "SYN dropped", "login refused: account locked", "certificate expired 3 days ago"} {
		if !highlighted("transcript", line) {
			t.Errorf("%q is not highlighted", line)
		}
	}
	if highlighted("transcript", "250 2.0.0 Roger, accepting mail") {
		t.Errorf("an ordinary reply is highlighted")
	}
}
