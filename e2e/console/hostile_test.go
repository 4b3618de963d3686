//go:build e2e

package console

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/csv"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/smtp"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/maillab/maillab/settings"
)

// The payloads a hostile mail client sends: each sets window.pwned if
// the console ever parses it as markup (an event handler or a script
// element), and leaves an element a selector finds. The console's CSP
// would block the script itself; the harness fails a test on the CSP
// violation such an element reports, and injected below checks the
// element, so an injection fails the test even with the CSP in place.
const (
	payloadImg    = `<img src=x onerror=window.pwned=1>`
	payloadScript = `"><script>window.pwned=2</script>`
)

// injected is a JavaScript expression listing what markup from hostile
// input made it into the page: the global a payload sets, an element
// made from a payload, a script element whose text mentions pwned.
const injected = `(() => {
	'use strict';
	const found = [];
	if (typeof window.pwned !== 'undefined') found.push('window.pwned = ' + window.pwned);
	if (document.querySelector('img[src=x]')) found.push('an <img src=x> element');
	document.querySelectorAll('[onerror]').forEach(e => found.push('an element with onerror: ' + e.outerHTML.slice(0, 80)));
	[...document.scripts].filter(s => s.textContent.includes('pwned')).forEach(s => found.push('a script element: ' + s.outerHTML.slice(0, 80)));
	return found;
})()`

// clean asserts no payload made markup on the page, after giving any
// script every chance to run.
func clean(p *window, where string) {
	p.t.Helper()
	p.until(where+" loaded", `document.readyState === 'complete'`, wait)
	eval[int](p, `new Promise(r => setTimeout(() => r(1), 300))`)
	if found := eval[[]string](p, injected); len(found) != 0 {
		p.t.Errorf("%s: hostile input became markup: %q\n%s", where, found, p.describe())
	}
}

// shows asserts the page shows text as text inside the elements sel
// selects (so the payload did reach the page and clean proves something).
func shows(p *window, where, sel, text string) {
	p.t.Helper()
	p.until(where+" shows "+text, fmt.Sprintf(`[...document.querySelectorAll(%q)].some(e => e.textContent.includes(%q))`, sel, text), wait)
}

// TestInjectedCheckCanFail is the control: the same payloads parsed as
// markup in a page without the console's CSP run (window.pwned) and
// leave what injected looks for, so the checks below can fail. (In a
// console page the CSP blocks the handler, and the harness fails the
// test on the violation Chromium reports: a second line of defence.)
func TestInjectedCheckCanFail(t *testing.T) {
	c := startConsole(t)
	b := startBrowser(t)
	p := b.tab("control")
	_ = c
	p.visit("about:blank")
	found := eval[[]string](p, fmt.Sprintf(`new Promise(r => { document.body.innerHTML = %q; setTimeout(() => r(%s), 300) })`, "<p>"+payloadImg+payloadScript, injected))
	if len(found) != 4 {
		t.Fatalf("control: the payloads parsed as markup leave %q; want window.pwned set, the img, its onerror and the script found", found)
	}
}

// labClient starts the healthy lab from the board and returns its id and
// customer settings.
func labClient(t *testing.T, c *console, trainer *window) (string, settings.Settings) {
	t.Helper()
	trainer.visit(c.printedURL())
	trainer.click(`form[data-test=start-healthy] button[type=submit]`)
	trainer.waitFor(`[data-test=settings-card]`)
	labID := strings.TrimPrefix(trainer.location().Path, "/labs/")
	if labID == "" || strings.Contains(labID, "/") {
		t.Fatalf("trainer: after starting a lab the page is %s, want /labs/{id}", trainer.location())
	}
	var st settings.Settings
	c.api(t, http.MethodGet, "/api/v1/labs/"+labID+"/settings.json", &st)
	if len(st.Accounts) == 0 {
		t.Fatalf("lab %s: no account in the settings", labID)
	}
	return labID, st
}

// addr is where a service of the lab listens (resolved by its DNS).
func addr(t *testing.T, st settings.Settings, service string) string {
	t.Helper()
	svc, ok := st.Services[service]
	if !ok {
		t.Fatalf("the lab has no %s service: %+v", service, st.Services)
	}
	return net.JoinHostPort(resolve(t, st.Resolver, svc.Host), fmt.Sprint(svc.Port))
}

