package console

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestPages renders every page against the fake API and checks the
// data-test selectors of the console contract (the browser tests rely on
// them) and what they hold.
func TestPages(t *testing.T) {
	tests := []struct {
		name, path string
		admin      bool
		want       []string          // selectors that must match at least once
		text       map[string]string // selector → text it must contain
	}{
		{"board", "/", true, []string{
			"a[data-test=nav-board]", "a[data-test=nav-labs][href=/labs]", "a[data-test=nav-classes]",
			"section[data-test=section][data-section=4] [data-test=scenario-card][data-scenario=expired-cert] form[data-test=start-lab] input[name=scenario][value=expired-cert]",
			"section[data-test=section][data-section=3] [data-test=scenario-card][data-scenario=wrong-password]",
			"section[data-test=section][data-section=–] [data-test=scenario-card][data-scenario=mailbox-full]",
			"form[data-test=start-healthy][action=/labs]",
		}, map[string]string{"[data-scenario=expired-cert]": "TLS_CERT_EXPIRED", "[data-test=section][data-section=4]": "SSL/TLS"}},
		{"labs", "/labs", true, []string{"tr[data-test=lab-row][data-lab=lab1] a[href=/labs/lab1]"}, nil},
		{"lab view", "/labs/lab1", true, []string{
			"[data-test=settings-card] a[data-test=ca-download][href=/api/v1/labs/lab1/ca.pem]",
			"[data-test=transcript] [data-test=transcript-line][data-seq=2][data-service=submission][data-kind=transcript][data-dir=C]",
			"[data-test=transcript-line][data-seq=3][data-kind=fault][class=hl]",
			"[data-test=transcript-line][data-seq=4][data-kind=auth][class=hl]",
			"select[data-test=transcript-filter] option[value=submission]",
			"select[data-test=transcript-filter] option[value=imaps]",
			"[data-test=fault-panel] [data-test=fault-row][data-fault=f1] form[data-test=fault-remove][action=/labs/lab1/faults/f1/delete]",
			"form[data-test=fault-add] select[name=type] option[value=expired-certificate]",
			"form[data-test=diagnose][action=/labs/lab1/diagnose]",
			"form[data-test=delete-lab][action=/labs/lab1/delete]",
			"a[data-test=mailbox][href=/labs/lab1/messages]",
		}, map[string]string{"[data-test=settings-card]": "s3cret-pw", "[data-test=dns]": "127.0.0.1:5353", "[data-test=lab-story]": fakeScenarioStory}},
		{"mailbox", "/labs/lab1/messages", true, []string{
			"tr[data-test=message-row][data-message=m1] a[href=/labs/lab1/messages/m1]", "form[data-test=clear-mailbox]",
		}, map[string]string{"[data-test=message-row]": "1.2 KiB"}},
		{"message", "/labs/lab1/messages/m1", true, []string{
			"[data-test=message-headers]", "[data-test=message-text]",
			"iframe[data-test=message-html][sandbox=][src=/labs/lab1/messages/m1/html]",
			"[data-test=attachment]", "a[data-test=message-raw][href=/api/v1/labs/lab1/messages/m1/raw]",
		}, map[string]string{"[data-test=attachment]": "report.pdf", "[data-test=message-text]": "plain body"}},
		{"classes", "/classes", true, []string{"tr[data-test=class-row]", "a[data-test=new-class][href=/classes/new]"}, nil},
		{"new class", "/classes/new", true, []string{
			"form[data-test=class-form] input[name=name]", "form[data-test=class-form] textarea[name=trainees]",
			"form[data-test=class-form] input[name=count]", "input[name=scenario][value=expired-cert]",
			"select[name=assignment] option[value=all]", "select[name=assignment] option[value=random]",
			"input[name=per_trainee]", "button[data-test=create-class]",
		}, nil},
		{"class board", "/classes/c1", true, []string{
			"table[data-test=class-board] tr[data-test=trainee-row][data-trainee=Ann] a[data-test=trainee-link]",
			"td[data-test=ticket-cell][data-ticket=tk1][data-scenario=expired-cert][data-status=connected][data-result=] a[href=/labs/lab1]",
			"[data-test=ticket-cell][data-ticket=tk2][data-status=answered][data-result=right]",
			"a[data-test=export-csv][href=/api/v1/classes/c1/results.csv]", "a[data-test=export-json][href=/api/v1/classes/c1/results.json]",
			"a[data-test=debrief-link][href=/classes/c1/debrief]", "form[data-test=delete-class]",
		}, map[string]string{"[data-ticket=tk2]": "4m0s"}},
		{"debrief", "/classes/c1/debrief", true, []string{
			"section[data-test=debrief-scenario][data-scenario=expired-cert] tr[data-test=debrief-answer]",
		}, map[string]string{"[data-test=debrief-scenario]": "Thunderbird shows a certificate warning"}},
		{"trainee home", "/t/ann-key", false, []string{"a[data-test=ticket-link][data-ticket=tk1][href=/t/ann-key/tickets/tk1]"}, nil},
		{"trainee ticket", "/t/ann-key/tickets/tk1", false, []string{
			"[data-test=story]", "[data-test=settings-card]", "a[data-test=ca-download][href=/api/v1/trainee/ann-key/tickets/tk1/ca.pem]",
			"[data-test=instructions]", "form[data-test=answer-form] select[name=code] optgroup option[value=TLS_CERT_EXPIRED]",
			"form[data-test=answer-form] textarea[name=fix]", "button[data-test=submit-answer]", "form[data-test=hint]", "[data-test=hints]",
		}, map[string]string{"[data-test=instructions]": "--resolve mail.example.test:2587:${ADDR_mail_example_test:?", "[data-test=story]": fakeScenarioStory}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cl := newClient(t, tt.admin)
			resp := cl.get(tt.path)
			if resp.status != http.StatusOK {
				t.Fatalf("GET %s = %d, want 200\n%s", tt.path, resp.status, resp.body)
			}
			doc := parseHTML(t, resp.body)
			for _, sel := range tt.want {
				if len(findAll(doc, sel)) == 0 {
					t.Errorf("GET %s: no %s", tt.path, sel)
				}
			}
			for sel, want := range tt.text {
				found := findAll(doc, sel)
				if len(found) == 0 || !strings.Contains(text(found[0]), want) {
					t.Errorf("GET %s: %s does not contain %q", tt.path, sel, want)
				}
			}
			labelled := map[string]bool{}
			for _, l := range findAll(doc, "label[for]") {
				v, _ := attr(l, "for")
				labelled[v] = true
			}
			for _, tag := range []string{"input", "select", "textarea"} {
				for _, n := range findAll(doc, tag) {
					if typ, _ := attr(n, "type"); typ == "hidden" {
						continue
					}
					id, _ := attr(n, "id")
					if _, aria := attr(n, "aria-label"); !labelled[id] && !aria {
						name, _ := attr(n, "name")
						t.Errorf("GET %s: %s name=%q id=%q has no label", tt.path, tag, name, id)
					}
				}
			}
			if tt.admin != (len(findAll(doc, "a[data-test=nav-board]")) > 0) {
				t.Errorf("GET %s: the admin navigation shown = %v, want %v", tt.path, !tt.admin, tt.admin)
			}
		})
	}
}

