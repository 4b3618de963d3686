//go:build e2e

package console

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// hostileHTML sets globals (its own window's and its parent's) and marks
// its body if any of its scripts runs: inline, event handler, or
// javascript: URL.
const hostileHTML = `<html><body><p id="greeting">Hello from the HTML part</p>
<script>window.maillabMailScript = 1; try { parent.maillabMailScript = 1 } catch (e) {} document.body.setAttribute('data-ran', '1')</script>
<img src="data:," onerror="window.maillabMailScript = 2; try { parent.maillabMailScript = 2 } catch (e) {}">
</body></html>`

// hostileMessage is a multipart message: a text part that looks like
// markup (it must show as text), the hostile HTML part and an attachment.
func hostileMessage(from, to string) string {
	return strings.ReplaceAll(fmt.Sprintf(`From: %s
To: %s
Subject: Invoice with a script
Date: %s
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="outer"

--outer
Content-Type: multipart/alternative; boundary="inner"

--inner
Content-Type: text/plain; charset=utf-8

Plain part: <b>not bold</b> <script>alert(1)</script>
--inner
Content-Type: text/html; charset=utf-8

%s
--inner--
--outer
Content-Type: text/plain; name="notes.txt"
Content-Disposition: attachment; filename="notes.txt"

attached notes
--outer--
`, from, to, time.Now().UTC().Format(time.RFC1123Z), hostileHTML), "\n", "\r\n")
}

