package console_test

import (
	"fmt"
	"io"
	"net/http"
	"net/smtp"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/maillab/maillab/console"
)

// TestWithServe drives the console mounted by a real serve.Server as a
// browser would: the token URL, the board, a lab started from its card,
// the lab view with the settings card and transcript, a message sent over
// SMTP shown with its HTML sandboxed, a fault switched on, the lab deleted.
func TestWithServe(t *testing.T) {
	srv, ts := startServe(t)
	hc := newBrowser()
	get := func(path string) (int, http.Header, string) {
		t.Helper()
		return browserGet(t, hc, ts.URL+path)
	}
	csrfRE := regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`)
	var csrf string
	post := func(path string, form url.Values) (int, string) {
		t.Helper()
		resp := browserPost(t, hc, ts.URL, path, csrf, form)
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("Location")
	}

	if code, _, _ := get("/"); code != http.StatusUnauthorized {
		t.Fatalf("GET / without the cookie = %d, want 401", code)
	}
	if code, hdr, _ := get("/?token=" + srv.Token()); code != http.StatusSeeOther || hdr.Get("Location") != "/" {
		t.Fatalf("GET /?token= = %d %q, want 303 /", code, hdr.Get("Location"))
	}
	code, hdr, board := get("/")
	if code != http.StatusOK || hdr.Get("Content-Security-Policy") != console.CSP {
		t.Fatalf("GET / = %d CSP %q", code, hdr.Get("Content-Security-Policy"))
	}
	for _, name := range []string{"expired-cert", "wrong-password", "dns-outage", "firewall-drop"} {
		if !strings.Contains(board, `data-scenario="`+name+`"`) {
			t.Errorf("the board has no card for %s", name)
		}
	}
	m := csrfRE.FindStringSubmatch(board)
	if m == nil {
		t.Fatal("no CSRF token on the board")
	}
	csrf = m[1]

	code, loc := post("/labs", url.Values{"scenario": {"wrong-password"}})
	if code != http.StatusSeeOther || !strings.HasPrefix(loc, "/labs/") {
		t.Fatalf("POST /labs = %d %q, want 303 to the lab", code, loc)
	}
	id := strings.TrimPrefix(loc, "/labs/")
	code, _, page := get(loc)
	if code != http.StatusOK || !strings.Contains(page, `data-test="settings-card"`) || !strings.Contains(page, "password-changed") || !strings.Contains(page, `data-kind="lab"`) {
		t.Fatalf("GET %s = %d without settings card, fault row or transcript", loc, code)
	}
	portRE := regexp.MustCompile(`"smtp":\s*(\d+)`)
	_, _, labJSON := get("/api/v1/labs/" + id)
	pm := portRE.FindStringSubmatch(labJSON)
	if pm == nil {
		t.Fatalf("no smtp port in %s", labJSON)
	}
	msg := "From: bob@example.test\r\nTo: alice@example.test\r\nSubject: <b>tags</b> & more\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/alternative; boundary=B\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nplain <script>x</script>\r\n" +
		"--B\r\nContent-Type: text/html\r\n\r\n<p>rich</p><script>window.pwned=1</script>\r\n--B--\r\n"
	sendPlain(t, "127.0.0.1:"+pm[1], msg)
	_, _, box := get(loc + "/messages")
	mm := regexp.MustCompile(`data-test="message-row" data-message="([^"]+)"`).FindStringSubmatch(box)
	if mm == nil {
		t.Fatalf("the mailbox lists no message:\n%s", box)
	}
	_, _, view := get(loc + "/messages/" + mm[1])
	if !strings.Contains(view, "&lt;b&gt;tags&lt;/b&gt; &amp; more") || !strings.Contains(view, "plain &lt;script&gt;x&lt;/script&gt;") || strings.Contains(view, "window.pwned") {
		t.Errorf("the message page does not show subject and text as text, or carries the HTML:\n%s", view)
	}
	code, hdr, body := get(loc + "/messages/" + mm[1] + "/html")
	if code != http.StatusOK || hdr.Get("Content-Security-Policy") != console.MailCSP || !strings.Contains(body, "<p>rich</p>") {
		t.Errorf("GET .../html = %d CSP %q body %q", code, hdr.Get("Content-Security-Policy"), body)
	}
	_, _, page = get(loc)
	if !strings.Contains(page, `data-service="smtp" data-kind="transcript" data-dir="C"`) {
		t.Errorf("the transcript does not show the SMTP session")
	}

	code, to := post(loc+"/faults", url.Values{"type": {"expired-certificate"}, "services": {"submission"}})
	if code != http.StatusSeeOther || !strings.Contains(to, "restarted=") {
		t.Fatalf("POST fault = %d %q, want 303 with the restart", code, to)
	}
	_, _, page = get(to)
	if !strings.Contains(page, "restarted on the same port: ") || !strings.Contains(page, `data-fault="f2"`) {
		t.Errorf("after adding a fault (%s): no restart note or no fault row f2:\n%s", to, page)
	}
	if code, to := post(loc+"/delete", url.Values{}); code != http.StatusSeeOther || to != "/labs" {
		t.Errorf("POST delete = %d %q", code, to)
	}
	if code, _, _ := get(loc); code != http.StatusNotFound {
		t.Errorf("GET %s after delete = %d, want 404", loc, code)
	}
	if code, _, _ := get(fmt.Sprintf("/api/v1/labs/%s", id)); code != http.StatusNotFound {
		t.Errorf("the API still has lab %s", id)
	}
}

// sendPlain delivers msg over SMTP without STARTTLS (port 25 of the lab
// does not require it; the lab's CA is not the test's concern).
func sendPlain(t *testing.T, addr, msg string) {
	t.Helper()
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Mail("bob@example.test"); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("alice@example.test"); err != nil {
		t.Fatal(err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, msg)
	if err := w.Close(); err != nil {
		t.Fatalf("DATA: %v", err)
	}
	c.Quit()
}