// TestSecurityHeaders checks the CSP and the other headers on every kind
// of response: pages, errors, redirects, static files.
func TestSecurityHeaders(t *testing.T) {
	cl := newClient(t, true)
	anon := newClient(t, false)
	for _, tc := range []struct {
		name string
		cl   *client
		path string
	}{
		{"page", cl, "/labs/lab1"}, {"not found", cl, "/nowhere"}, {"no cookie", anon, "/"},
		{"trainee", anon, "/t/ann-key"}, {"trainee 404", anon, "/t/other"}, {"static", anon, "/static/app.js"},
		{"token redirect", anon, "/?token=" + testToken},
	} {
		resp := tc.cl.get(tc.path)
		if got := resp.header.Get("Content-Security-Policy"); got != CSP {
			t.Errorf("%s: GET %s: CSP = %q, want %q", tc.name, tc.path, got, CSP)
		}
		if resp.header.Get("X-Content-Type-Options") != "nosniff" || resp.header.Get("Referrer-Policy") != "no-referrer" {
			t.Errorf("%s: GET %s: X-Content-Type-Options %q, Referrer-Policy %q", tc.name, tc.path, resp.header.Get("X-Content-Type-Options"), resp.header.Get("Referrer-Policy"))
		}
	}
}

func TestStaticEmbedded(t *testing.T) {
	cl := newClient(t, false)
	for path, ctype := range map[string]string{"/static/app.js": "text/javascript", "/static/app.css": "text/css"} {
		resp := cl.get(path)
		if resp.status != http.StatusOK || !strings.HasPrefix(resp.header.Get("Content-Type"), ctype) || len(resp.body) < 100 {
			t.Errorf("GET %s = %d %q (%d bytes), want 200 %s", path, resp.status, resp.header.Get("Content-Type"), len(resp.body), ctype)
		}
		if strings.Contains(resp.body, "http://") || strings.Contains(resp.body, "https://") {
			t.Errorf("%s refers to an outside address", path)
		}
	}
}

