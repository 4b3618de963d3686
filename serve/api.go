package serve

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/maillab/maillab/console"
	"github.com/maillab/maillab/diagnose"
	"github.com/maillab/maillab/diagnose/discover"
	"github.com/maillab/maillab/internal/yamlx"
	"github.com/maillab/maillab/scenarios"
)

// CookieName is the cookie that carries the token for a browser.
const CookieName = "maillab_token"

// apiError is an error response: {"error": ..., "field": ...}.
type apiError struct {
	Status int    `json:"-"`
	Msg    string `json:"error"`
	Field  string `json:"field,omitempty"`
}

func (e *apiError) Error() string { return e.Msg }

func errorf(status int, field, format string, args ...any) *apiError {
	return &apiError{Status: status, Field: field, Msg: fmt.Sprintf(format, args...)}
}

// Handler returns the HTTP handler: the API under /api/v1, /healthz,
// /metrics and the web console (package console) on every other path.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	for _, rt := range s.routes() {
		pattern := rt.Method + " " + rt.Path
		h := s.errors(rt.Handle)
		switch {
		case strings.HasPrefix(rt.Path, "/api/v1/trainee/"):
			h = traineeHeaders(h)
		case !rt.public():
			h = s.authenticated(h)
		}
		mux.Handle(pattern, s.metrics.instrument(pattern, h))
	}
	mux.Handle("/api/", s.authenticated(s.errors(func(w http.ResponseWriter, r *http.Request) error {
		return errorf(http.StatusNotFound, "", "no endpoint %s %s (GET /api/v1/openapi.json lists them)", r.Method, r.URL.Path)
	})))
	// A trainee path no route matches (a ticket's unknown sub-path, a
	// wrong method) is the same 404 as a wrong key: the trainee API has
	// no token, so the catch-all above would answer 401 and tell a
	// guesser which paths exist.
	mux.Handle("/api/v1/trainee/", traineeHeaders(s.errors(func(w http.ResponseWriter, r *http.Request) error {
		return errNotFound
	})))
	mux.Handle("GET /metrics", s.authenticated(s.metrics.handler()))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "labs": len(s.list())})
	})
	// Every other path is the web console, built on this same API: it
	// calls mux in-process with the token (and takes ?token= once, as a
	// cookie).
	mux.Handle("/", console.New(mux, console.Options{Token: s.token, CookieName: CookieName, Logger: s.logger}))
	return mux
}

// route is one API endpoint; the OpenAPI document lists exactly these
// (a test checks both ways).
type route struct {
	Method, Path string
	Handle       func(w http.ResponseWriter, r *http.Request) error
}

// public reports whether the route needs no token: the trainee API, where
// the key in the path is the credential, and the list of root causes a
// trainee answers from (the catalog's public codes).
func (rt route) public() bool {
	return strings.HasPrefix(rt.Path, "/api/v1/trainee/") || rt.Path == "/api/v1/root-causes"
}

