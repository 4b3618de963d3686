package console

import (
	"encoding/json"
	"errors"
	"net/http"
	"sort"
	"strconv"
	"strings"
)

// ---- classes (trainer) ----

func (c *Console) classes(w http.ResponseWriter, r *http.Request) {
	var list []class
	if err := c.getJSON(r.Context(), asAdmin, "/api/v1/classes", &list); err != nil {
		c.fail(w, r, err)
		return
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Created.After(list[j].Created) })
	c.renderTitled(w, r, http.StatusOK, "classes", "Classes", list)
}

// classForm is the new-class form, its values kept to re-render it with
// the API's complaint next to the field it names.
type classForm struct {
	Scenarios  []scenario
	Name       string
	Trainees   string
	Count      string
	Chosen     map[string]bool
	Assignment string
	PerTrainee string
	Field      string // the field the error is about ("" = the form)
	Error      string
}

func (c *Console) newClass(w http.ResponseWriter, r *http.Request) {
	f := &classForm{Assignment: "all", PerTrainee: "1", Chosen: map[string]bool{}}
	c.renderClassForm(w, r, http.StatusOK, f)
}

func (c *Console) renderClassForm(w http.ResponseWriter, r *http.Request, status int, f *classForm) {
	if err := c.getJSON(r.Context(), asAdmin, "/api/v1/scenarios", &f.Scenarios); err != nil {
		c.fail(w, r, err)
		return
	}
	c.renderTitled(w, r, status, "class_new", "New class", f)
}

// formField maps an API error field to the form input it belongs to.
func formField(apiField string) string {
	switch f := strings.SplitN(apiField, "[", 2)[0]; f {
	case "name", "count", "assignment", "per_trainee", "trainees":
		return f
	case "scenarios", "scenario":
		return "scenario"
	}
	return "" // shown above the form
}

func (c *Console) createClass(w http.ResponseWriter, r *http.Request) {
	r.ParseForm()
	f := &classForm{
		Name:       strings.TrimSpace(r.PostFormValue("name")),
		Trainees:   r.PostFormValue("trainees"),
		Count:      strings.TrimSpace(r.PostFormValue("count")),
		Assignment: r.PostFormValue("assignment"),
		PerTrainee: strings.TrimSpace(r.PostFormValue("per_trainee")),
		Chosen:     map[string]bool{},
	}
	body := map[string]any{"name": f.Name, "assignment": f.Assignment}
	var names []string
	for _, line := range strings.Split(f.Trainees, "\n") {
		if n := strings.TrimSpace(line); n != "" {
			names = append(names, n)
		}
	}
	if len(names) > 0 {
		body["trainees"] = names
	}
	scen := []string{}
	for _, s := range r.PostForm["scenario"] {
		scen = append(scen, s)
		f.Chosen[s] = true
	}
	body["scenarios"] = scen
	fieldErr := func(field, msg string) {
		f.Field, f.Error = field, msg
		c.renderClassForm(w, r, http.StatusBadRequest, f)
	}
	if f.Count != "" {
		n, err := strconv.Atoi(f.Count)
		if err != nil || n < 1 {
			fieldErr("count", "Number of trainees: want a whole number of 1 or more.")
			return
		}
		body["count"] = n
	}
	if f.PerTrainee != "" && f.Assignment == "random" {
		n, err := strconv.Atoi(f.PerTrainee)
		if err != nil || n < 1 {
			fieldErr("per_trainee", "Tickets per trainee: want a whole number of 1 or more.")
			return
		}
		body["per_trainee"] = n
	}
	var cl class
	if err := c.doJSON(r.Context(), asAdmin, http.MethodPost, "/api/v1/classes", body, &cl); err != nil {
		var ae *apiError
		if errors.As(err, &ae) && ae.Status < 500 {
			fieldErr(formField(ae.Field), ae.Msg)
			return
		}
		c.fail(w, r, err)
		return
	}
	http.Redirect(w, r, "/classes/"+esc(cl.ID), http.StatusSeeOther)
}

type classPage struct {
	Class      class
	Origin     string
	MaxTickets int
}