// tlsConf trusts the lab's CA for host.
func tlsConf(t *testing.T, c *console, labID, host string) *tls.Config {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(c.api(t, http.MethodGet, "/api/v1/labs/"+labID+"/ca.pem", nil)) {
		t.Fatalf("lab %s: ca.pem holds no certificate", labID)
	}
	return &tls.Config{RootCAs: pool, ServerName: host}
}

// rawSession connects to addr, reads the greeting, sends each line and
// reads one reply line after each (the server's answer, whatever it is).
func rawSession(t *testing.T, address string, conf *tls.Config, lines ...string) []string {
	t.Helper()
	d := &net.Dialer{Timeout: 5 * time.Second}
	var conn net.Conn
	var err error
	if conf != nil {
		conn, err = tls.DialWithDialer(d, "tcp", address, conf)
	} else {
		conn, err = d.Dial("tcp", address)
	}
	if err != nil {
		t.Fatalf("dial %s: %v", address, err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(conn)
	var replies []string
	line, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("%s: no greeting: %v", address, err)
	}
	replies = append(replies, strings.TrimRight(line, "\r\n"))
	readReply := func() {
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				if err != io.EOF {
					t.Logf("%s: read: %v", address, err)
				}
				return
			}
			replies = append(replies, strings.TrimRight(line, "\r\n"))
			// SMTP multi-line replies go on with "250-"; IMAP untagged with "* ".
			if len(line) >= 4 && line[3] == '-' || strings.HasPrefix(line, "* ") {
				continue
			}
			return
		}
	}
	for _, l := range lines {
		if _, err := conn.Write([]byte(l + "\r\n")); err != nil {
			// The server may hang up on a bad command; what it read is in the transcript.
			t.Logf("%s: write %q: %v", address, l, err)
			break
		}
		readReply()
	}
	return replies
}

// TestHostileTranscript: a raw TCP client sends markup as its EHLO name,
// MAIL FROM address and IMAP tags. The trainer's lab view shows it as
// text in the live transcript (app.js builds lines with textContent) and
// after a reload (the server-rendered lines).
func TestHostileTranscript(t *testing.T) {
	c := startConsole(t)
	b := startBrowser(t)
	trainer := b.tab("trainer")
	labID, st := labClient(t, c, trainer)
	trainer.waitFor(`[data-test=transcript-line]`)
	before := eval[int](trainer, `Math.max(0, ...[...document.querySelectorAll('[data-test=transcript-line]')].map(l => +l.dataset.seq))`)
	eval[bool](trainer, `(window.maillabLiveMark = true)`)

	smtpReplies := rawSession(t, addr(t, st, "submission"), nil,
		"EHLO "+payloadImg, "EHLO "+payloadScript,
		"MAIL FROM:<"+payloadImg+">", "MAIL FROM:<"+payloadScript+">", "QUIT")
	// go-imap hangs up after a bad command: one session a payload.
	var imapReplies []string
	for _, p := range []string{payloadImg, payloadScript} {
		imapReplies = append(imapReplies, rawSession(t, addr(t, st, "imaps"), tlsConf(t, c, labID, st.Services["imaps"].Host), p+" CAPABILITY")...)
	}
	t.Logf("SMTP replies %q; IMAP replies %q", smtpReplies, imapReplies)

	live := fmt.Sprintf(`[...document.querySelectorAll('[data-test=transcript-line]')].filter(l => +l.dataset.seq > %d)`, before)
	for _, p := range []string{payloadImg, payloadScript} {
		for _, want := range []struct{ svc, text string }{
			{"submission", "EHLO " + p}, {"submission", "MAIL FROM:<" + p + ">"}, {"imaps", p + " CAPABILITY"},
		} {
			trainer.until(fmt.Sprintf("the live %s line %s", want.svc, want.text),
				fmt.Sprintf(`%s.some(l => l.dataset.service === %q && l.querySelector('.txt').textContent.includes(%q))`, live, want.svc, want.text), wait)
		}
	}
	if !eval[bool](trainer, `window.maillabLiveMark === true`) {
		t.Fatalf("the lab view reloaded: the lines above were not added live by app.js")
	}
	clean(trainer, "live transcript")
	if n := eval[int](trainer, live+`.filter(l => l.querySelector('.txt').children.length > 0).length`); n != 0 {
		t.Errorf("live transcript: %d lines have elements inside their text", n)
	}

	// The server-rendered transcript: a reload.
	trainer.visit(c.base + "/labs/" + labID)
	trainer.waitFor(`[data-test=transcript-line]`)
	if eval[bool](trainer, `window.maillabLiveMark === true`) {
		t.Fatalf("the reload did not happen")
	}
	for _, p := range []string{payloadImg, payloadScript} {
		shows(trainer, "reloaded transcript", `[data-test=transcript-line][data-service=submission] .txt`, p)
		shows(trainer, "reloaded transcript", `[data-test=transcript-line][data-service=imaps] .txt`, p)
	}
	clean(trainer, "reloaded transcript")
	if n := eval[int](trainer, `[...document.querySelectorAll('[data-test=transcript-line] .txt')].filter(e => e.children.length > 0).length`); n != 0 {
		t.Errorf("reloaded transcript: %d lines have elements inside their text", n)
	}
}