// TestMailbox sends two messages with swaks into a lab the trainer
// started from the board, and reads them in the mailbox viewer: the
// headers, the text part as text, the HTML part in a sandboxed frame
// where its scripts do not run (asserted in the browser, in the page and
// in the frame), the attachment and the raw source.
func TestMailbox(t *testing.T) {
	swaks := need(t, []string{"swaks"}, "swaks")
	c := startConsole(t)
	b := startBrowser(t)

	// The control: the same HTML outside the console runs its script in
	// this Chromium, so the assertions below can fail.
	control := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, hostileHTML)
	}))
	defer control.Close()
	ctl := b.tab("control")
	ctl.visit(control.URL)
	if got := eval[int](ctl, `window.maillabMailScript || 0`); got == 0 {
		t.Fatalf("control: the hostile HTML's scripts did not run outside the console; the test would prove nothing")
	}

	trainer := b.tab("trainer")
	// The board's healthy lab (the contract names no selector for it; the
	// console's is start-healthy).
	labID, st := labClient(t, c, trainer)
	ca := writeFile(t, "ca.pem", c.api(t, http.MethodGet, "/api/v1/labs/"+labID+"/ca.pem", nil))
	sub, ok := st.Services["submission"]
	if !ok || len(st.Accounts) == 0 {
		t.Fatalf("lab %s: settings have no submission service or account: %+v", labID, st)
	}
	ip := resolve(t, st.Resolver, sub.Host)
	acct := st.Accounts[0]
	send := func(extra ...string) {
		t.Helper()
		args := append([]string{"--server", ip, "--port", fmt.Sprint(sub.Port), "--helo", "client.e2e.test",
			"--from", acct.Email, "--to", acct.Email, "--timeout", "10",
			"-tls", "--tls-verify", "--tls-sni", sub.Host, "--tls-ca-path", ca,
			"-a", "-au", acct.Username, "-ap", acct.Password}, extra...)
		if exit, out := run(t, 30*time.Second, swaks, args...); exit != 0 {
			t.Fatalf("swaks exit %d:\n%s", exit, out)
		}
	}
	send("--header", "Subject: Hello from swaks", "--body", "Sent with swaks for the mailbox viewer.")
	send("--data", writeFile(t, "hostile.eml", []byte(hostileMessage(acct.Email, acct.Email))))

	trainer.click(`a[data-test=mailbox]`)
	trainer.until("two messages in the mailbox", `document.querySelectorAll('tr[data-test=message-row]').length === 2`, wait)
	rows := eval[[]string](trainer, `[...document.querySelectorAll('tr[data-test=message-row]')].map(r => r.textContent)`)
	for _, subject := range []string{"Hello from swaks", "Invoice with a script"} {
		if !strings.Contains(strings.Join(rows, "\n"), subject) {
			t.Errorf("mailbox: rows %q lack %q", rows, subject)
		}
	}

	open := func(subject string) {
		t.Helper()
		trainer.visit(c.base + "/labs/" + labID + "/messages")
		trainer.waitFor(`tr[data-test=message-row]`)
		if !eval[bool](trainer, fmt.Sprintf(`(() => { const r = [...document.querySelectorAll('tr[data-test=message-row]')].find(r => r.textContent.includes(%q)); if (!r) return false; r.querySelector('a').click(); return true })()`, subject)) {
			t.Fatalf("mailbox: no row with %q", subject)
		}
		trainer.waitFor(`[data-test=message-headers]`)
	}
	// The plain message.
	open("Hello from swaks")
	if h := eval[string](trainer, `document.querySelector('[data-test=message-headers]').textContent`); !strings.Contains(h, "Hello from swaks") || !strings.Contains(h, acct.Email) {
		t.Errorf("message headers %q lack the subject or %s", norm(h), acct.Email)
	}
	if txt := eval[string](trainer, `document.querySelector('[data-test=message-text]').textContent`); !strings.Contains(txt, "Sent with swaks for the mailbox viewer.") {
		t.Errorf("message text %q, want swaks' body", txt)
	}

	// The hostile message.
	open("Invoice with a script")
	txt := eval[string](trainer, `document.querySelector('[data-test=message-text]').textContent`)
	if !strings.Contains(txt, "<b>not bold</b> <script>alert(1)</script>") {
		t.Errorf("message text %q, want the markup shown as text", txt)
	}
	if n := eval[int](trainer, `document.querySelectorAll('[data-test=message-text] b, [data-test=message-text] script').length`); n != 0 {
		t.Errorf("message text: %d elements made from the text part's markup", n)
	}
	trainer.waitFor(`iframe[data-test=message-html]`)
	frame := eval[map[string]string](trainer, `(() => { const f = document.querySelector('iframe[data-test=message-html]'); return {sandbox: f.hasAttribute('sandbox') ? f.getAttribute('sandbox') : 'absent', src: f.getAttribute('src') || ''} })()`)
	if frame["sandbox"] != "" {
		t.Errorf(`iframe sandbox=%q, want sandbox="" (no allow-scripts)`, frame["sandbox"])
	}
	if !strings.HasPrefix(frame["src"], "/labs/"+labID+"/messages/") || !strings.HasSuffix(frame["src"], "/html") {
		t.Fatalf("iframe src %q, want /labs/%s/messages/{mid}/html", frame["src"], labID)
	}
	// Give a script every chance to run before looking.
	eval[int](trainer, `new Promise(r => setTimeout(() => r(1), 300))`)
	if got := eval[string](trainer, `typeof window.maillabMailScript`); got != "undefined" {
		t.Errorf("page: window.maillabMailScript is %s: the mail's script reached the console page", got)
	}
	shown := frameEval[string](trainer, frame["src"], `document.getElementById('greeting') ? document.getElementById('greeting').textContent : 'no greeting'`)
	if shown != "Hello from the HTML part" {
		t.Errorf("frame: the HTML part shows %q, want its greeting (the frame must render it)", shown)
	}
	if got := frameEval[string](trainer, frame["src"], `typeof window.maillabMailScript + ' ' + document.body.getAttribute('data-ran')`); got != "undefined null" {
		t.Errorf("frame: the mail's script ran inside the frame (global and mark: %s)", got)
	}
	if !eval[bool](trainer, `[...document.querySelectorAll('[data-test=attachment]')].some(a => a.textContent.includes('notes.txt'))`) {
		t.Errorf("no [data-test=attachment] naming notes.txt")
	}
	raw := eval[string](trainer, `fetch(document.querySelector('a[data-test=message-raw]').href).then(r => r.text())`)
	if !strings.Contains(raw, "Subject: Invoice with a script") || !strings.Contains(raw, "maillabMailScript") {
		t.Errorf("raw source lacks the subject or the script:\n%.400s", raw)
	}
}
