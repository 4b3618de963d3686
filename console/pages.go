package console

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// sections are the seed article's sections the board groups scenarios
// by (a scenario's "section" field lists their numbers).
var sections = []struct{ N, Title string }{
	{"1", "Server address"},
	{"2", "Ports"},
	{"3", "Authentication"},
	{"4", "SSL/TLS"},
	{"5", "Firewall"},
	{"6", "Email client"},
	{"7", "Network connectivity"},
	{"8", "DNS"},
	{"9", "Account credentials"},
	{"–", "Beyond the article"},
}

// highlight matches the transcript lines that mark where a fault acted or
// a login was refused; the same expression runs in app.js for live lines
// (the page hands it over in a data attribute).
// It is written in the syntax both RE2 and JavaScript read (no inline
// flags: both add case-insensitivity themselves).
const highlightPattern = `\b(stripped|dropped|drop|reset|refused|rejected|expired|not yet valid|locked|disabled|blocked|throttl|self-signed|untrusted|mismatch|denied|intercept)`

var highlight = regexp.MustCompile(`(?i)` + highlightPattern)

func highlighted(kind, text string) bool {
	return kind == "fault" || kind == "auth" || highlight.MatchString(text)
}

// hostBreaks escapes a host name and lets it wrap only after its dots
// (mail.<wbr>example.<wbr>test): on a phone the settings card's server
// column is narrow, and a name broken inside a label is easily mistyped.
func hostBreaks(host string) template.HTML {
	return template.HTML(strings.ReplaceAll(template.HTMLEscapeString(host), ".", ".<wbr>"))
}

var funcs = template.FuncMap{
	"hl":    highlighted,
	"hostw": hostBreaks,
	"when": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	},
	"size": func(n int64) string {
		switch {
		case n >= 1<<20:
			return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
		case n >= 1<<10:
			return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
		}
		return fmt.Sprintf("%d B", n)
	},
	"duration": func(s *float64) string {
		if s == nil {
			return ""
		}
		d := time.Duration(*s * float64(time.Second)).Round(time.Second)
		return d.String()
	},
	"result": func(r *bool) string {
		switch {
		case r == nil:
			return ""
		case *r:
			return "right"
		}
		return "wrong"
	},
	"join": strings.Join,
	"statusText": func(s string) string {
		switch s {
		case "not_started":
			return "not started"
		case "connected":
			return "client connected"
		case "answered":
			return "answered"
		}
		return s
	},
	"hlPattern": func() string { return highlightPattern },
	"hints": func(n int) string {
		if n == 1 {
			return "1 hint"
		}
		return fmt.Sprintf("%d hints", n)
	},
}

// page is what every template gets: the page's own data plus the layout's.
type page struct {
	Title string
	Admin bool
	CSRF  string
	Data  any
}

type errorPage struct {
	Title   string
	Message string
}

func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, name string, data any) {
	c.renderTitled(w, r, status, name, "", data)
}