// TestHostileMailbox: a message whose From and Subject carry markup, one
// of them as an encoded word that decodes to markup, in the mailbox list
// and the message page.
func TestHostileMailbox(t *testing.T) {
	c := startConsole(t)
	b := startBrowser(t)
	trainer := b.tab("trainer")
	labID, st := labClient(t, c, trainer)
	acct := st.Accounts[0]

	encoded := "=?utf-8?b?" + base64.StdEncoding.EncodeToString([]byte(payloadScript)) + "?="
	// The third is multipart: an HTML part with the payloads (for the
	// sandboxed frame) and an attachment named with markup.
	multipart := "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b1\r\n\r\n" +
		"--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nBody " + payloadImg + "\r\n" +
		"--b1\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>" + payloadImg + payloadScript + "</p>\r\n" +
		"--b1\r\nContent-Type: text/plain\r\nContent-Disposition: attachment; filename=\"" + strings.ReplaceAll(payloadScript, `"`, "") + ".txt\"\r\n\r\nnotes\r\n--b1--\r\n"
	plain := "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nBody " + payloadImg + "\r\n"
	msgs := []struct{ from, subject, shown, body string }{
		{`"` + strings.ReplaceAll(payloadImg, `"`, "") + `" <` + acct.Email + `>`, "Plain " + payloadImg, "Plain " + payloadImg, plain},
		{"=?utf-8?b?" + base64.StdEncoding.EncodeToString([]byte(payloadImg)) + "?= <" + acct.Email + ">", "Encoded " + encoded, "Encoded " + payloadScript, plain},
		{acct.Email, "Multipart", "Multipart", multipart},
	}
	for _, m := range msgs {
		// Submission: STARTTLS, then the account's login.
		host := st.Services["submission"].Host
		conn, err := net.DialTimeout("tcp", addr(t, st, "submission"), 5*time.Second)
		if err != nil {
			t.Fatalf("smtp dial: %v", err)
		}
		cl, err := smtp.NewClient(conn, host)
		if err != nil {
			t.Fatalf("smtp greeting: %v", err)
		}
		if err := cl.StartTLS(tlsConf(t, c, labID, host)); err != nil {
			t.Fatalf("STARTTLS: %v", err)
		}
		if err := cl.Auth(smtp.PlainAuth("", acct.Username, acct.Password, host)); err != nil {
			t.Fatalf("AUTH: %v", err)
		}
		if err := cl.Mail(acct.Email); err != nil {
			t.Fatalf("MAIL FROM: %v", err)
		}
		if err := cl.Rcpt(acct.Email); err != nil {
			t.Fatalf("RCPT TO: %v", err)
		}
		wc, err := cl.Data()
		if err != nil {
			t.Fatalf("DATA: %v", err)
		}
		fmt.Fprintf(wc, "From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\n%s",
			m.from, acct.Email, m.subject, time.Now().UTC().Format(time.RFC1123Z), m.body)
		if err := wc.Close(); err != nil {
			t.Fatalf("end of DATA: %v", err)
		}
		cl.Quit()
	}

	trainer.click(`a[data-test=mailbox]`)
	trainer.until("three messages in the mailbox", `document.querySelectorAll('tr[data-test=message-row]').length === 3`, wait)
	for _, m := range msgs {
		shows(trainer, "mailbox", `tr[data-test=message-row]`, m.shown)
	}
	shows(trainer, "mailbox", `tr[data-test=message-row]`, strings.ReplaceAll(payloadImg, `"`, ""))
	// The encoded-word From decodes to markup too.
	if from := eval[string](trainer, `[...document.querySelectorAll('tr[data-test=message-row]')].find(r => r.textContent.includes('Encoded')).querySelector('td').textContent`); !strings.Contains(from, payloadImg) {
		t.Errorf("mailbox: the encoded From shows as %q, want it decoded to %q (as text)", from, payloadImg)
	}
	clean(trainer, "mailbox list")

	ids := eval[[]string](trainer, `[...document.querySelectorAll('tr[data-test=message-row]')].map(r => r.dataset.message)`)
	for _, id := range ids {
		trainer.visit(c.base + "/labs/" + labID + "/messages/" + id)
		trainer.waitFor(`[data-test=message-headers]`)
		shows(trainer, "message "+id, `[data-test=message-text]`, "Body "+payloadImg)
		clean(trainer, "message "+id)
		title := eval[string](trainer, `document.title`)
		if !strings.Contains(title, "Multipart") && !strings.Contains(title, "<") {
			t.Errorf("message %s: title %q, want the subject's markup as text", id, title)
		}
		if !strings.Contains(title, "Multipart") {
			continue
		}
		shows(trainer, "message "+id, `[data-test=attachment]`, strings.ReplaceAll(payloadScript, `"`, "")+".txt")
		// The HTML part, opened on its own (a trainer's middle click on
		// the frame), is sandboxed by its CSP; the raw source downloads.
		for _, u := range []struct{ path, ctype, csp, disposition string }{
			{"/labs/" + labID + "/messages/" + id + "/html", "text/html", "sandbox", ""},
			{"/api/v1/labs/" + labID + "/messages/" + id + "/raw", "message/rfc822", "", "attachment"},
		} {
			req, err := http.NewRequest(http.MethodGet, c.base+u.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.AddCookie(&http.Cookie{Name: "maillab_token", Value: c.token})
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			h := resp.Header
			if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), payloadImg) {
				t.Errorf("GET %s = %s, want 200 with the payload: %.200s", u.path, resp.Status, body)
			}
			if !strings.HasPrefix(h.Get("Content-Type"), u.ctype) || h.Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("GET %s: Content-Type %q nosniff %q, want %s and nosniff", u.path, h.Get("Content-Type"), h.Get("X-Content-Type-Options"), u.ctype)
			}
			if csp := h.Get("Content-Security-Policy"); u.csp != "" && !strings.HasPrefix(csp, u.csp) || strings.Contains(csp, "allow-scripts") {
				t.Errorf("GET %s: CSP %q, want it to start with %q and no allow-scripts", u.path, csp, u.csp)
			}
			if !strings.HasPrefix(h.Get("Content-Disposition"), u.disposition) {
				t.Errorf("GET %s: Content-Disposition %q, want %q", u.path, h.Get("Content-Disposition"), u.disposition)
			}
		}
	}
}

