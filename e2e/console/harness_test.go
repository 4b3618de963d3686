//go:build e2e

package console

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	cdpruntime "github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/maillab/maillab/serve"
	"github.com/maillab/maillab/settings"
)

// wait bounds every wait for an element or a condition in the browser; a
// page that never shows what the test looks for fails the test after it
// with the selector and what the page says.
const wait = 30 * time.Second

// need returns the path of a Debian client, or skips the test with the
// package to install (fails it when CI=true: CI installs every client).
func need(t *testing.T, names []string, pkg string) string {
	t.Helper()
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	msg := fmt.Sprintf("%s not found (Debian package %s)", names[0], pkg)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + "; CI=true requires every client")
	}
	t.Skip(msg)
	return ""
}

// chromium returns Debian's Chromium (MAILLAB_CHROMIUM overrides).
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("MAILLAB_CHROMIUM"); p != "" {
		return p
	}
	return need(t, []string{"chromium", "chromium-browser"}, "chromium")
}

// console is an in-process `maillab serve` on 127.0.0.1:0 with a data
// directory of its own, its HTTP server and the URL serve prints.
type console struct {
	srv   *serve.Server
	hs    *http.Server
	base  string // http://127.0.0.1:PORT
	token string
}

// startConsole starts serve as `maillab serve` does (serve.New, its
// Handler on a loopback listener) and stops it when the test ends.
func startConsole(t *testing.T) *console {
	t.Helper()
	srv, err := serve.New(serve.Options{DataDir: t.TempDir(), MaxLabs: 40, CloseGrace: 100 * time.Millisecond})
	if err != nil {
		t.Fatalf("serve.New: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		srv.Close()
		t.Fatal(err)
	}
	c := &console{srv: srv, token: srv.Token(), base: "http://" + ln.Addr().String(),
		hs: &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}}
	go c.hs.Serve(ln)
	t.Cleanup(func() {
		// Close, not Shutdown: the pages' EventSource streams never end.
		c.hs.Close()
		if err := srv.Close(); err != nil {
			t.Errorf("serve Close: %v", err)
		}
	})
	return c
}

// printedURL is the console URL as serve prints it.
func (c *console) printedURL() string { return c.base + "/?token=" + c.token }

// api calls the admin API with the token and decodes the JSON answer
// into v (nil: the body is returned only).
func (c *console) api(t *testing.T, method, path string, v any) []byte {
	t.Helper()
	return c.send(t, method, path, nil, v, true)
}

// send calls an endpoint with a JSON body (nil: none), with the token or
// without (the trainee API), and decodes the answer into v.
func (c *console) send(t *testing.T, method, path string, body, v any, token bool) []byte {
	t.Helper()
	var r io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, c.base+path, r)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	return do(t, req, v)
}

// public calls an endpoint without the token (the trainee API).
func (c *console) public(t *testing.T, path string, v any) []byte {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, c.base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	return do(t, req, v)
}

func do(t *testing.T, req *http.Request, v any) []byte {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	if resp.StatusCode/100 != 2 {
		t.Fatalf("%s %s = %s: %s", req.Method, req.URL.Path, resp.Status, body)
	}
	if v != nil {
		if err := json.Unmarshal(body, v); err != nil {
			t.Fatalf("%s %s: decode %s: %v", req.Method, req.URL.Path, body, err)
		}
	}
	return body
}

// browser is one headless Chromium for a test. Tabs made with tab share
// its default browser context (cookies); incognito makes a context of its
// own, as a second person's browser.
type browser struct {
	t   *testing.T
	ctx context.Context
}

// startBrowser starts Chromium headless (no sandbox as root: Chromium's
// sandbox refuses to run as root) with a fresh profile.
func startBrowser(t *testing.T) *browser {
	t.Helper()
	exe := chromium(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
		chromedp.DisableGPU,
	)
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox)
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start %s: %v", exe, err)
	}
	return &browser{t: t, ctx: ctx}
}