// TestAdminNeedsCookie: no admin page (nor its data) without the token
// cookie; ?token= sets it and redirects.
func TestAdminNeedsCookie(t *testing.T) {
	paths := []string{"/", "/labs", "/labs/lab1", "/labs/lab1/messages", "/labs/lab1/messages/m1", "/labs/lab1/messages/m1/html",
		"/classes", "/classes/new", "/classes/c1", "/classes/c1/debrief"}
	for _, cookie := range []string{"", "wrong-token"} {
		cl := newClient(t, false)
		if cookie != "" {
			cl.cookie = &http.Cookie{Name: DefaultCookieName, Value: cookie}
		}
		for _, p := range paths {
			resp := cl.get(p)
			if resp.status != http.StatusUnauthorized || !strings.Contains(resp.body, "maillab serve printed") {
				t.Errorf("cookie %q: GET %s = %d, want 401 with the sign-in explanation", cookie, p, resp.status)
			}
			if strings.Contains(resp.body, "s3cret-pw") || strings.Contains(resp.body, "Monday group") || strings.Contains(resp.body, "html body") {
				t.Errorf("cookie %q: GET %s shows admin data", cookie, p)
			}
		}
		if n := len(cl.api.calls()); n != 0 {
			t.Errorf("cookie %q: the console called the API %d times for a visitor without the token: %v", cookie, n, cl.api.calls())
		}
		resp := cl.post("/labs", url.Values{"scenario": {"expired-cert"}, "csrf": {cl.adminCSRF()}})
		if resp.status != http.StatusUnauthorized || len(cl.api.calls()) != 0 {
			t.Errorf("cookie %q: POST /labs = %d with %d API calls, want 401 and none", cookie, resp.status, len(cl.api.calls()))
		}
	}

	cl := newClient(t, false)
	resp := cl.get("/?token=" + testToken)
	if resp.status != http.StatusSeeOther || resp.header.Get("Location") != "/" {
		t.Fatalf("GET /?token= = %d Location %q, want 303 to /", resp.status, resp.header.Get("Location"))
	}
	var ck *http.Cookie
	for _, c := range (&http.Response{Header: resp.header}).Cookies() {
		if c.Name == DefaultCookieName {
			ck = c
		}
	}
	if ck == nil || ck.Value != testToken || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/" {
		t.Fatalf("cookie = %+v, want the token, HttpOnly, SameSite=Strict, Path=/", ck)
	}
	if resp := cl.get("/labs/lab1?token=" + testToken + "&x=1"); resp.header.Get("Location") != "/labs/lab1?x=1" {
		t.Errorf("GET /labs/lab1?token=&x=1 → Location %q, want /labs/lab1?x=1", resp.header.Get("Location"))
	}
	if resp := cl.get("/?token=wrong"); resp.status != http.StatusUnauthorized || len((&http.Response{Header: resp.header}).Cookies()) != 0 {
		t.Errorf("GET /?token=wrong = %d, want 401 and no cookie", resp.status)
	}
}