// TestHostileCustomScenario: a lab made from scenario_yaml whose title
// and story carry markup, in the lab view and the lab list.
func TestHostileCustomScenario(t *testing.T) {
	c := startConsole(t)
	b := startBrowser(t)
	yaml := fmt.Sprintf("name: hostile-case\ntitle: 'Title %s'\nroot_cause: HEALTHY\nstory: 'Story %s'\nfix: 'Fix %s'\n",
		payloadImg, strings.ReplaceAll(payloadScript, "'", "''"), payloadImg)
	var lab struct {
		ID string `json:"id"`
	}
	c.send(t, http.MethodPost, "/api/v1/labs", map[string]string{"scenario_yaml": yaml}, &lab, true)
	trainer := b.tab("trainer")
	trainer.visit(c.printedURL())
	clean(trainer, "board")
	trainer.visit(c.base + "/labs/" + lab.ID)
	trainer.waitFor(`[data-test=settings-card]`)
	shows(trainer, "lab view", `h1`, "hostile-case")
	// The console shows a catalogue scenario's title and story; a custom
	// one's it does not fetch (GET /scenarios/{name} knows only the
	// catalogue), so only its name, which the parser limits to [a-z0-9-].
	if text := eval[string](trainer, `document.body.textContent`); strings.Contains(text, "Title <img") {
		shows(trainer, "lab view", `[data-test=lab-story]`, "Title "+payloadImg)
	}
	clean(trainer, "lab view of a custom scenario")
	trainer.visit(c.base + "/labs")
	trainer.waitFor(fmt.Sprintf(`tr[data-test=lab-row][data-lab=%q]`, lab.ID))
	clean(trainer, "lab list")
}

