// Package console is maillab serve's web console: server-rendered pages for
// the trainer (scenario board, labs with their live transcript, faults and
// mailbox, classes) and for trainees (their tickets, reached by a personal
// link). It holds no state of its own: every page is built from the serve
// JSON API, called in-process through the http.Handler given to New, so the
// console sees exactly what any other API client sees.
//
//	mux := http.NewServeMux()
//	mux.Handle("/api/", api) // the serve API
//	mux.Handle("/", console.New(mux, console.Options{Token: token}))
//
// (serve.Server.Handler does exactly this.)
package console

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static/app.js static/app.css
var staticFS embed.FS

// DefaultCookieName is the cookie carrying the token when Options.CookieName
// is empty (the one maillab serve sets).
const DefaultCookieName = "maillab_token"

// CSP is the Content-Security-Policy of every console page: nothing loads
// from outside the console's origin, no inline script or style.
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// MailCSP is the policy of a message's HTML body: a sandbox with no
// scripts, no remote loads, only inline styles and data: images.
const MailCSP = "sandbox; default-src 'none'; img-src data:; style-src 'unsafe-inline'"

// Options configures New. The zero value serves trainee pages only: with
// no Token, no cookie opens the admin pages.
type Options struct {
	// Token is the API token; the console sends it as a Bearer header on
	// its in-process API calls and admin pages require it as the cookie.
	Token string
	// CookieName is the cookie holding the token; "" means
	// DefaultCookieName.
	CookieName string
	// Logger receives errors of API calls that are the console's fault;
	// nil discards them.
	Logger *slog.Logger
}

// Console serves the pages. Create it with New.
type Console struct {
	api    http.Handler
	opts   Options
	secret []byte
	pages  map[string]*template.Template
	mux    *http.ServeMux
	logger *slog.Logger
}

// New returns the console serving every path it is given (mount it for
// everything outside /api/, /metrics and /healthz). api is the serve API
// handler; the console calls it in-process for all its data.
func New(api http.Handler, opts Options) *Console {
	if opts.CookieName == "" {
		opts.CookieName = DefaultCookieName
	}
	c := &Console{api: api, opts: opts, logger: opts.Logger}
	if c.logger == nil {
		c.logger = slog.New(slog.DiscardHandler)
	}
	// The CSRF secret is derived from the token, so forms stay valid over
	// a restart of serve and differ between installations.
	m := hmac.New(sha256.New, []byte("maillab console csrf"))
	m.Write([]byte(opts.Token))
	c.secret = m.Sum(nil)
	c.pages = parsePages()
	c.mux = http.NewServeMux()
	c.routes()
	return c
}

func parsePages() map[string]*template.Template {
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		panic(err)
	}
	pages := map[string]*template.Template{}
	for _, n := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if base == "layout" || base == "card" {
			continue
		}
		pages[base] = template.Must(template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/card.html", n))
	}
	return pages
}

// ServeHTTP sets the security headers on every response and dispatches.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", CSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cache-Control", "no-store")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		if !sameOrigin(r) {
			c.render(w, r, http.StatusForbidden, "error", errorPage{Title: "Refused", Message: "This form was sent from another site (Origin / Sec-Fetch-Site); the console accepts forms from its own pages only."})
			return
		}
	}
	c.mux.ServeHTTP(w, r)
}

// sameOrigin reports whether a state-changing request comes from the
// console's own pages. Browsers send Sec-Fetch-Site; older ones only
// Origin. Chromium sends "Origin: null" on some same-origin requests, so
// null is accepted only together with Sec-Fetch-Site: same-origin. A
// request with neither header is not from a browser page (curl): the CSRF
// token still applies.
func sameOrigin(r *http.Request) bool {
	site := r.Header.Get("Sec-Fetch-Site")
	origin := r.Header.Get("Origin")
	if site != "" && site != "same-origin" {
		return false
	}
	switch {
	case origin == "":
		return true
	case origin == "null":
		return site == "same-origin"
	}
	host := origin
	if i := strings.Index(host, "://"); i >= 0 {
		host = host[i+3:]
	} else {
		return false
	}
	return strings.EqualFold(host, r.Host)
}

// csrfToken is the form token: an HMAC of the console secret and the
// scope ("admin", or "trainee:" + the trainee's key).
func (c *Console) csrfToken(scope string) string {
	m := hmac.New(sha256.New, c.secret)
	m.Write([]byte(scope))
	return hex.EncodeToString(m.Sum(nil))
}

func (c *Console) csrfOK(r *http.Request, scope string) bool {
	got := r.PostFormValue("csrf")
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(c.csrfToken(scope))) == 1
}

// adminOK reports whether the request carries the token cookie.
func (c *Console) adminOK(r *http.Request) bool {
	if c.opts.Token == "" {
		return false
	}
	ck, err := r.Cookie(c.opts.CookieName)
	return err == nil && subtle.ConstantTimeCompare([]byte(ck.Value), []byte(c.opts.Token)) == 1
}

// takeToken handles ?token=: a right token becomes an HttpOnly
// SameSite=Strict cookie and the browser is sent to the same path without
// it (so the token leaves the address bar and the history).
func (c *Console) takeToken(w http.ResponseWriter, r *http.Request) bool {
	tok := r.URL.Query().Get("token")
	if tok == "" || r.Method != http.MethodGet {
		return false
	}
	if c.opts.Token == "" || subtle.ConstantTimeCompare([]byte(tok), []byte(c.opts.Token)) != 1 {
		c.render(w, r, http.StatusUnauthorized, "error", errorPage{Title: "Wrong token", Message: "The token in this address is wrong. Open the URL that maillab serve printed (the token is also in the data directory's token file)."})
		return true
	}
	http.SetCookie(w, &http.Cookie{Name: c.opts.CookieName, Value: c.opts.Token, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	q := r.URL.Query()
	q.Del("token")
	to := r.URL.Path
	if enc := q.Encode(); enc != "" {
		to += "?" + enc
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
	return true
}