// open makes the tab of a new chromedp context. Its first Run must have
// no deadline: the tab lives as long as the context of that call.
//
// Every uncaught script exception and every error the page logs from
// its scripts or its security policy (a Content-Security-Policy
// violation) fails the test when it ends: a console whose app.js stops
// at load still renders its HTML, and only this notices.
func (b *browser) open(ctx context.Context, name string) *window {
	b.t.Helper()
	if err := chromedp.Do(ctx); err != nil {
		b.t.Fatalf("%s: open a tab: %v", name, err)
	}
	var mu sync.Mutex
	var problems []string
	report := func(s string) {
		mu.Lock()
		problems = append(problems, s)
		mu.Unlock()
	}
	go func() {
		for ev, err := range chromedp.Events(ctx, cdpruntime.ExceptionThrown) {
			if err != nil {
				return
			}
			d := ev.ExceptionDetails
			text := d.Text
			if d.Exception != nil && d.Exception.Description != "" {
				text += " " + d.Exception.Description
			}
			report(fmt.Sprintf("uncaught exception at %s:%d: %s", d.URL, d.LineNumber+1, text))
		}
	}()
	go func() {
		for ev, err := range chromedp.Events(ctx, cdplog.EntryAdded) {
			if err != nil {
				return
			}
			e := ev.Entry
			if e.Level == cdplog.EntryLevelError && (e.Source == cdplog.EntrySourceJavascript || e.Source == cdplog.EntrySourceSecurity) {
				report(fmt.Sprintf("%s error at %s: %s", e.Source, e.URL, e.Text))
			}
		}
	}()
	b.t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		if len(problems) > 0 {
			b.t.Errorf("%s: the page reported %d script or security errors:\n%s", name, len(problems), strings.Join(problems, "\n"))
		}
	})
	return &window{t: b.t, ctx: ctx, name: name}
}

// window is one tab.
type window struct {
	t    *testing.T
	ctx  context.Context
	name string // for failure messages: "trainer", "trainee Ann"
}

// tab opens a tab in the browser's default context.
func (b *browser) tab(name string) *window {
	ctx, cancel := chromedp.NewContext(b.ctx)
	b.t.Cleanup(cancel)
	return b.open(ctx, name)
}

// incognito opens a tab in a new browser context: no cookie of the
// other tabs.
func (b *browser) incognito(name string) *window {
	ctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithNewBrowserContext())
	b.t.Cleanup(cancel)
	return b.open(ctx, name)
}

// do runs actions with the wait bound.
func (p *window) do(actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, wait)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.t.Fatalf("%s: %v\n%s", p.name, err, p.describe())
	}
}

// visit navigates to a URL and waits for the page to load.
func (p *window) visit(u string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, wait)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(u)); err != nil {
		p.t.Fatalf("%s: open %s: %v\n%s", p.name, u, err, p.describe())
	}
}

// status navigates and returns the HTTP status of the page (no redirect).
func (p *window) status(u string) int64 {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, wait)
	defer cancel()
	resp, err := chromedp.Run(ctx, chromedp.NavigateResponse(u))
	if err != nil {
		p.t.Fatalf("%s: open %s: %v", p.name, u, err)
	}
	if resp == nil {
		return 0
	}
	return resp.Status
}

// describe is the page's address and the start of its text, for a
// failure message.
func (p *window) describe() string {
	ctx, cancel := context.WithTimeout(p.ctx, 3*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`location.href + "\n" + (document.body ? document.body.innerText : "").slice(0, 600)`))
	if err != nil {
		return "(page unreadable: " + err.Error() + ")"
	}
	return "page " + s
}

// waitFor waits until an element matches the CSS selector. The console
// not being merged (or a page lacking the element) fails here with the
// selector named.
func (p *window) waitFor(sel string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, wait)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.WaitReady(chromedp.CSS(sel))); err != nil {
		p.t.Fatalf("%s: no element %s within %v: %v\n%s", p.name, sel, wait, err, p.describe())
	}
}

// eval evaluates a JavaScript expression and decodes its value.
func eval[T any](p *window, expr string) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, wait)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		p.t.Fatalf("%s: evaluate %s: %v\n%s", p.name, expr, err, p.describe())
	}
	return v
}