func (c *Console) renderTitled(w http.ResponseWriter, r *http.Request, status int, name, title string, data any) {
	t, ok := c.pages[name]
	if !ok {
		panic("console: no template " + name)
	}
	p := page{Title: title, Admin: c.adminOK(r), Data: data}
	if ep, ok := data.(errorPage); ok && title == "" {
		p.Title = ep.Title
	}
	if p.Admin {
		p.CSRF = c.csrfToken("admin")
	}
	if tp, ok := data.(interface{ csrfScope() string }); ok {
		p.CSRF = c.csrfToken(tp.csrfScope())
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, p); err != nil {
		c.logger.Error("console template", "page", name, "err", err)
		http.Error(w, "the console could not render this page", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// fail renders an API error (or the console's own) as a page.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, err error) {
	var ae *apiError
	if errors.As(err, &ae) {
		title := http.StatusText(ae.Status)
		if ae.Status == http.StatusNotFound {
			title = "Not found"
		}
		c.render(w, r, ae.Status, "error", errorPage{Title: title, Message: ae.Error()})
		return
	}
	c.logger.Error("console", "path", r.URL.Path, "err", err)
	c.render(w, r, http.StatusInternalServerError, "error", errorPage{Title: "Error", Message: err.Error()})
}

func (c *Console) notFound(w http.ResponseWriter, r *http.Request) {
	c.render(w, r, http.StatusNotFound, "error", errorPage{Title: "Not found", Message: "There is no page at this address."})
}

// admin wraps a trainer's page: it needs the token cookie, and a POST
// needs the admin CSRF token.
func (c *Console) admin(h func(w http.ResponseWriter, r *http.Request)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if c.takeToken(w, r) {
			return
		}
		if !c.adminOK(r) {
			c.render(w, r, http.StatusUnauthorized, "error", errorPage{Title: "Sign in with the console URL",
				Message: "This page is for the trainer. Open the URL that maillab serve printed when it started (it ends in ?token=...); the token is also in the data directory's token file. Trainees use the personal link their trainer gave them."})
			return
		}
		if r.Method == http.MethodPost && !c.csrfOK(r, "admin") {
			c.render(w, r, http.StatusForbidden, "error", errorPage{Title: "Refused", Message: "The form's security token is missing or wrong: reload the page and send the form again."})
			return
		}
		h(w, r)
	}
}

func (c *Console) routes() {
	m := c.mux
	static, _ := fs.Sub(staticFS, "static")
	m.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	m.HandleFunc("GET /{$}", c.admin(c.board))
	m.HandleFunc("POST /labs", c.admin(c.startLab))
	m.HandleFunc("GET /labs", c.admin(c.labs))
	m.HandleFunc("GET /labs/{id}", c.admin(c.labView))
	m.HandleFunc("POST /labs/{id}/delete", c.admin(c.deleteLab))
	m.HandleFunc("POST /labs/{id}/faults", c.admin(c.addFault))
	m.HandleFunc("POST /labs/{id}/faults/{fid}/delete", c.admin(c.removeFault))
	m.HandleFunc("POST /labs/{id}/diagnose", c.admin(c.diagnose))
	m.HandleFunc("GET /labs/{id}/messages", c.admin(c.messages))
	m.HandleFunc("POST /labs/{id}/messages/clear", c.admin(c.clearMessages))
	m.HandleFunc("GET /labs/{id}/messages/{mid}", c.admin(c.message))
	m.HandleFunc("GET /labs/{id}/messages/{mid}/html", c.admin(c.messageHTML))
	m.HandleFunc("GET /classes", c.admin(c.classes))
	m.HandleFunc("GET /classes/new", c.admin(c.newClass))
	m.HandleFunc("POST /classes", c.admin(c.createClass))
	m.HandleFunc("GET /classes/{cid}", c.admin(c.classBoard))
	m.HandleFunc("POST /classes/{cid}/delete", c.admin(c.deleteClass))
	m.HandleFunc("GET /classes/{cid}/debrief", c.admin(c.debrief))
	m.HandleFunc("GET /t/{key}", c.traineeHome)
	m.HandleFunc("GET /t/{key}/tickets/{tid}", c.traineeTicket)
	m.HandleFunc("POST /t/{key}/tickets/{tid}/hints", c.traineeHint)
	m.HandleFunc("POST /t/{key}/tickets/{tid}/answer", c.traineeAnswer)
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if c.takeToken(w, r) {
			return
		}
		c.notFound(w, r)
	})
}

// esc escapes one path segment of an API URL.
func esc(s string) string { return url.PathEscape(s) }

// ---- scenario board ----

type boardSection struct {
	N, Title  string
	Scenarios []boardScenario
}

type boardScenario struct {
	scenario
	Also []string // further sections it reproduces
}

