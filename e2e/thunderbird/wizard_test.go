//go:build e2e

package thunderbird

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/maillab/maillab/lab"
	"github.com/maillab/maillab/scenarios"
)

// forcePort is network.socket.forcePort for a lab: Thunderbird's wizard
// dials the standard ports (443 and 80 for autoconfig and Autodiscover,
// 993, 587 ... for its guesses and its check of the configuration), and
// Necko's port remapping sends each to the lab's free port of the same
// service. Format: "FROM=TO" entries separated by ";".
func forcePort(r *scenarios.Running) string {
	s := r.Lab.Settings()
	var parts []string
	if d := s.Discovery; d != nil {
		parts = append(parts, fmt.Sprintf("443=%d", d.HTTPSPort), fmt.Sprintf("80=%d", d.HTTPPort))
	}
	for name, std := range lab.StandardPorts {
		if svc, ok := s.Services[name]; ok && std != 53 {
			parts = append(parts, fmt.Sprintf("%d=%d", std, svc.Port))
		}
	}
	sort.Strings(parts)
	return strings.Join(parts, ";")
}

// wizardPrefs is the user.js of a profile with no mail account (only
// Local Folders), whose network reaches the lab: the standard ports go to
// the lab's (network.socket.forcePort), and, unless address is "" (names
// resolve through a hosts file of the lab's, see labHosts), every name
// resolves to the lab's address (network.dns.forceResolve). Autoconfig from the provider
// is on (the suite's other profiles turn it off); the ISP database on the
// internet is not asked (mailnews.auto_config_url empty), as a machine
// offline would not reach it.
func wizardPrefs(address, ports string) string {
	var b strings.Builder
	pref := func(name string, v any) {
		switch v := v.(type) {
		case string:
			q, _ := json.Marshal(v)
			fmt.Fprintf(&b, "user_pref(%q, %s);\n", name, q)
		default:
			fmt.Fprintf(&b, "user_pref(%q, %v);\n", name, v)
		}
	}
	pref("mail.accountmanager.accounts", "account1")
	pref("mail.accountmanager.localfoldersserver", "server1")
	pref("mail.account.account1.server", "server1")
	pref("mail.server.server1.type", "none")
	pref("mail.server.server1.hostname", "Local Folders")
	pref("mail.server.server1.name", "Local Folders")
	pref("mail.server.server1.userName", "nobody")
	q := quietPrefs()
	q["mailnews.auto_config.fetchFromISP.enabled"] = true
	for name, v := range q {
		pref(name, v)
	}
	pref("mailnews.auto_config_url", "")
	if address != "" {
		pref("network.dns.forceResolve", address)
	}
	pref("network.socket.forcePort", ports)
	pref("marionette.port", 0)
	pref("marionette.prefs.recommended", false)
	return b.String()
}

// writeWizardProfile makes a fresh profile in dir for the account wizard:
// user.js and an NSS database that trusts the lab CA.
func writeWizardProfile(ctx context.Context, dir string, tools map[string]string, prefs, caFile string) error {
	if err := os.WriteFile(filepath.Join(dir, "user.js"), []byte(prefs), 0o600); err != nil {
		return err
	}
	db := "sql:" + dir
	for _, args := range [][]string{
		{"-N", "-d", db, "--empty-password"},
		{"-A", "-d", db, "-n", "maillab lab CA", "-t", "C,,", "-i", caFile},
	} {
		if out, err := exec.CommandContext(ctx, tools["certutil"], args...).CombinedOutput(); err != nil {
			return fmt.Errorf("certutil %s: %w: %s", strings.Join(args, " "), err, out)
		}
	}
	return nil
}