func (s *Server) routes() []route {
	return []route{
		{"GET", "/api/v1/scenarios", s.listScenarios},
		{"GET", "/api/v1/scenarios/{name}", s.showScenario},
		{"GET", "/api/v1/faults", s.listFaultTypes},
		{"GET", "/api/v1/labs", s.listLabs},
		{"POST", "/api/v1/labs", s.createLab},
		{"GET", "/api/v1/labs/{id}", s.getLab},
		{"DELETE", "/api/v1/labs/{id}", s.deleteLab},
		{"GET", "/api/v1/labs/{id}/ca.pem", s.caPEM},
		{"GET", "/api/v1/labs/{id}/settings.json", s.settingsJSON},
		{"GET", "/api/v1/labs/{id}/transcript", s.transcript},
		{"GET", "/api/v1/labs/{id}/events", s.events},
		{"GET", "/api/v1/labs/{id}/faults", s.listFaults},
		{"POST", "/api/v1/labs/{id}/faults", s.addFault},
		{"DELETE", "/api/v1/labs/{id}/faults/{fid}", s.removeFault},
		{"GET", "/api/v1/labs/{id}/messages", s.listMessages},
		{"DELETE", "/api/v1/labs/{id}/messages", s.clearMessages},
		{"GET", "/api/v1/labs/{id}/messages/{mid}", s.getMessage},
		{"GET", "/api/v1/labs/{id}/messages/{mid}/raw", s.rawMessage},
		{"DELETE", "/api/v1/labs/{id}/messages/{mid}", s.deleteMessage},
		{"POST", "/api/v1/labs/{id}/diagnose", s.diagnose},
		{"GET", "/api/v1/openapi.json", s.openAPI},
		{"GET", "/api/v1/root-causes", s.listRootCauses},
		{"GET", "/api/v1/classes", s.listClasses},
		{"POST", "/api/v1/classes", s.createClass},
		{"GET", "/api/v1/classes/{cid}", s.getClass},
		{"DELETE", "/api/v1/classes/{cid}", s.deleteClass},
		{"GET", "/api/v1/classes/{cid}/events", s.classEvents},
		{"GET", "/api/v1/classes/{cid}/results.csv", s.resultsCSV},
		{"GET", "/api/v1/classes/{cid}/results.json", s.resultsJSON},
		{"GET", "/api/v1/classes/{cid}/debrief", s.debrief},
		{"GET", "/api/v1/trainee/{key}", s.traineeHome},
		{"GET", "/api/v1/trainee/{key}/tickets/{tid}", s.traineeTicket},
		{"GET", "/api/v1/trainee/{key}/tickets/{tid}/ca.pem", s.traineeCA},
		{"GET", "/api/v1/trainee/{key}/tickets/{tid}/settings.json", s.traineeSettingsJSON},
		{"POST", "/api/v1/trainee/{key}/tickets/{tid}/hints", s.traineeHint},
		{"POST", "/api/v1/trainee/{key}/tickets/{tid}/answer", s.traineeAnswer},
	}
}