func (c *Console) board(w http.ResponseWriter, r *http.Request) {
	var list []scenario
	if err := c.getJSON(r.Context(), asAdmin, "/api/v1/scenarios", &list); err != nil {
		c.fail(w, r, err)
		return
	}
	idx := map[string]int{}
	out := make([]boardSection, len(sections))
	for i, s := range sections {
		out[i] = boardSection{N: s.N, Title: s.Title}
		idx[s.N] = i
	}
	for _, s := range list {
		if s.Name == "healthy" {
			continue
		}
		nums := strings.Split(s.Section, ",")
		for i := range nums {
			nums[i] = strings.TrimSpace(nums[i])
		}
		i, ok := idx[nums[0]]
		if !ok {
			i = idx["–"]
		}
		out[i].Scenarios = append(out[i].Scenarios, boardScenario{scenario: s, Also: nums[1:]})
	}
	var shown []boardSection
	for _, s := range out {
		if len(s.Scenarios) > 0 {
			shown = append(shown, s)
		}
	}
	c.renderTitled(w, r, http.StatusOK, "board", "Scenarios", shown)
}

func (c *Console) startLab(w http.ResponseWriter, r *http.Request) {
	body := map[string]any{}
	if name := r.PostFormValue("scenario"); name != "" {
		body["scenario"] = name
	}
	var lab labInfo
	if err := c.doJSON(r.Context(), asAdmin, http.MethodPost, "/api/v1/labs", body, &lab); err != nil {
		c.fail(w, r, err)
		return
	}
	http.Redirect(w, r, "/labs/"+esc(lab.ID), http.StatusSeeOther)
}

func (c *Console) labs(w http.ResponseWriter, r *http.Request) {
	var list []labInfo
	if err := c.getJSON(r.Context(), asAdmin, "/api/v1/labs", &list); err != nil {
		c.fail(w, r, err)
		return
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Created.After(list[j].Created) })
	c.renderTitled(w, r, http.StatusOK, "labs", "Labs", list)
}

// ---- lab view ----

type labPage struct {
	Lab        labInfo
	Scenario   *scenario // nil for a healthy or custom lab
	Card       settingsCard
	Events     []event
	Services   []string
	FaultTypes []faultType
	Note       string
	Error      string
	Report     *report
}

// settingsCard is the customer's settings as a helpdesk card.
type settingsCard struct {
	Domain   string
	DNS      string // the customer's resolver setting
	LabDNS   string // the lab's own DNS server, when it differs
	Accounts []account
	Services []cardService
	CAURL    string
}

type cardService struct {
	Name string
	service
	Role         string
	SecurityText string
}

// role names what a service is for in the words of a mail client's
// account dialog.
func role(name string) string {
	switch {
	case strings.HasPrefix(name, "imap"):
		return "Incoming mail (IMAP)"
	case strings.HasPrefix(name, "pop3"):
		return "Incoming mail (POP3)"
	case name == "submission" || name == "submissions" || name == "smtp":
		return "Outgoing mail (SMTP)"
	}
	return name
}

func securityText(s string) string {
	switch s {
	case "tls":
		return "SSL/TLS"
	case "starttls":
		return "STARTTLS"
	case "none":
		return "None"
	}
	return s
}

var serviceOrder = []string{"submission", "submissions", "smtp", "imap", "imaps", "pop3", "pop3s"}

func makeCard(s settings, caURL string) settingsCard {
	card := settingsCard{Domain: s.Domain, DNS: s.Resolver, Accounts: s.Accounts, CAURL: caURL}
	names := make([]string, 0, len(s.Services))
	for n := range s.Services {
		names = append(names, n)
	}
	rank := func(n string) int {
		for i, o := range serviceOrder {
			if o == n {
				return i
			}
		}
		return len(serviceOrder)
	}
	sort.Slice(names, func(i, j int) bool {
		if rank(names[i]) != rank(names[j]) {
			return rank(names[i]) < rank(names[j])
		}
		return names[i] < names[j]
	})
	for _, n := range names {
		sv := s.Services[n]
		card.Services = append(card.Services, cardService{Name: n, service: sv, Role: role(n), SecurityText: securityText(sv.Security)})
	}
	return card
}

// maxEvents bounds the transcript lines a page renders (the newest).
const maxEvents = 2000