// TestHostileClass: a class named with markup, trainees named with markup
// and a spreadsheet formula, through the class form; a trainee answers
// with a fix that is markup and a formula. The board (server render and
// its live update), the debrief and the CSV show them as text.
func TestHostileClass(t *testing.T) {
	c := startConsole(t)
	b := startBrowser(t)
	trainer := b.tab("trainer")
	trainer.visit(c.printedURL())
	trainer.visit(c.base + "/classes/new")
	trainer.waitFor(`form[data-test=class-form]`)
	className := "Class " + payloadScript
	names := []string{payloadImg, `=HYPERLINK("http://x")` + payloadScript}
	trainer.setValue(`form[data-test=class-form] input[name=name]`, className)
	trainer.setValue(`form[data-test=class-form] textarea[name=trainees]`, strings.Join(names, "\n"))
	trainer.click(`form[data-test=class-form] input[name=scenario][value="wrong-password"]`)
	trainer.setValue(`form[data-test=class-form] select[name=assignment]`, "all")
	trainer.click(`button[data-test=create-class]`)
	trainer.waitFor(`table[data-test=class-board]`)
	cid := strings.TrimPrefix(trainer.location().Path, "/classes/")
	shows(trainer, "class board", `h1`, className)
	for _, n := range names {
		shows(trainer, "class board", `tr[data-test=trainee-row]`, n)
	}
	if got := eval[[]string](trainer, `[...document.querySelectorAll('tr[data-test=trainee-row]')].map(r => r.dataset.trainee)`); len(got) != 2 || got[0] != names[0] && got[1] != names[0] {
		t.Errorf("board: data-trainee %q, want the names as given %q", got, names)
	}
	clean(trainer, "class board")
	labURL := eval[string](trainer, `document.querySelector('td[data-test=ticket-cell] a[href*="/labs/"]').href`)
	for _, u := range []string{c.base + "/classes", labURL, c.base + "/labs"} {
		trainer.visit(u)
		trainer.waitFor(`main`)
		clean(trainer, u)
	}
	trainer.visit(c.base + "/classes")
	shows(trainer, "class list", `tr[data-test=class-row]`, className)
	trainer.visit(c.base + "/classes/" + cid)
	trainer.waitFor(`table[data-test=class-board]`)
	eval[bool](trainer, `(window.maillabBoardMark = true)`)

	// The first trainee answers with a hostile fix.
	row := eval[map[string]string](trainer, fmt.Sprintf(`(() => { const r = [...document.querySelectorAll('tr[data-test=trainee-row]')].find(r => r.dataset.trainee === %q); return {link: r.querySelector('a[data-test=trainee-link]').href, ticket: r.querySelector('td[data-test=ticket-cell]').dataset.ticket} })()`, names[0]))
	fix := `=cmd|' /C calc'!A0 ` + payloadImg + `</textarea>` + payloadScript
	trainee := b.incognito("trainee")
	trainee.visit(row["link"])
	shows(trainee, "trainee home", `body`, names[0])
	clean(trainee, "trainee home")
	trainee.click(fmt.Sprintf(`a[data-test=ticket-link][data-ticket=%q]`, row["ticket"]))
	trainee.setValue(`form[data-test=answer-form] select[name=code]`, "AUTH_FAILED")
	trainee.setValue(`form[data-test=answer-form] textarea[name=fix]`, fix)
	trainee.click(`button[data-test=submit-answer]`)
	trainee.waitFor(`[data-test=result]`)
	clean(trainee, "trainee's answered ticket")

	trainer.until("the answered cell, live", cellSel(row["ticket"])+`.dataset.status === 'answered'`, wait)
	if !eval[bool](trainer, `window.maillabBoardMark === true`) {
		t.Errorf("board: reloaded; want the live update")
	}
	clean(trainer, "class board after the live update")

	trainer.click(`a[data-test=debrief-link]`)
	trainer.waitFor(`tr[data-test=debrief-answer]`)
	shows(trainer, "debrief", `tr[data-test=debrief-answer]`, fix)
	shows(trainer, "debrief", `tr[data-test=debrief-answer]`, names[0])
	clean(trainer, "debrief")

	text := eval[string](trainer, `fetch('/api/v1/classes/`+cid+`/results.csv').then(r => r.text())`)
	rows, err := csv.NewReader(strings.NewReader(text)).ReadAll()
	if err != nil {
		t.Fatalf("results.csv: %v\n%s", err, text)
	}
	for _, r := range rows[1:] {
		for i, cell := range r {
			if cell != "" && strings.ContainsRune("=+-@\t\r", rune(cell[0])) {
				t.Errorf("results.csv row %q: cell %d %q starts a formula", r, i, cell)
			}
		}
		if r[0] == "'"+names[1] && len(r) < 6 {
			t.Errorf("results.csv row %q too short", r)
		}
	}
	if !strings.Contains(text, "'"+strings.ReplaceAll(names[1], `"`, `""`)) || !strings.Contains(text, "'"+strings.ReplaceAll(fix, `"`, `""`)) {
		t.Errorf("results.csv lacks the quoted formula name or fix:\n%s", text)
	}
}