// origin is the scheme and host the browser used, for absolute trainee
// links.
func origin(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func (c *Console) classBoard(w http.ResponseWriter, r *http.Request) {
	var cl class
	if err := c.getJSON(r.Context(), asAdmin, "/api/v1/classes/"+esc(r.PathValue("cid")), &cl); err != nil {
		c.fail(w, r, err)
		return
	}
	p := classPage{Class: cl, Origin: origin(r), MaxTickets: 1}
	for _, tr := range cl.Trainees {
		p.MaxTickets = max(p.MaxTickets, len(tr.Tickets))
	}
	c.renderTitled(w, r, http.StatusOK, "class", cl.Name, p)
}

func (c *Console) deleteClass(w http.ResponseWriter, r *http.Request) {
	if _, err := c.call(r.Context(), asAdmin, http.MethodDelete, "/api/v1/classes/"+esc(r.PathValue("cid")), nil); err != nil {
		c.fail(w, r, err)
		return
	}
	http.Redirect(w, r, "/classes", http.StatusSeeOther)
}

type debriefPage struct {
	ClassID   string
	ClassName string
	Scenarios []debriefScenario
}

func (c *Console) debrief(w http.ResponseWriter, r *http.Request) {
	cid := r.PathValue("cid")
	var cl class
	if err := c.getJSON(r.Context(), asAdmin, "/api/v1/classes/"+esc(cid), &cl); err != nil {
		c.fail(w, r, err)
		return
	}
	p := debriefPage{ClassID: cid, ClassName: cl.Name}
	if err := c.getJSON(r.Context(), asAdmin, "/api/v1/classes/"+esc(cid)+"/debrief", &p.Scenarios); err != nil {
		c.fail(w, r, err)
		return
	}
	c.renderTitled(w, r, http.StatusOK, "debrief", "Debrief: "+cl.Name, p)
}

// ---- trainee pages (no token: the key is the credential) ----

// traineeNotFound is the one page for an unknown key and for a ticket
// that is not this trainee's: the two must not be told apart.
func (c *Console) traineeNotFound(w http.ResponseWriter, r *http.Request) {
	c.render(w, r, http.StatusNotFound, "error", errorPage{Title: "Not found", Message: "There is no ticket at this address. Check the link your trainer gave you."})
}

// traineeFail renders an error of a trainee API call: every 404 (and a
// 400 from a malformed key or id) is the same not-found page.
func (c *Console) traineeFail(w http.ResponseWriter, r *http.Request, err error) {
	var ae *apiError
	if errors.As(err, &ae) && (ae.Status == http.StatusNotFound || ae.Status == http.StatusBadRequest && ae.Field == "") {
		c.traineeNotFound(w, r)
		return
	}
	c.fail(w, r, err)
}

type traineeHomePage struct {
	Key  string
	Home traineeHome
}

func (p traineeHomePage) csrfScope() string { return "trainee:" + p.Key }

func (c *Console) traineeHome(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("key")
	p := traineeHomePage{Key: key}
	if err := c.getJSON(r.Context(), asTrainee, "/api/v1/trainee/"+esc(key), &p.Home); err != nil {
		c.traineeFail(w, r, err)
		return
	}
	c.renderTitled(w, r, http.StatusOK, "trainee", "Your tickets", p)
}

type layerGroup struct {
	Title  string
	Causes []rootCause
}

type ticketPage struct {
	Key      string
	Ticket   traineeTicket
	Card     settingsCard
	Curl     []string
	Layers   []layerGroup
	Answer   string // the code answered
	AnsTitle string
	Fix      string
	Error    string
	Field    string
}

func (p ticketPage) csrfScope() string { return "trainee:" + p.Key }

func (c *Console) loadTicket(r *http.Request) (*ticketPage, error) {
	key, tid := r.PathValue("key"), r.PathValue("tid")
	p := &ticketPage{Key: key}
	base := "/api/v1/trainee/" + esc(key) + "/tickets/" + esc(tid)
	if err := c.getJSON(r.Context(), asTrainee, base, &p.Ticket); err != nil {
		return nil, err
	}
	p.Card = makeCard(p.Ticket.Settings, base+"/ca.pem")
	if p.Card.DNS == "" {
		p.Card.DNS = p.Ticket.DNS
	}
	p.Curl = curlLines(p.Ticket.Settings, p.Ticket.DNS)
	// The catalog's codes in plain words: the same list for every trainee,
	// so the console reads it with its own token.
	var causes []rootCause
	if err := c.getJSON(r.Context(), asAdmin, "/api/v1/root-causes", &causes); err != nil {
		return nil, err
	}
	// One optgroup per layer, in the order the catalog first names it.
	group := map[string]int{}
	for _, rc := range causes {
		i, ok := group[rc.Layer]
		if !ok {
			i = len(p.Layers)
			group[rc.Layer] = i
			p.Layers = append(p.Layers, layerGroup{Title: rc.LayerTitle})
		}
		p.Layers[i].Causes = append(p.Layers[i].Causes, rc)
	}
	if len(p.Ticket.Answer) > 0 && string(p.Ticket.Answer) != "null" {
		var a answer
		if json.Unmarshal(p.Ticket.Answer, &a) != nil {
			json.Unmarshal(p.Ticket.Answer, &a.Code)
		}
		p.Answer, p.Fix = a.Code, a.Fix
		for _, rc := range causes {
			if rc.Code == a.Code {
				p.AnsTitle = rc.Title
			}
		}
	}
	return p, nil
}

func (c *Console) traineeTicket(w http.ResponseWriter, r *http.Request) {
	p, err := c.loadTicket(r)
	if err != nil {
		c.traineeFail(w, r, err)
		return
	}
	c.renderTitled(w, r, http.StatusOK, "ticket", p.Ticket.Title, p)
}

// traineePost checks a trainee form's CSRF token (an HMAC of the key)
// after the key is known to exist: an unknown key gets the same 404 as a
// GET.
func (c *Console) traineePost(w http.ResponseWriter, r *http.Request) bool {
	key := r.PathValue("key")
	if !c.csrfOK(r, "trainee:"+key) {
		var home traineeHome
		if err := c.getJSON(r.Context(), asTrainee, "/api/v1/trainee/"+esc(key), &home); err != nil {
			c.traineeFail(w, r, err)
			return false
		}
		c.render(w, r, http.StatusForbidden, "error", errorPage{Title: "Refused", Message: "The form's security token is missing or wrong: reload the page and send the form again."})
		return false
	}
	return true
}

func (c *Console) ticketURL(r *http.Request) string {
	return "/t/" + esc(r.PathValue("key")) + "/tickets/" + esc(r.PathValue("tid"))
}

func (c *Console) traineeHint(w http.ResponseWriter, r *http.Request) {
	if !c.traineePost(w, r) {
		return
	}
	path := "/api/v1/trainee/" + esc(r.PathValue("key")) + "/tickets/" + esc(r.PathValue("tid")) + "/hints"
	if _, err := c.call(r.Context(), asTrainee, http.MethodPost, path, map[string]any{}); err != nil {
		c.ticketError(w, r, err, "hint")
		return
	}
	http.Redirect(w, r, c.ticketURL(r)+"#hints", http.StatusSeeOther)
}

func (c *Console) traineeAnswer(w http.ResponseWriter, r *http.Request) {
	if !c.traineePost(w, r) {
		return
	}
	path := "/api/v1/trainee/" + esc(r.PathValue("key")) + "/tickets/" + esc(r.PathValue("tid")) + "/answer"
	body := map[string]any{"code": r.PostFormValue("code"), "fix": r.PostFormValue("fix")}
	if _, err := c.call(r.Context(), asTrainee, http.MethodPost, path, body); err != nil {
		c.ticketError(w, r, err, "code")
		return
	}
	http.Redirect(w, r, c.ticketURL(r)+"#result", http.StatusSeeOther)
}

// ticketError re-renders the ticket with the API's complaint (409: no
// hint left or already answered; 400: the field at fault).
func (c *Console) ticketError(w http.ResponseWriter, r *http.Request, err error, field string) {
	var ae *apiError
	if !errors.As(err, &ae) || ae.Status == http.StatusNotFound || ae.Status >= 500 {
		c.traineeFail(w, r, err)
		return
	}
	p, lerr := c.loadTicket(r)
	if lerr != nil {
		c.traineeFail(w, r, lerr)
		return
	}
	p.Error, p.Field = ae.Msg, field
	if ae.Field != "" {
		p.Field = ae.Field
	}
	c.renderTitled(w, r, ae.Status, "ticket", p.Ticket.Title, p)
}