// until polls a JavaScript condition (every 25 ms) until it is true or
// the timeout; it returns how long it took.
func (p *window) until(what, cond string, timeout time.Duration) time.Duration {
	p.t.Helper()
	start := time.Now()
	for {
		ok := eval[bool](p, "!!("+cond+")")
		if ok {
			return time.Since(start)
		}
		if time.Since(start) > timeout {
			p.t.Fatalf("%s: %s not seen within %v (condition %s)\n%s", p.name, what, timeout, cond, p.describe())
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// click clicks the first element matching the CSS selector.
func (p *window) click(sel string) {
	p.t.Helper()
	p.waitFor(sel)
	p.do(chromedp.Click(chromedp.CSS(sel)))
}

// setValue sets a form field's value (input, textarea, select).
func (p *window) setValue(sel, value string) {
	p.t.Helper()
	p.waitFor(sel)
	p.do(chromedp.SetValue(chromedp.CSS(sel), value))
}

// location is the page's URL.
func (p *window) location() *url.URL {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, wait)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		p.t.Fatalf("%s: location: %v", p.name, err)
	}
	u, err := url.Parse(s)
	if err != nil {
		p.t.Fatalf("%s: location %q: %v", p.name, s, err)
	}
	return u
}

// frameEval evaluates an expression (of window and document) inside the
// iframe whose URL ends with suffix. A sandboxed frame has an opaque
// origin, so Chromium runs it as a target of its own, which the page's
// script cannot reach, but DevTools can. A frame that is not sandboxed
// (a broken console) runs in the page's process: then the expression is
// applied to the frame's window and document from the page.
func frameEval[T any](p *window, suffix, expr string) T {
	p.t.Helper()
	deadline := time.Now().Add(wait)
	for {
		infos, err := chromedp.Targets(p.ctx)
		if err != nil {
			p.t.Fatalf("%s: targets: %v", p.name, err)
		}
		for _, info := range infos {
			if info.Type != "iframe" || !strings.HasSuffix(info.URL, suffix) {
				continue
			}
			// Detach on cancel: closing an iframe's target closes its page.
			fctx, cancel := chromedp.NewContext(p.ctx, chromedp.WithTargetID(info.TargetID), chromedp.WithDetachOnCancel())
			var v T
			err := chromedp.Do(fctx) // attach, with no deadline
			if err == nil {
				tctx, tcancel := context.WithTimeout(fctx, wait)
				v, err = chromedp.Run(tctx, chromedp.Evaluate[T](expr))
				tcancel()
			}
			cancel()
			if err != nil {
				p.t.Fatalf("%s: evaluate %s in the frame %s: %v", p.name, expr, info.URL, err)
			}
			return v
		}
		sameProcess := fmt.Sprintf(`(() => {
			const f = [...document.querySelectorAll('iframe')].find(f => f.src.endsWith(%q));
			return !!(f && f.contentDocument && f.contentDocument.readyState === 'complete' && f.contentDocument.URL.endsWith(%q));
		})()`, suffix, suffix)
		if eval[bool](p, sameProcess) {
			p.t.Errorf("%s: the frame %s runs in the page's process: it is not sandboxed", p.name, suffix)
			return eval[T](p, fmt.Sprintf(`((window, document) => (%s))(...(f => [f.contentWindow, f.contentDocument])([...document.querySelectorAll('iframe')].find(f => f.src.endsWith(%q))))`, expr, suffix))
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s: no iframe ending in %s within %v (have %d targets)", p.name, suffix, wait, len(infos))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// traineeCurl is the trainee's curl: it reads the ticket's customer
// settings and CA over the trainee API (no token), resolves the IMAPS
// host through the lab's DNS and lists the mailboxes as the customer's
// account.
func traineeCurl(t *testing.T, c *console, curl, key, tid string) (exit int, out string) {
	t.Helper()
	var st settings.Settings
	c.public(t, "/api/v1/trainee/"+key+"/tickets/"+tid+"/settings.json", &st)
	ca := writeFile(t, "ca.pem", c.public(t, "/api/v1/trainee/"+key+"/tickets/"+tid+"/ca.pem", nil))
	svc, ok := st.Services["imaps"]
	if !ok || len(st.Accounts) == 0 || st.Resolver == "" {
		t.Fatalf("ticket %s: settings.json has no imaps service, account or resolver: %+v", tid, st)
	}
	ip := resolve(t, st.Resolver, svc.Host)
	acct := st.Accounts[0]
	return run(t, 20*time.Second, curl, "-sS", "-v", "--connect-timeout", "3", "--max-time", "10",
		"--resolve", fmt.Sprintf("%s:%d:%s", svc.Host, svc.Port, ip), "--cacert", ca,
		"-u", acct.Username+":"+acct.Password, fmt.Sprintf("imaps://%s:%d/", svc.Host, svc.Port))
}

// run runs a client and returns its exit code and combined output.
func run(t *testing.T, timeout time.Duration, name string, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, string(out)
	case errors.As(err, &ee):
		return ee.ExitCode(), string(out)
	}
	t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	return 0, ""
}

// resolve looks a host name up through the lab's DNS server, as a
// trainee would with dig @127.0.0.1 -p PORT.
func resolve(t *testing.T, dnsAddr, host string) string {
	t.Helper()
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, dnsAddr)
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	addrs, err := r.LookupHost(ctx, host)
	if err != nil || len(addrs) == 0 {
		t.Fatalf("resolve %s through the lab DNS %s: %v", host, dnsAddr, err)
	}
	return addrs[0]
}

// writeFile writes data under the test's temporary directory.
func writeFile(t *testing.T, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