// labHosts writes a hosts file of every name the lab's DNS answers with
// an address, asked as the customer's resolver would be (faults that
// rewrite or deny answers included), so that Thunderbird, whose DNS cannot
// be pointed at a resolver on a free port, resolves each name as the lab
// does: the web hoster's and the stranger's names to their own addresses.
// Names the lab denies are left out and do not resolve.
func labHosts(r *scenarios.Running, path string) error {
	s := r.Lab.Settings()
	names := make([]string, 0, len(r.Lab.DNS.Zones))
	for name := range r.Lab.DNS.Zones {
		names = append(names, name)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString("127.0.0.1 localhost\n")
	for _, name := range names {
		if strings.HasPrefix(name, "_") {
			continue
		}
		m := new(dns.Msg)
		m.SetQuestion(dns.Fqdn(name), dns.TypeA)
		in, err := dns.Exchange(m, s.Resolver)
		if err != nil {
			return fmt.Errorf("ask the lab's DNS for %s: %w", name, err)
		}
		for _, rr := range in.Answer {
			if a, ok := rr.(*dns.A); ok {
				fmt.Fprintf(&b, "%s %s\n", a.A, strings.TrimSuffix(name, "."))
			}
		}
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

// hostsWrap is the command prefix that runs Thunderbird in a mount
// namespace of its own with hosts bound over /etc/hosts (root, util-linux
// unshare); nil when this machine cannot.
func hostsWrap(hosts string) []string {
	wrap := []string{"unshare", "-m", "sh", "-c", `mount --bind "$0" /etc/hosts && exec "$@"`, hosts}
	if err := exec.Command(wrap[0], append(wrap[1:], "true")...).Run(); err != nil {
		return nil
	}
	return wrap
}

// hubStateScript reads the Account Hub: the visible subview (its id) and
// its visible text, shadow roots included, in document order.
const hubStateScript = `
const w = Services.wm.getMostRecentWindow("mail:3pane");
const container = w.document.querySelector("account-hub-container");
const dialog = container && container.shadowRoot && container.shadowRoot.querySelector("dialog");
if (!dialog || !dialog.open) return {open: false, subview: "", text: []};
const text = [];
function visible(el) { return el.checkVisibility ? el.checkVisibility() : true; }
function walk(node) {
  for (const c of node.childNodes) {
    if (c.nodeType === 3) {
      const t = c.textContent.replace(/\s+/g, " ").trim();
      if (t && c.parentElement && visible(c.parentElement)) text.push(t);
      continue;
    }
    if (c.nodeType !== 1 || !visible(c)) continue;
    if (c.localName === "input" && c.type !== "hidden" && c.type !== "password" && c.value) text.push("[" + (c.id || c.name) + "=" + c.value + "]");
    if (c.shadowRoot) walk(c.shadowRoot);
    walk(c);
  }
}
walk(dialog);
let subview = "";
for (const el of dialog.querySelectorAll("[id$=Subview]")) { if (visible(el)) subview = el.id; }
return {open: true, subview, text};
`

// hubActScript acts in the Account Hub as a user would: "fill" types the
// name and address (input events, as keystrokes make), "password" the
// password, "forward" presses Continue (or whatever the forward button
// of the visible step says).
const hubActScript = `
const [action, a1, a2] = arguments;
return (async () => {
const w = Services.wm.getMostRecentWindow("mail:3pane");
if (action === "open") { await w.openAccountHub("MAIL"); return "opened"; }
const dialog = w.document.querySelector("account-hub-container").shadowRoot.querySelector("dialog");
function visible(el) { return el.checkVisibility ? el.checkVisibility() : true; }
function set(input, value) {
  input.focus();
  input.value = value;
  input.dispatchEvent(new w.InputEvent("input", {bubbles: true, composed: true}));
  input.dispatchEvent(new w.Event("change", {bubbles: true}));
}
function find(sel) {
  for (const el of dialog.querySelectorAll(sel)) if (visible(el)) return el;
  return null;
}
switch (action) {
case "fill":
  set(find("#realName"), a1);
  set(find("#email"), a2);
  return "filled";
case "password": {
  const p = find("input[type=password]");
  if (!p) return "no password field";
  set(p, a1);
  return "password";
}
case "forward": {
  const b = find("#forward");
  if (!b) return "no forward button";
  if (b.disabled) return "forward disabled";
  b.click();
  return "clicked " + b.textContent.trim();
}
}
return "unknown action " + action;
})();
`

// hubState is what hubStateScript returns.
type hubState struct {
	Open    bool     `json:"open"`
	Subview string   `json:"subview"`
	Text    []string `json:"text"`
}

func (h hubState) String() string { return h.Subview + ": " + strings.Join(h.Text, " | ") }

// wizardRun is one drive through the Account Hub.
type wizardRun struct {
	t     *testing.T
	s     *session
	ctx   context.Context
	steps []string // every distinct state seen, in order
	last  hubState
}

func (w *wizardRun) act(action string, args ...any) string {
	w.t.Helper()
	var out string
	ctx, cancel := context.WithTimeout(w.ctx, 30*time.Second)
	defer cancel()
	if err := w.s.mario.executeArgs(ctx, hubActScript, append([]any{action}, args...), &out); err != nil {
		w.t.Fatalf("account hub %s: %v", action, err)
	}
	w.steps = append(w.steps, "> "+action+": "+out)
	return out
}

func (w *wizardRun) state() hubState {
	var h hubState
	ctx, cancel := context.WithTimeout(w.ctx, 10*time.Second)
	defer cancel()
	if err := w.s.mario.execute(ctx, hubStateScript, &h); err != nil {
		w.t.Logf("account hub state: %v", err)
		return w.last
	}
	if h.String() != w.last.String() {
		w.steps = append(w.steps, h.String())
	}
	w.last = h
	return h
}

// waitFor polls the hub until done says so or limit passes; it returns
// the last state.
func (w *wizardRun) waitFor(limit time.Duration, done func(h hubState) bool) hubState {
	deadline := time.Now().Add(limit)
	for {
		h := w.state()
		if done(h) || time.Now().After(deadline) {
			return h
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// hubCase is one set-up scenario run through Thunderbird's Account Hub
// with nothing but a name, the address and the password.
type hubCase struct {
	scenario string
	// found is what the "settings found" step must show.
	found []string
	// end is the text of the step the hub ends on after the password;
	// endView its subview.
	end     string
	endView string
	// transcript is what the lab must have seen.
	transcript []string
	// ownHosts: the story needs names at addresses other than the lab's
	// main one; without a hosts file of its own the case skips.
	ownHosts bool
}

// Texts of Thunderbird 153.8.0esr's Account Hub, verified by this test.
const (
	hubFound     = "Account settings found automatically."
	hubAuthError = "Authentication error."
	hubSuccess   = "emailAddedSuccessSubview"
)

var hubCases = []hubCase{
	{scenario: "healthy",
		found:      []string{hubFound, "mail.example.test", "SSL/TLS", "alice@example.test"},
		endView:    hubSuccess,
		transcript: []string{"C: GET https://autoconfig.example.test/mail/config-v1.1.xml?emailaddress=alice%40example.test", "PLAIN authentication successful"}},
	// The stale document is believed: IMAP without encryption, and the
	// server refuses the login there.
	{scenario: "autoconfig-stale",
		found:      []string{hubFound, "mail.example.test", "No Encryption"},
		end:        hubAuthError,
		transcript: []string{"C: GET https://autoconfig.example.test/mail/config-v1.1.xml?emailaddress=alice%40example.test", "LOGINDISABLED"}},
	// Thunderbird falls back to http:// (fetchFromISP.sslOnly is false):
	// it finds the document Outlook cannot.
	{scenario: "autoconfig-http-only",
		found:      []string{hubFound, "mail.example.test", "SSL/TLS"},
		endView:    hubSuccess,
		transcript: []string{"C: GET http://autoconfig.example.test/mail/config-v1.1.xml?emailaddress=alice%40example.test", "PLAIN authentication successful"}},
	// Thunderbird's own Autodiscover meets the loop, but the autoconfig
	// document wins.
	{scenario: "autodiscover-loop",
		found:      []string{hubFound, "mail.example.test", "SSL/TLS"},
		endView:    hubSuccess,
		transcript: []string{"C: POST https://example.test/autodiscover/autodiscover.xml", "C: GET https://autoconfig.example.test/mail/config-v1.1.xml", "PLAIN authentication successful"}},
	// No documents: Thunderbird does not read the SRV records (naming
	// mail.hosting.test) and guesses imap./smtp.example.test on the
	// standard ports, which the certificate names.
	// Nothing published: Thunderbird's guess of imap.example.test meets
	// the web hoster's certificate and is dropped
	// (mailnews.auto_config.guess.requireGoodCert); its guess of
	// mail.example.test on the standard ports works.
	{scenario: "setup-nothing-published", ownHosts: true,
		found:      []string{hubFound, "mail.example.test", "993", "465", "SSL/TLS"},
		endView:    hubSuccess,
		transcript: []string{"(webhost.test)", "PLAIN authentication successful"}},
	// The redirect to the stranger is Autodiscover's; Thunderbird's
	// autoconfig lookup wins before it.
	{scenario: "autodiscover-foreign", ownHosts: true,
		found:      []string{hubFound, "mail.example.test", "SSL/TLS"},
		endView:    hubSuccess,
		transcript: []string{"C: GET https://autoconfig.example.test/mail/config-v1.1.xml", "PLAIN authentication successful"}},
	{scenario: "srv-target-mismatch",
		found:      []string{hubFound, "imap.example.test", "993", "smtp.example.test", "465", "SSL/TLS"},
		endView:    hubSuccess,
		transcript: []string{"PLAIN authentication successful"}},
}

// TestThunderbirdAccountHub drives Thunderbird's own account set-up, the
// Account Hub of Thunderbird 153, for the set-up scenarios: a profile
// without mail account, the lab's address and ports forced (see
// wizardPrefs), a name, the address and the password typed in, and
// Continue until the hub stops. It asserts what the hub showed when it
// found the settings and where it ended, and what the lab saw; every case
// keeps two screenshots (hub-found.png, hub-end.png).
//
// Names resolve as the lab's DNS answers them through a hosts file bound
// over /etc/hosts in a mount namespace of Thunderbird's own (root); where
// that is not possible, every name goes to the lab's main address
// (network.dns.forceResolve) and the cases whose story needs other
// addresses (the web hoster on 127.0.0.4, the stranger on 127.0.0.5)
// skip.
func TestThunderbirdAccountHub(t *testing.T) {
	tools := requireTools(t)
	for _, c := range hubCases {
		t.Run(c.scenario, func(t *testing.T) {
			t.Parallel()
			runHubCase(t, c, tools)
		})
	}
}

func runHubCase(t *testing.T, c hubCase, tools map[string]string) {
	ctx, cancel := context.WithTimeout(context.Background(), startBudget+3*time.Minute)
	defer cancel()
	sc, err := scenarios.Lookup(c.scenario)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	r, err := sc.Start(lab.Options{Dir: filepath.Join(dir, "lab")})
	if err != nil {
		t.Fatalf("start %s: %v", c.scenario, err)
	}
	t.Cleanup(func() { r.Close() })
	profile := filepath.Join(dir, "profile")
	if err := os.Mkdir(profile, 0o700); err != nil {
		t.Fatal(err)
	}
	hosts := filepath.Join(dir, "hosts")
	if err := labHosts(r, hosts); err != nil {
		t.Fatal(err)
	}
	wrap, address := hostsWrap(hosts), ""
	if wrap == nil {
		if c.ownHosts {
			t.Skip("needs names at several addresses: a hosts file of its own (unshare -m, mount --bind; root) is not possible here, and network.dns.forceResolve sends every name to one address")
		}
		address = r.Lab.Primary.AdvertisedIP
	}
	if err := writeWizardProfile(ctx, profile, tools, wizardPrefs(address, forcePort(r)), r.Customer.CAFile); err != nil {
		t.Fatalf("profile: %v", err)
	}
	s, err := startSessionWrapped(ctx, dir, profile, tools, wrap)
	if err != nil {
		t.Fatal(err)
	}
	defer s.stop()
	w := &wizardRun{t: t, s: s, ctx: ctx}
	shot := func(name string) {
		path := filepath.Join(dir, name+".png")
		if err := s.disp.screenshot(path); err != nil {
			t.Errorf("screenshot: %v", err)
			return
		}
		if out := os.Getenv("MAILLAB_TB_SHOTS"); out != "" {
			data, _ := os.ReadFile(path)
			os.WriteFile(filepath.Join(out, "thunderbird-"+name+"-"+c.scenario+".png"), data, 0o644)
		}
		t.Logf("screenshot: %s", path)
	}
	defer func() {
		t.Logf("account hub, step by step:\n%s", strings.Join(w.steps, "\n"))
		if t.Failed() {
			data, _ := os.ReadFile(filepath.Join(r.Lab.Dir, "lab.log"))
			t.Logf("lab transcript:\n%s", data)
		}
	}()
	// A profile without mail account opens the hub by itself; open it
	// if it has not.
	if h := w.waitFor(15*time.Second, func(h hubState) bool { return h.Open }); !h.Open {
		w.act("open")
	}
	if h := w.waitFor(30*time.Second, func(h hubState) bool { return h.Subview == "emailAutoConfigSubview" }); h.Subview != "emailAutoConfigSubview" {
		t.Fatalf("the account hub shows %q, want the address form", h)
	}
	acct := r.Lab.Settings().Account0()
	w.act("fill", "Alice Customer", acct.Email)
	if out := w.act("forward"); !strings.HasPrefix(out, "clicked") {
		t.Fatalf("Continue: %s", out)
	}
	h := w.waitFor(90*time.Second, func(h hubState) bool { return h.Subview != "" && h.Subview != "emailAutoConfigSubview" })
	// The step renders its texts a moment after it shows.
	h = w.waitFor(10*time.Second, func(h hubState) bool {
		text := strings.Join(h.Text, " | ")
		for _, f := range c.found {
			if !strings.Contains(text, f) {
				return false
			}
		}
		return true
	})
	shot("hub-found")
	if h.Subview != "emailConfigFoundSubview" {
		t.Fatalf("the account hub shows %q, want the settings found", h)
	}
	wantText(t, "the hub's settings found", strings.Join(h.Text, " | "), c.found...)
	w.act("forward")
	if h := w.waitFor(30*time.Second, func(h hubState) bool { return h.Subview == "emailPasswordSubview" }); h.Subview != "emailPasswordSubview" {
		t.Fatalf("the account hub shows %q, want the password form", h)
	}
	w.act("password", acct.Password)
	w.act("forward")
	h = w.waitFor(90*time.Second, func(h hubState) bool {
		text := strings.Join(h.Text, " | ")
		return h.Subview == hubSuccess || (c.end != "" && strings.Contains(text, c.end))
	})
	shot("hub-end")
	if c.endView != "" && h.Subview != c.endView {
		t.Errorf("the account hub ends on %q, want %s", h, c.endView)
	}
	if c.end != "" {
		wantText(t, "the hub's last step", strings.Join(h.Text, " | "), c.end)
	}
	data, _ := os.ReadFile(filepath.Join(r.Lab.Dir, "lab.log"))
	wantText(t, "lab transcript", string(data), c.transcript...)
}