// TestErrorPageHeaders: the console's error pages (404, 401, a wrong
// token, a trainee's unknown key) are HTML with the console's CSP and
// nosniff, so a reflected path cannot run either.
func TestErrorPageHeaders(t *testing.T) {
	c := startConsole(t)
	paths := []struct {
		path   string
		status int
	}{
		{"/no-such-page-" + payloadImg, http.StatusNotFound},
		{"/labs", http.StatusUnauthorized},
		{"/?token=" + payloadScript, http.StatusUnauthorized},
		{"/t/" + payloadImg, http.StatusNotFound},
		{"/t/nokey/tickets/" + payloadImg, http.StatusNotFound},
	}
	for _, p := range paths {
		req, err := http.NewRequest(http.MethodGet, c.base+"/", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.URL.Opaque = ""
		req.URL.RawPath = ""
		req.URL.Path = strings.SplitN(p.path, "?", 2)[0]
		if q := strings.SplitN(p.path, "?", 2); len(q) == 2 {
			req.URL.RawQuery = "token=" + strings.ReplaceAll(strings.TrimPrefix(q[1], "token="), `"`, "%22")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", p.path, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		h := resp.Header
		if resp.StatusCode != p.status {
			t.Errorf("GET %s = %d, want %d", p.path, resp.StatusCode, p.status)
		}
		if ct := h.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
			t.Errorf("GET %s: Content-Type %q, want text/html", p.path, ct)
		}
		if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "default-src 'self'") {
			t.Errorf("GET %s: CSP %q, want the console's", p.path, csp)
		}
		if h.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: no X-Content-Type-Options nosniff", p.path)
		}
		if strings.Contains(string(body), "<img src=x") || strings.Contains(string(body), "<script>window") {
			t.Errorf("GET %s: the body reflects the markup unescaped:\n%s", p.path, body)
		}
	}

	// The API's errors may name what they were given; a browser opening
	// one must not render it: JSON with nosniff.
	for _, p := range []struct {
		path   string
		token  bool
		status int
	}{
		{"/api/v1/labs/" + url.PathEscape(payloadImg), true, http.StatusNotFound},
		{"/api/v1/classes/" + url.PathEscape(payloadScript), true, http.StatusNotFound},
		{"/api/v1/trainee/" + url.PathEscape(payloadImg), false, http.StatusNotFound},
		{"/api/v1/labs", false, http.StatusUnauthorized},
	} {
		req, err := http.NewRequest(http.MethodGet, c.base+p.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if p.token {
			req.Header.Set("Authorization", "Bearer "+c.token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", p.path, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != p.status {
			t.Errorf("GET %s = %d, want %d: %s", p.path, resp.StatusCode, p.status, body)
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: Content-Type %q nosniff %q, want JSON with nosniff (body %s)", p.path, ct, resp.Header.Get("X-Content-Type-Options"), body)
		}
	}
}