func (c *Console) loadLabPage(r *http.Request, id string) (*labPage, error) {
	ctx := r.Context()
	p := &labPage{}
	if err := c.getJSON(ctx, asAdmin, "/api/v1/labs/"+esc(id), &p.Lab); err != nil {
		return nil, err
	}
	p.Card = makeCard(p.Lab.Settings, "/api/v1/labs/"+esc(id)+"/ca.pem")
	if r := p.Lab.Lab.Resolver; r != "" && r != p.Card.DNS {
		p.Card.LabDNS = r // dns-wrong-server: the customer uses another
	}
	if p.Lab.Scenario != "" {
		var sc scenario
		// A custom scenario (YAML) is not in the catalog: no story then.
		if c.getJSON(ctx, asAdmin, "/api/v1/scenarios/"+esc(p.Lab.Scenario), &sc) == nil {
			p.Scenario = &sc
		}
	}
	data, err := c.call(ctx, asAdmin, http.MethodGet, "/api/v1/labs/"+esc(id)+"/transcript", nil)
	if err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for sc.Scan() {
		var ev event
		if json.Unmarshal(sc.Bytes(), &ev) == nil {
			p.Events = append(p.Events, ev)
		}
	}
	if len(p.Events) > maxEvents {
		p.Events = p.Events[len(p.Events)-maxEvents:]
	}
	svc := map[string]bool{}
	for n := range p.Lab.Ports {
		svc[n] = true
	}
	for _, ev := range p.Events {
		if ev.Service != "" {
			svc[ev.Service] = true
		}
	}
	for n := range svc {
		p.Services = append(p.Services, n)
	}
	sort.Strings(p.Services)
	if err := c.getJSON(ctx, asAdmin, "/api/v1/faults", &p.FaultTypes); err != nil {
		return nil, err
	}
	return p, nil
}

func (c *Console) labView(w http.ResponseWriter, r *http.Request) {
	p, err := c.loadLabPage(r, r.PathValue("id"))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	q := r.URL.Query()
	switch {
	case q.Get("added") != "":
		p.Note = "Fault " + q.Get("added") + " added."
	case q.Get("removed") != "":
		p.Note = "Fault " + q.Get("removed") + " removed."
	case q.Get("cleared") != "":
		p.Note = "Mailbox cleared."
	}
	if rs := q.Get("restarted"); rs != "" {
		p.Note += " Service restarted on the same port: " + rs + "."
	}
	c.renderTitled(w, r, http.StatusOK, "lab", "Lab "+p.Lab.ID, p)
}

func (c *Console) labError(w http.ResponseWriter, r *http.Request, err error) {
	var ae *apiError
	if !errors.As(err, &ae) || ae.Status == http.StatusNotFound {
		c.fail(w, r, err)
		return
	}
	p, lerr := c.loadLabPage(r, r.PathValue("id"))
	if lerr != nil {
		c.fail(w, r, lerr)
		return
	}
	p.Error = ae.Error()
	c.renderTitled(w, r, ae.Status, "lab", "Lab "+p.Lab.ID, p)
}

func (c *Console) deleteLab(w http.ResponseWriter, r *http.Request) {
	if _, err := c.call(r.Context(), asAdmin, http.MethodDelete, "/api/v1/labs/"+esc(r.PathValue("id")), nil); err != nil {
		c.fail(w, r, err)
		return
	}
	http.Redirect(w, r, "/labs", http.StatusSeeOther)
}

// faultRequest reads the fault-add form: the type, the shared knobs and
// the parameters as a JSON object.
func faultRequest(r *http.Request) (map[string]any, error) {
	req := map[string]any{"type": r.PostFormValue("type")}
	if s := strings.TrimSpace(r.PostFormValue("services")); s != "" {
		req["services"] = strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' })
	}
	for _, k := range []string{"after_connections", "one_in"} {
		if s := strings.TrimSpace(r.PostFormValue(k)); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 0 {
				return nil, &apiError{Status: http.StatusBadRequest, Field: k, Msg: fmt.Sprintf("%s: want a whole number ≥ 0, got %q", k, s)}
			}
			req[k] = n
		}
	}
	if s := strings.TrimSpace(r.PostFormValue("params")); s != "" {
		var params map[string]any
		if err := json.Unmarshal([]byte(s), &params); err != nil {
			return nil, &apiError{Status: http.StatusBadRequest, Field: "params", Msg: fmt.Sprintf("params: want a JSON object such as {\"days\": 3}: %v", err)}
		}
		req["params"] = params
	}
	return req, nil
}