// TestCSRF: every POST form is refused without the form token, with a
// wrong one, with a foreign Origin or a cross-site Sec-Fetch-Site, and
// Origin: null is taken only with Sec-Fetch-Site: same-origin.
func TestCSRF(t *testing.T) {
	adminForms := []struct {
		path string
		form url.Values
	}{
		{"/labs", url.Values{"scenario": {"expired-cert"}}},
		{"/labs/lab1/delete", url.Values{}},
		{"/labs/lab1/faults", url.Values{"type": {"expired-certificate"}}},
		{"/labs/lab1/faults/f1/delete", url.Values{}},
		{"/labs/lab1/diagnose", url.Values{}},
		{"/labs/lab1/messages/clear", url.Values{}},
		{"/classes", url.Values{"name": {"x"}, "scenario": {"expired-cert"}, "count": {"2"}, "assignment": {"all"}}},
		{"/classes/c1/delete", url.Values{}},
	}
	traineeForms := []struct {
		path string
		form url.Values
	}{
		{"/t/ann-key/tickets/tk1/hints", url.Values{}},
		{"/t/ann-key/tickets/tk1/answer", url.Values{"code": {"TLS_CERT_EXPIRED"}, "fix": {"renew"}}},
	}
	type attempt struct {
		name   string
		csrf   func(cl *client, path string) string
		header map[string]string
		want   int
	}
	attempts := func(self string) []attempt {
		right := func(cl *client, path string) string {
			if strings.HasPrefix(path, "/t/") {
				return cl.c.csrfToken("trainee:ann-key")
			}
			return cl.adminCSRF()
		}
		return []attempt{
			{"no token", func(*client, string) string { return "" }, map[string]string{"Origin": self, "Sec-Fetch-Site": "same-origin"}, http.StatusForbidden},
			{"wrong token", func(*client, string) string { return strings.Repeat("0", 64) }, map[string]string{"Origin": self, "Sec-Fetch-Site": "same-origin"}, http.StatusForbidden},
			{"other scope's token", func(cl *client, path string) string {
				if strings.HasPrefix(path, "/t/") {
					return cl.adminCSRF()
				}
				return cl.c.csrfToken("trainee:ann-key")
			}, map[string]string{"Origin": self}, http.StatusForbidden},
			{"foreign origin", right, map[string]string{"Origin": "http://evil.example"}, http.StatusForbidden},
			{"cross-site fetch", right, map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": self}, http.StatusForbidden},
			{"same-site fetch", right, map[string]string{"Sec-Fetch-Site": "same-site"}, http.StatusForbidden},
			{"null origin alone", right, map[string]string{"Origin": "null"}, http.StatusForbidden},
			{"null origin same-origin fetch", right, map[string]string{"Origin": "null", "Sec-Fetch-Site": "same-origin"}, http.StatusSeeOther},
			{"same origin", right, map[string]string{"Origin": self, "Sec-Fetch-Site": "same-origin"}, http.StatusSeeOther},
			{"no browser headers", right, nil, http.StatusSeeOther},
		}
	}
	check := func(t *testing.T, path string, form url.Values) {
		for _, a := range attempts("SELF") {
			t.Run(strings.ReplaceAll(path, "/", "_")+"/"+a.name, func(t *testing.T) {
				cl := newClient(t, true)
				h := map[string]string{}
				for k, v := range a.header {
					h[k] = strings.ReplaceAll(v, "SELF", cl.srv.URL)
				}
				f := url.Values{}
				for k, v := range form {
					f[k] = v
				}
				f.Set("csrf", a.csrf(cl, path))
				resp := cl.do("POST", path, f, h)
				want := a.want
				if want == http.StatusSeeOther && path == "/labs/lab1/diagnose" {
					want = http.StatusOK // diagnose renders its result
				}
				if resp.status != want {
					t.Fatalf("POST %s (%s) = %d, want %d\n%s", path, a.name, resp.status, want, resp.body)
				}
				var changed []string
				for _, c := range cl.api.calls() {
					if !strings.HasPrefix(c, "GET ") {
						changed = append(changed, c)
					}
				}
				if (want == http.StatusForbidden) != (len(changed) == 0) {
					t.Errorf("POST %s (%s): API calls that change state: %v", path, a.name, changed)
				}
			})
		}
	}
	for _, f := range adminForms {
		check(t, f.path, f.form)
	}
	for _, f := range traineeForms {
		check(t, f.path, f.form)
	}
}