// authenticated requires the token as "Authorization: Bearer TOKEN" or as
// the cookie the console URL sets. A browser sends the cookie with
// requests other sites make it send, so a request that changes something
// and is authenticated by the cookie alone must come from our own pages
// (sameOrigin); the Bearer header no other site can set.
func (s *Server) authenticated(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.tokenOK(r) {
			if !bearer(r) && !safeMethod(r.Method) {
				if why := sameOrigin(r); why != "" {
					writeError(w, errorf(http.StatusForbidden, "", "cross-site request refused: %s", why))
					return
				}
			}
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="maillab"`)
		writeError(w, errorf(http.StatusUnauthorized, "", "missing or wrong token: send Authorization: Bearer TOKEN (the token is in the data directory's token file)"))
	})
}

// traineeHeaders keeps a trainee's answers out of caches (they hold the
// account's password) and the key in the URL out of Referer headers.
func traineeHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Referrer-Policy", "no-referrer")
		next.ServeHTTP(w, r)
	})
}

func bearer(r *http.Request) bool {
	return strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ")
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// sameOrigin says why r is not a same-origin request, or "" if it is.
// Fetch metadata first (Sec-Fetch-Site, sent by every current browser);
// without it the Origin header must name this host. Chromium sends
// "Origin: null" on some same-origin requests (a form after a redirect),
// so null passes only with Sec-Fetch-Site: same-origin.
func sameOrigin(r *http.Request) string {
	site, origin := r.Header.Get("Sec-Fetch-Site"), r.Header.Get("Origin")
	if origin != "" && origin != "null" {
		u, err := url.Parse(origin)
		if err != nil || u.Host == "" || !strings.EqualFold(u.Host, r.Host) {
			return fmt.Sprintf("Origin %q is not this server (%s)", origin, r.Host)
		}
	}
	switch {
	case site == "same-origin":
		return ""
	case site != "":
		return fmt.Sprintf("Sec-Fetch-Site is %q, want same-origin", site)
	case origin == "null":
		return "Origin null without Sec-Fetch-Site: same-origin"
	case origin == "":
		return "neither Sec-Fetch-Site nor Origin: send the token as Authorization: Bearer"
	}
	return ""
}

func (s *Server) tokenOK(r *http.Request) bool {
	got := ""
	if h := r.Header.Get("Authorization"); strings.HasPrefix(h, "Bearer ") {
		got = strings.TrimSpace(strings.TrimPrefix(h, "Bearer "))
	} else if c, err := r.Cookie(CookieName); err == nil {
		got = c.Value
	}
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(s.token)) == 1
}

// errors turns a handler's error into a JSON error response.
func (s *Server) errors(h func(w http.ResponseWriter, r *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, s.opts.MaxBody)
		if err := h(w, r); err != nil {
			var ae *apiError
			if !errors.As(err, &ae) {
				path := r.URL.Path
				if strings.HasPrefix(path, "/api/v1/trainee/") {
					path = r.Pattern // the path holds a trainee's key: keep it out of the log
				}
				s.logger.Error("api", "method", r.Method, "path", path, "err", err)
				ae = errorf(http.StatusInternalServerError, "", "%s", err)
			}
			writeError(w, ae)
		}
	})
}

func writeError(w http.ResponseWriter, e *apiError) {
	writeJSON(w, e.Status, e)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// decodeBody reads a JSON object into v, refusing unknown fields, trailing
// data and bodies over the limit.
func decodeBody(r *http.Request, v any) error {
	data, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return errorf(http.StatusRequestEntityTooLarge, "", "request body over %d bytes", mbe.Limit)
		}
		return errorf(http.StatusBadRequest, "", "read body: %v", err)
	}
	if strings.TrimSpace(string(data)) == "" {
		data = []byte("{}")
	}
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		var se *json.SyntaxError
		switch {
		case errors.As(err, &te):
			return errorf(http.StatusBadRequest, te.Field, "%s: want %s, got %s", te.Field, te.Type, te.Value)
		case errors.Is(err, io.ErrUnexpectedEOF):
			return errorf(http.StatusBadRequest, "", "body is not JSON: it ends inside a value")
		case errors.As(err, &se):
			return errorf(http.StatusBadRequest, "", "body is not JSON: %v (offset %d)", err, se.Offset)
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			field, _ := strconv.Unquote(strings.TrimPrefix(err.Error(), "json: unknown field "))
			return errorf(http.StatusBadRequest, field, "unknown field %q", field)
		}
		return errorf(http.StatusBadRequest, "", "body: %v", err)
	}
	if dec.More() {
		return errorf(http.StatusBadRequest, "", "body: trailing data after the JSON object")
	}
	return nil
}

// scenarioJSON is a catalog entry, as `maillab scenario list --json` and
// `scenario show` give it.
type scenarioJSON struct {
	Name      string `json:"name"`
	Title     string `json:"title"`
	Section   string `json:"section"`
	RootCause string `json:"root_cause"`
	Story     string `json:"story"`
	Fix       string `json:"fix"`
	// Cause, Symptoms and Faults are in the single-scenario view only.
	Cause    string      `json:"cause,omitempty"`
	Symptoms string      `json:"symptoms,omitempty"`
	Faults   []FaultSpec `json:"faults,omitempty"`
}

func (s *Server) listScenarios(w http.ResponseWriter, r *http.Request) error {
	cat, err := scenarios.Catalog()
	if err != nil {
		return err
	}
	out := make([]scenarioJSON, 0, len(cat))
	for _, sc := range cat {
		out = append(out, scenarioJSON{Name: sc.Name, Title: sc.Title, Section: sc.Section, RootCause: sc.RootCause, Story: sc.Story, Fix: sc.Fix})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) showScenario(w http.ResponseWriter, r *http.Request) error {
	sc, err := lookupScenario(r.PathValue("name"), "name")
	if err != nil {
		return err
	}
	fs, err := specsFromScenario(sc)
	if err != nil {
		return err
	}
	for i := range fs {
		fs[i].Origin = ""
	}
	writeJSON(w, http.StatusOK, scenarioJSON{Name: sc.Name, Title: sc.Title, Section: sc.Section, RootCause: sc.RootCause, Story: sc.Story, Fix: sc.Fix, Cause: sc.Cause, Symptoms: sc.Symptoms, Faults: fs})
	return nil
}

func lookupScenario(name, field string) (*scenarios.Scenario, error) {
	sc, err := scenarios.Lookup(name)
	if err != nil {
		var ue *scenarios.UnknownError
		if errors.As(err, &ue) {
			return nil, errorf(http.StatusNotFound, field, "%s; valid: %s", ue.Msg, strings.Join(scenarios.Names(), ", "))
		}
		return nil, err
	}
	return sc, nil
}

// healthyScenario is what POST /labs with {} starts.
const healthyScenario = "healthy"

// createRequest is the body of POST /api/v1/labs.
type createRequest struct {
	Scenario     string `json:"scenario"`
	ScenarioYAML string `json:"scenario_yaml"`
	// Ports fixes service ports (names as in the settings, plus "dns");
	// absent ones are free ports.
	Ports map[string]int `json:"ports"`
}

// labJSON is a lab as the API shows it.
type labJSON struct {
	ID                string          `json:"id"`
	Scenario          string          `json:"scenario"`
	ExpectedRootCause string          `json:"expected_root_cause"`
	Created           time.Time       `json:"created"`
	Started           time.Time       `json:"started"`
	Running           bool            `json:"running"`
	Ports             map[string]int  `json:"ports"`
	Faults            []FaultSpec     `json:"faults"`
	Settings          json.RawMessage `json:"settings"`
	Lab               json.RawMessage `json:"lab"`
}

func (s *Server) labView(m *managedLab) (labJSON, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v := labJSON{ID: m.rec.ID, Scenario: m.rec.Scenario, Created: m.rec.Created, Started: m.started, Running: m.l != nil,
		Ports: m.rec.Ports, Faults: m.rec.Faults, Settings: json.RawMessage("null"), Lab: json.RawMessage("null")}
	if v.Faults == nil {
		v.Faults = []FaultSpec{}
	}
	if m.sc != nil {
		v.ExpectedRootCause = m.sc.RootCause
	}
	if m.l != nil {
		cs, err := m.customer.Marshal()
		if err != nil {
			return v, err
		}
		ls, err := m.l.Settings().Marshal()
		if err != nil {
			return v, err
		}
		v.Settings, v.Lab = cs, ls
	}
	return v, nil
}

func (s *Server) createLab(w http.ResponseWriter, r *http.Request) error {
	var req createRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	rec := &labRecord{ID: newID(), Created: time.Now().UTC(), NextFault: 1, Ports: req.Ports}
	var sc *scenarios.Scenario
	switch {
	case req.Scenario != "" && req.ScenarioYAML != "":
		return errorf(http.StatusBadRequest, "scenario_yaml", "give scenario or scenario_yaml, not both")
	case req.Scenario != "":
		var err error
		if sc, err = scenarios.Lookup(req.Scenario); err != nil {
			var ue *scenarios.UnknownError
			if errors.As(err, &ue) {
				return errorf(http.StatusBadRequest, "scenario", "%s; valid: %s", ue.Msg, strings.Join(scenarios.Names(), ", "))
			}
			return err
		}
		rec.Scenario = sc.Name
	case req.ScenarioYAML != "":
		var err error
		if sc, err = scenarios.Parse("scenario_yaml", []byte(req.ScenarioYAML)); err != nil {
			return yamlError("scenario_yaml", err)
		}
		rec.Scenario, rec.ScenarioYAML = sc.Name, req.ScenarioYAML
	default:
		// A healthy lab is the catalog's "healthy" scenario: the customer
		// has correct settings (one account, submission and IMAPS), so
		// settings.json and diagnose mean the same as for any scenario.
		var err error
		if sc, err = scenarios.Lookup(healthyScenario); err != nil {
			return err
		}
		rec.Scenario = sc.Name
	}
	for name, p := range req.Ports {
		if p < 0 || p > 65535 {
			return errorf(http.StatusBadRequest, "ports."+name, "port %d out of range 0-65535", p)
		}
	}
	m, err := s.launch(r.Context(), rec, sc, req.Ports)
	if err != nil {
		return err
	}
	v, err := s.labView(m)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/v1/labs/"+rec.ID)
	writeJSON(w, http.StatusCreated, v)
	return nil
}

// launch gives rec the scenario's faults, starts the lab on ports (nil:
// free ports) under the --max-labs limit, saves its record and returns it
// running. Labs of the API and of classes' tickets start here alike.
func (s *Server) launch(ctx context.Context, rec *labRecord, sc *scenarios.Scenario, ports map[string]int) (*managedLab, error) {
	if sc != nil {
		fs, err := specsFromScenario(sc)
		if err != nil {
			return nil, err
		}
		for i := range fs {
			fs[i].ID = "f" + strconv.Itoa(rec.NextFault)
			rec.NextFault++
		}
		rec.Faults = fs
	}

	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, errorf(http.StatusServiceUnavailable, "", "server is shutting down")
	}
	if len(s.labs) >= s.opts.MaxLabs {
		s.mu.Unlock()
		return nil, errorf(http.StatusTooManyRequests, "", "%d labs are running, the limit (--max-labs); delete one first", len(s.labs))
	}
	for s.labs[rec.ID] != nil {
		rec.ID = newID()
	}
	// Reserve the id (and a place under the limit) while the lab starts.
	reserved := &managedLab{rec: rec}
	s.labs[rec.ID] = reserved
	s.mu.Unlock()
	release := func() {
		s.mu.Lock()
		delete(s.labs, rec.ID)
		s.mu.Unlock()
	}

	m, err := s.newManaged(rec, sc)
	if err != nil {
		release()
		return nil, err
	}
	m.mu.Lock()
	err = s.start(m, ports)
	if err == nil {
		err = s.store.insertLab(ctx, rec)
		if err != nil {
			m.stop()
		}
	}
	m.mu.Unlock()
	if err != nil {
		release()
		m.hub.close()
		os.RemoveAll(m.dir)
		return nil, startError(err)
	}
	m.hub.publish(Event{Kind: EventLab, Text: "lab started"})
	s.mu.Lock()
	s.labs[rec.ID] = m
	s.mu.Unlock()
	s.metrics.labs.Inc()
	return m, nil
}

// startError maps a failure to start a lab: a taken port is 409, a bad
// requested port or fault 400.
func startError(err error) error {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	if errors.Is(err, errAddrInUse) {
		return errorf(http.StatusConflict, "ports", "%v", err)
	}
	var ye *yamlx.Error
	if errors.As(err, &ye) {
		return yamlError("", err)
	}
	return err
}

// yamlError turns a loader error (file, line, field) into a 400 naming
// the field.
func yamlError(prefix string, err error) error {
	var ye *yamlx.Error
	if errors.As(err, &ye) {
		field := ye.Field
		if prefix != "" && field != "" {
			field = prefix + "." + field
		} else if field == "" {
			field = prefix
		}
		return &apiError{Status: http.StatusBadRequest, Field: field, Msg: err.Error()}
	}
	return &apiError{Status: http.StatusBadRequest, Field: prefix, Msg: err.Error()}
}

func (s *Server) listLabs(w http.ResponseWriter, r *http.Request) error {
	out := []labJSON{}
	for _, m := range s.list() {
		if m.hub == nil {
			continue // still starting
		}
		v, err := s.labView(m)
		if err != nil {
			return err
		}
		out = append(out, v)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// labOf returns the lab of the request's {id}, or 404.
func (s *Server) labOf(r *http.Request) (*managedLab, error) {
	id := r.PathValue("id")
	m, ok := s.lab(id)
	if !ok || m.hub == nil {
		return nil, errorf(http.StatusNotFound, "id", "no lab %q (GET /api/v1/labs lists them)", id)
	}
	return m, nil
}

func (s *Server) getLab(w http.ResponseWriter, r *http.Request) error {
	m, err := s.labOf(r)
	if err != nil {
		return err
	}
	v, err := s.labView(m)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

// deleteLab closes the lab (its ports are free when the call returns,
// connected clients are cut), removes its directory and its record.
func (s *Server) deleteLab(w http.ResponseWriter, r *http.Request) error {
	m, err := s.labOf(r)
	if err != nil {
		return err
	}
	if err := s.remove(context.WithoutCancel(r.Context()), m); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// remove closes the lab (its ports are free when it returns, connected
// clients are cut) and deletes its directory and its record.
func (s *Server) remove(ctx context.Context, m *managedLab) error {
	s.mu.Lock()
	if s.labs[m.rec.ID] != m {
		s.mu.Unlock()
		return errorf(http.StatusNotFound, "id", "no lab %q", m.rec.ID)
	}
	delete(s.labs, m.rec.ID)
	s.mu.Unlock()
	m.mu.Lock()
	m.deleted = true
	cerr := m.stop()
	m.mu.Unlock()
	m.hub.close()
	s.metrics.labs.Dec()
	if cerr != nil {
		s.logger.Warn("close lab", "lab", m.rec.ID, "err", cerr)
	}
	if err := s.store.deleteLab(ctx, m.rec.ID); err != nil {
		return err
	}
	if err := os.RemoveAll(m.dir); err != nil {
		return fmt.Errorf("remove lab directory: %w", err)
	}
	return nil
}

func (s *Server) caPEM(w http.ResponseWriter, r *http.Request) error {
	m, err := s.labOf(r)
	if err != nil {
		return err
	}
	return writeCA(w, m, "maillab-"+m.rec.ID+"-ca.pem")
}

// writeCA sends a lab's CA certificate as a download named filename.
func writeCA(w http.ResponseWriter, m *managedLab, filename string) error {
	data, err := os.ReadFile(filepath.Join(m.dir, "ca.pem"))
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/x-pem-file")
	w.Header().Set("Content-Disposition", `attachment; filename="`+filename+`"`)
	w.Write(data)
	return nil
}

// settingsJSON returns the customer's settings: the --settings-out format
// of `maillab scenario` (the lab's own settings for a healthy lab).
func (s *Server) settingsJSON(w http.ResponseWriter, r *http.Request) error {
	m, err := s.labOf(r)
	if err != nil {
		return err
	}
	_, cs, ok := m.current()
	if !ok {
		return errorf(http.StatusConflict, "id", "lab %s is not running", m.rec.ID)
	}
	data, err := cs.Marshal()
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(data)
	return nil
}

// sinceParam reads ?since=N.
func sinceParam(r *http.Request) (uint64, error) {
	v := r.URL.Query().Get("since")
	if v == "" {
		v = r.Header.Get("Last-Event-ID")
	}
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, errorf(http.StatusBadRequest, "since", "since %q is not an event number", v)
	}
	return n, nil
}

// transcript returns the kept events after ?since=N as JSON lines.
func (s *Server) transcript(w http.ResponseWriter, r *http.Request) error {
	m, err := s.labOf(r)
	if err != nil {
		return err
	}
	since, err := sinceParam(r)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	enc := json.NewEncoder(w)
	for _, ev := range m.hub.since(since, s.opts.KeepEvents) {
		enc.Encode(ev)
	}
	return nil
}

// events streams the lab's events as Server-Sent Events, starting after
// ?since=N or Last-Event-ID. A client that reads too slowly loses events
// (an "event: dropped" tells it how many); it never holds up the lab.
func (s *Server) events(w http.ResponseWriter, r *http.Request) error {
	m, err := s.labOf(r)
	if err != nil {
		return err
	}
	since, err := sinceParam(r)
	if err != nil {
		return err
	}
	s.stream(w, r, m.hub, since, nil, func(ev Event) (string, []byte) {
		data, _ := json.Marshal(ev)
		return ev.Kind, data
	})
	return nil
}

// stream serves a hub's events as Server-Sent Events after since (after a
// "retry:" line): each
// event as "id: SEQ", "event:" and "data:" from format, keep-alive
// comments every 15 s, an "event: dropped" when the client's bounded
// buffer overflowed and an "event: closed" when the hub closes. prelude
// (may be nil) writes first, after the subscription is taken, so nothing
// published meanwhile is lost; it returns the sequence number its writes
// cover (later events only follow).
func (s *Server) stream(w http.ResponseWriter, r *http.Request, h *hub, since uint64, prelude func(send func(id uint64, event string, data []byte) error) (uint64, error), format func(Event) (string, []byte)) {
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	// A browser's EventSource reconnects after retry ms; its default (3 s
	// in Chromium) is stated here so every client waits the same.
	io.WriteString(w, "retry: 3000\n\n")
	backlog, sub, cancel := h.subscribe(since, s.opts.EventBuffer)
	defer cancel()
	s.metrics.sse.Inc()
	defer s.metrics.sse.Dec()
	write := func(id uint64, event string, data []byte) error {
		rc.SetWriteDeadline(time.Now().Add(10 * time.Second))
		_, err := fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", id, event, data)
		return err
	}
	last := since
	if prelude != nil {
		upTo, err := prelude(write)
		if err != nil {
			return
		}
		last = max(last, upTo)
	}
	send := func(ev Event) error {
		if ev.Seq <= last {
			return nil
		}
		last = ev.Seq
		event, data := format(ev)
		return write(ev.Seq, event, data)
	}
	for _, ev := range backlog {
		if err := send(ev); err != nil {
			return
		}
	}
	rc.Flush()
	keepalive := time.NewTicker(15 * time.Second)
	defer keepalive.Stop()
	var reported uint64
	for {
		select {
		case <-r.Context().Done():
			return
		case <-keepalive.C:
			rc.SetWriteDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.WriteString(w, ": keepalive\n\n"); err != nil {
				return
			}
		case ev, ok := <-sub.ch:
			if !ok {
				fmt.Fprintf(w, "event: closed\ndata: {\"text\":\"deleted or server stopping\"}\n\n")
				rc.Flush()
				return
			}
			if d := sub.dropped.Load(); d > reported {
				fmt.Fprintf(w, "event: dropped\ndata: {\"dropped\":%d}\n\n", d-reported)
				reported = d
			}
			if err := send(ev); err != nil {
				return
			}
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}

// diagnose runs the bundled diagnoser on the lab's customer settings.
func (s *Server) diagnose(w http.ResponseWriter, r *http.Request) error {
	m, err := s.labOf(r)
	if err != nil {
		return err
	}
	var req struct {
		// Timeout bounds each connect and reply wait ("5s"); default the
		// diagnoser's.
		Timeout string `json:"timeout"`
	}
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	_, cs, ok := m.current()
	if !ok {
		return errorf(http.StatusConflict, "id", "lab %s is not running", m.rec.ID)
	}
	cfg, err := diagnose.FromSettings(cs.Clone())
	if err != nil {
		return errorf(http.StatusConflict, "", "customer settings: %v", err)
	}
	if req.Timeout != "" {
		d, err := time.ParseDuration(req.Timeout)
		if err != nil || d <= 0 || d > time.Minute {
			return errorf(http.StatusBadRequest, "timeout", "timeout %q: want a duration up to 1m, e.g. \"5s\"", req.Timeout)
		}
		cfg.ConnectTimeout, cfg.ReplyTimeout = d, d
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.opts.DiagnoseTimeout)
	defer cancel()
	// The account's set-up (autoconfig, Autodiscover, SRV) is judged too,
	// as maillab diagnose and verify do.
	dopts, err := discover.OptionsFor(cs)
	if err != nil {
		return errorf(http.StatusConflict, "", "customer settings: %v", err)
	}
	dopts.NoGuess = true
	rep, _, err := discover.Diagnose(ctx, cfg, dopts)
	if err != nil {
		return err
	}
	data, err := rep.JSON()
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(data)
	return nil
}