func (c *Console) addFault(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	req, err := faultRequest(r)
	if err != nil {
		c.labError(w, r, err)
		return
	}
	var ch faultChange
	if err := c.doJSON(r.Context(), asAdmin, http.MethodPost, "/api/v1/labs/"+esc(id)+"/faults", req, &ch); err != nil {
		c.labError(w, r, err)
		return
	}
	q := url.Values{}
	if ch.Fault != nil {
		q.Set("added", ch.Fault.ID)
	} else {
		q.Set("added", fmt.Sprint(req["type"]))
	}
	if ch.Restarted {
		q.Set("restarted", strings.Join(ch.Services, ", "))
	}
	http.Redirect(w, r, "/labs/"+esc(id)+"?"+q.Encode(), http.StatusSeeOther)
}

func (c *Console) removeFault(w http.ResponseWriter, r *http.Request) {
	id, fid := r.PathValue("id"), r.PathValue("fid")
	var ch faultChange
	if err := c.doJSON(r.Context(), asAdmin, http.MethodDelete, "/api/v1/labs/"+esc(id)+"/faults/"+esc(fid), nil, &ch); err != nil {
		c.labError(w, r, err)
		return
	}
	q := url.Values{"removed": {fid}}
	if ch.Restarted {
		q.Set("restarted", strings.Join(ch.Services, ", "))
	}
	http.Redirect(w, r, "/labs/"+esc(id)+"?"+q.Encode(), http.StatusSeeOther)
}

func (c *Console) diagnose(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var rep report
	if err := c.doJSON(r.Context(), asAdmin, http.MethodPost, "/api/v1/labs/"+esc(id)+"/diagnose", map[string]any{}, &rep); err != nil {
		c.labError(w, r, err)
		return
	}
	p, err := c.loadLabPage(r, id)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	p.Report = &rep
	c.renderTitled(w, r, http.StatusOK, "lab", "Lab "+p.Lab.ID, p)
}

// ---- mailbox ----

type messagesPage struct {
	LabID    string
	Accounts []accountMessages
}

func (c *Console) messages(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	p := messagesPage{LabID: id}
	if err := c.getJSON(r.Context(), asAdmin, "/api/v1/labs/"+esc(id)+"/messages", &p.Accounts); err != nil {
		c.fail(w, r, err)
		return
	}
	c.renderTitled(w, r, http.StatusOK, "messages", "Mailbox of lab "+id, p)
}

func (c *Console) clearMessages(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, err := c.call(r.Context(), asAdmin, http.MethodDelete, "/api/v1/labs/"+esc(id)+"/messages", nil); err != nil {
		c.fail(w, r, err)
		return
	}
	http.Redirect(w, r, "/labs/"+esc(id)+"/messages", http.StatusSeeOther)
}

type messagePage struct {
	LabID string
	Msg   message
}

func (c *Console) getMessage(r *http.Request) (message, error) {
	var m message
	err := c.getJSON(r.Context(), asAdmin, "/api/v1/labs/"+esc(r.PathValue("id"))+"/messages/"+esc(r.PathValue("mid")), &m)
	return m, err
}

func (c *Console) message(w http.ResponseWriter, r *http.Request) {
	m, err := c.getMessage(r)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.renderTitled(w, r, http.StatusOK, "message", m.Subject, messagePage{LabID: r.PathValue("id"), Msg: m})
}

// messageHTML serves a message's HTML part, hostile input, under a CSP
// sandbox (no scripts, no remote loads) for the iframe of the message page.
func (c *Console) messageHTML(w http.ResponseWriter, r *http.Request) {
	m, err := c.getMessage(r)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	h := w.Header()
	h.Set("Content-Security-Policy", MailCSP)
	// The console's own page frames it; the cookie is SameSite=Strict, so
	// no other site can.
	h.Del("X-Frame-Options")
	h.Set("Content-Type", "text/html; charset=utf-8")
	if len(m.HTML) == 0 {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	w.Write([]byte(strings.Join(m.HTML, "\n<hr>\n")))
}
