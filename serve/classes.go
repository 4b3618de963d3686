package serve

import (
	"context"
	"crypto/rand"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/maillab/maillab/rootcause"
	"github.com/maillab/maillab/scenarios"
)

// Limits of a class request.
const (
	maxTrainees  = 500
	maxNameBytes = 200
	maxFixBytes  = 4000
)

// classState is the Server's classes, looked up by id, by trainee key and
// by the lab of a ticket. mu guards the classes and their trainees and
// tickets; byLab is read without it from the labs' event callbacks.
type classState struct {
	mu    sync.Mutex
	byID  map[string]*class
	order []*class
	byKey map[string]*trainee
	ids   map[string]bool // every class, trainee and ticket id in use
	// byLab maps a lab id to its *ticket, and connected the tickets whose
	// lab saw a client (so a lab's events cost one map lookup).
	byLab     sync.Map
	connected sync.Map
	// bg counts the goroutines that record a first connection.
	bg sync.WaitGroup
}

func (cs *classState) init() {
	cs.byID, cs.byKey, cs.ids = map[string]*class{}, map[string]*trainee{}, map[string]bool{}
}

// register adds a class to the lookups; cs.mu is held.
func (cs *classState) register(c *class) {
	cs.byID[c.ID] = c
	cs.order = append(cs.order, c)
	cs.ids[c.ID] = true
	for _, tr := range c.Trainees {
		cs.byKey[tr.Key] = tr
		cs.ids[tr.ID] = true
		for _, t := range tr.Tickets {
			cs.ids[t.ID] = true
			cs.byLab.Store(t.LabID, t)
			if !t.ConnectedAt.IsZero() {
				cs.connected.Store(t.ID, true)
			}
		}
	}
}

// unregister removes a class from the lookups; cs.mu is held.
func (cs *classState) unregister(c *class) {
	delete(cs.byID, c.ID)
	cs.order = slices.DeleteFunc(cs.order, func(o *class) bool { return o == c })
	for _, tr := range c.Trainees {
		delete(cs.byKey, tr.Key)
		for _, t := range tr.Tickets {
			cs.byLab.Delete(t.LabID)
			cs.connected.Delete(t.ID)
		}
	}
}

// newID returns an id not used by another class, trainee or ticket;
// cs.mu is held.
func (cs *classState) newID() string {
	id := newID()
	for cs.ids[id] {
		id = newID()
	}
	cs.ids[id] = true
	return id
}

// newKey returns a trainee key: 128 random bits in hex.
func newKey() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// restoreClasses reads the classes of the database; their labs came back
// with restore, under the same ids.
func (s *Server) restoreClasses() error {
	s.cls.init()
	cs, err := s.store.classes(context.Background())
	if err != nil {
		return err
	}
	s.cls.mu.Lock()
	defer s.cls.mu.Unlock()
	for _, c := range cs {
		c.hub = newHub(1000, &s.eventsDropped, nil)
		s.cls.register(c)
	}
	return nil
}

// closeClasses ends the classes' event streams and waits for pending
// connection records (the labs are closed already).
func (s *Server) closeClasses() {
	s.cls.bg.Wait()
	s.cls.mu.Lock()
	defer s.cls.mu.Unlock()
	for _, c := range s.cls.order {
		c.hub.close()
	}
}

// labClients tells a lab's real clients from its own: a fault's simulated
// client (the lockout fault's stale phone, prior_failures) logs in while
// the lab starts, and the server may note the end of those sessions just
// after. fromClient runs under the lab hub's lock (hub.onEvent), which
// guards ownGen and own.
type labClients struct {
	starting atomic.Bool   // set by Server.start while the lab starts
	gen      atomic.Uint64 // counts starts: session numbers restart with each
	ownGen   uint64
	own      map[string]bool // "service/session" opened while starting
}

// fromClient reports whether ev is a real client's: it has a remote
// address and is not of a session opened while the lab started.
func (c *labClients) fromClient(ev Event) bool {
	if ev.Remote == "" {
		return false
	}
	if gen := c.gen.Load(); gen != c.ownGen {
		c.own, c.ownGen = nil, gen
	}
	key := ev.Service + "/" + strconv.FormatUint(ev.Session, 10)
	if c.starting.Load() {
		if ev.Session != 0 {
			if c.own == nil {
				c.own = map[string]bool{}
			}
			c.own[key] = true
		}
		return false
	}
	return ev.Session == 0 || !c.own[key]
}

// labEvent notes a ticket's first real client: any event of its lab from
// a client (a DNS query, a connection, a refused login). It runs inside
// the lab's hub, so it only looks up and hands over.
func (s *Server) labEvent(m *managedLab, ev Event) {
	if !m.clients.fromClient(ev) {
		return
	}
	v, ok := s.cls.byLab.Load(m.rec.ID)
	if !ok {
		return
	}
	t := v.(*ticket)
	if _, seen := s.cls.connected.LoadOrStore(t.ID, true); seen {
		return
	}
	s.cls.bg.Add(1)
	go func() {
		defer s.cls.bg.Done()
		s.changeTicket(t, func(t *ticket) error {
			if t.ConnectedAt.IsZero() {
				t.ConnectedAt = ev.Time.UTC()
			}
			return nil
		})
	}()
}

// changeTicket applies change to a copy of t under the class lock, saves
// it and only then copies the progress fields back (the ids are read
// without the lock, so they are never written) and sends the class's
// "ticket" event. If change or the save fails, t is left as it was.
func (s *Server) changeTicket(t *ticket, change func(t *ticket) error) error {
	s.cls.mu.Lock()
	defer s.cls.mu.Unlock()
	c := t.trainee.class
	if s.cls.byID[c.ID] != c {
		return errNotFound // the class was deleted meanwhile
	}
	next := *t
	if err := change(&next); err != nil {
		return err
	}
	if next == *t {
		return nil
	}
	if err := s.store.updateTicket(context.Background(), &next); err != nil {
		return err
	}
	t.OpenedAt, t.ConnectedAt, t.AnsweredAt = next.OpenedAt, next.ConnectedAt, next.AnsweredAt
	t.HintsUsed, t.AnswerCode, t.AnswerFix = next.HintsUsed, next.AnswerCode, next.AnswerFix
	c.hub.publish(Event{Kind: "ticket", data: ticketEvent(t)})
	return nil
}

// ticketEvent is a ticket's SSE data: the admin view plus trainee_id.
func ticketEvent(t *ticket) []byte {
	v := ticketView(t)
	v.TraineeID = t.trainee.ID
	data, _ := json.Marshal(v)
	return data
}

// rootCauseJSON is a row of GET /api/v1/root-causes.
type rootCauseJSON struct {
	Code       string `json:"code"`
	Title      string `json:"title"`
	Layer      string `json:"layer"`
	LayerTitle string `json:"layer_title"`
	Meaning    string `json:"meaning"`
}

func (s *Server) listRootCauses(w http.ResponseWriter, r *http.Request) error {
	out := make([]rootCauseJSON, 0, len(rootcause.All))
	for _, info := range rootcause.All {
		out = append(out, rootCauseJSON{Code: string(info.Code), Title: info.Title, Layer: info.Layer.ID(), LayerTitle: info.Layer.Title(), Meaning: info.Meaning})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// classRequest is the body of POST /api/v1/classes.
type classRequest struct {
	Name       string   `json:"name"`
	Trainees   []string `json:"trainees"`
	Count      *int     `json:"count"`
	Scenarios  []string `json:"scenarios"`
	Assignment string   `json:"assignment"`
	PerTrainee *int     `json:"per_trainee"`
}

// validate checks the request and returns the trainees' names and the
// scenarios.
func (req *classRequest) validate() ([]string, []*scenarios.Scenario, error) {
	req.Name = strings.TrimSpace(req.Name)
	switch {
	case req.Name == "":
		return nil, nil, errorf(http.StatusBadRequest, "name", "name is empty: give the class a name")
	case len(req.Name) > maxNameBytes:
		return nil, nil, errorf(http.StatusBadRequest, "name", "name is over %d bytes", maxNameBytes)
	}
	var names []string
	switch {
	case req.Trainees != nil && req.Count != nil:
		return nil, nil, errorf(http.StatusBadRequest, "count", "give trainees (names) or count, not both")
	case req.Count != nil:
		if *req.Count < 1 || *req.Count > maxTrainees {
			return nil, nil, errorf(http.StatusBadRequest, "count", "count %d: want 1 to %d trainees", *req.Count, maxTrainees)
		}
		for i := 1; i <= *req.Count; i++ {
			names = append(names, "Trainee "+strconv.Itoa(i))
		}
	case len(req.Trainees) == 0:
		return nil, nil, errorf(http.StatusBadRequest, "trainees", "no trainees: give trainees (a list of names) or count")
	default:
		if len(req.Trainees) > maxTrainees {
			return nil, nil, errorf(http.StatusBadRequest, "trainees", "%d trainees: at most %d", len(req.Trainees), maxTrainees)
		}
		seen := map[string]int{}
		for i, n := range req.Trainees {
			n = strings.TrimSpace(n)
			field := fmt.Sprintf("trainees[%d]", i)
			switch {
			case n == "":
				return nil, nil, errorf(http.StatusBadRequest, field, "trainee %d has an empty name", i+1)
			case len(n) > maxNameBytes:
				return nil, nil, errorf(http.StatusBadRequest, field, "trainee %d: name over %d bytes", i+1, maxNameBytes)
			}
			if j, dup := seen[n]; dup {
				return nil, nil, errorf(http.StatusBadRequest, field, "trainee %q is listed twice (%d and %d)", n, j+1, i+1)
			}
			seen[n] = i
			names = append(names, n)
		}
	}
	if len(req.Scenarios) == 0 {
		return nil, nil, errorf(http.StatusBadRequest, "scenarios", "no scenarios: pick at least one (GET /api/v1/scenarios lists them)")
	}
	var scs []*scenarios.Scenario
	for i, name := range req.Scenarios {
		field := fmt.Sprintf("scenarios[%d]", i)
		sc, err := scenarios.Lookup(name)
		if err != nil {
			var ue *scenarios.UnknownError
			if errors.As(err, &ue) {
				return nil, nil, errorf(http.StatusBadRequest, field, "%s", ue.Msg)
			}
			return nil, nil, err
		}
		if slices.Contains(scs, sc) {
			return nil, nil, errorf(http.StatusBadRequest, field, "scenario %q is listed twice", name)
		}
		scs = append(scs, sc)
	}
	switch req.Assignment {
	case "":
		req.Assignment = "all"
	case "all", "random":
	default:
		return nil, nil, errorf(http.StatusBadRequest, "assignment", "assignment %q: want \"all\" (every trainee gets every scenario) or \"random\"", req.Assignment)
	}
	if req.PerTrainee == nil {
		one := 1
		req.PerTrainee = &one
	}
	if req.Assignment == "random" && (*req.PerTrainee < 1 || *req.PerTrainee > len(scs)) {
		return nil, nil, errorf(http.StatusBadRequest, "per_trainee", "per_trainee %d: want 1 to %d (the number of scenarios)", *req.PerTrainee, len(scs))
	}
	return names, scs, nil
}

func (s *Server) createClass(w http.ResponseWriter, r *http.Request) error {
	var req classRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	names, scs, err := req.validate()
	if err != nil {
		return err
	}
	per := len(scs)
	if req.Assignment == "random" {
		per = *req.PerTrainee
	}
	need := len(names) * per
	if running := s.Labs(); running+need > s.opts.MaxLabs {
		return errorf(http.StatusConflict, "", "this class needs %d labs (one per ticket) and %d of at most %d (--max-labs) run already: fewer trainees or scenarios, or delete labs", need, running, s.opts.MaxLabs)
	}

	c := &class{Name: req.Name, Created: time.Now().UTC(), Assignment: req.Assignment, PerTrainee: *req.PerTrainee,
		hub: newHub(1000, &s.eventsDropped, nil)}
	for _, sc := range scs {
		c.Scenarios = append(c.Scenarios, sc.Name)
	}
	s.cls.mu.Lock()
	c.ID = s.cls.newID()
	for _, n := range names {
		tr := &trainee{ID: s.cls.newID(), Name: n, Key: newKey(), class: c}
		mine := scs
		if req.Assignment == "random" {
			mine = nil
			for _, i := range mrand.Perm(len(scs))[:per] {
				mine = append(mine, scs[i])
			}
		}
		for _, sc := range mine {
			tr.Tickets = append(tr.Tickets, &ticket{ID: s.cls.newID(), Scenario: sc.Name, trainee: tr})
		}
		c.Trainees = append(c.Trainees, tr)
	}
	s.cls.mu.Unlock()

	// Each ticket its own lab: own ports, CA, accounts and lockout state.
	started, err := s.launchTickets(r, c)
	cleanup := func() {
		s.removeLabs(context.WithoutCancel(r.Context()), started)
		c.hub.close()
	}
	if err != nil {
		cleanup()
		return err
	}
	if err := s.store.insertClass(r.Context(), c); err != nil {
		cleanup()
		return err
	}
	s.cls.mu.Lock()
	s.cls.register(c)
	v := classView(c)
	s.cls.mu.Unlock()
	w.Header().Set("Location", "/api/v1/classes/"+c.ID)
	writeJSON(w, http.StatusCreated, v)
	return nil
}

// classLabWorkers bounds the labs a class starts or closes at once.
const classLabWorkers = 8

// launchTickets starts a lab for every ticket of c, classLabWorkers at a
// time, and sets the tickets' LabID. On an error it stops starting and
// returns the labs started so far with the first error.
func (s *Server) launchTickets(r *http.Request, c *class) ([]*managedLab, error) {
	var (
		mu       sync.Mutex
		started  []*managedLab
		firstErr error
		wg       sync.WaitGroup
		sem      = make(chan struct{}, classLabWorkers)
	)
	for _, tr := range c.Trainees {
		for _, t := range tr.Tickets {
			mu.Lock()
			failed := firstErr != nil
			mu.Unlock()
			if failed {
				break
			}
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer func() { <-sem; wg.Done() }()
				sc, err := scenarios.Lookup(t.Scenario)
				var m *managedLab
				if err == nil {
					m, err = s.launch(r.Context(), &labRecord{ID: newID(), Created: time.Now().UTC(), NextFault: 1, Scenario: sc.Name}, sc, nil)
				}
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					if firstErr == nil {
						firstErr = fmt.Errorf("start the lab of %s's ticket %s: %w", tr.Name, t.ID, err)
					}
					return
				}
				t.LabID = m.rec.ID
				started = append(started, m)
			}()
		}
	}
	wg.Wait()
	return started, firstErr
}

// removeLabs closes labs, classLabWorkers at a time; their ports are free
// when it returns.
func (s *Server) removeLabs(ctx context.Context, labs []*managedLab) error {
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
		sem  = make(chan struct{}, classLabWorkers)
	)
	for _, m := range labs {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := s.remove(ctx, m); err != nil {
				var ae *apiError
				if errors.As(err, &ae) && ae.Status == http.StatusNotFound {
					return // deleted meanwhile
				}
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// classJSON is a class as the admin API shows it.
type classJSON struct {
	ID         string        `json:"id"`
	Name       string        `json:"name"`
	Created    time.Time     `json:"created"`
	Scenarios  []string      `json:"scenarios"`
	Assignment string        `json:"assignment"`
	PerTrainee int           `json:"per_trainee"`
	Trainees   []traineeJSON `json:"trainees"`
}

type traineeJSON struct {
	ID      string       `json:"id"`
	Name    string       `json:"name"`
	Key     string       `json:"key"`
	Link    string       `json:"link"`
	Tickets []ticketJSON `json:"tickets"`
}

// ticketJSON is a ticket as the admin API shows it.
type ticketJSON struct {
	ID                string      `json:"id"`
	TraineeID         string      `json:"trainee_id,omitempty"`
	Scenario          string      `json:"scenario"`
	Title             string      `json:"title"`
	LabID             string      `json:"lab_id"`
	Status            string      `json:"status"`
	OpenedAt          *time.Time  `json:"opened_at"`
	ConnectedAt       *time.Time  `json:"connected_at"`
	AnsweredAt        *time.Time  `json:"answered_at"`
	Seconds           *int64      `json:"seconds"`
	HintsUsed         int         `json:"hints_used"`
	Answer            *answerJSON `json:"answer"`
	Right             *bool       `json:"right"`
	ExpectedRootCause string      `json:"expected_root_cause"`
	Score             int         `json:"score"`
}

type answerJSON struct {
	Code string `json:"code"`
	Fix  string `json:"fix"`
}

// Ticket statuses.
const (
	statusNotStarted = "not_started"
	statusConnected  = "connected"
	statusAnswered   = "answered"
)

// Score rules: a right answer is worth scoreRight, less hintCost per hint
// revealed (not below 0); a wrong one 0.
const (
	scoreRight = 100
	hintCost   = 25
)

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func (t *ticket) status() string {
	switch {
	case t.answered():
		return statusAnswered
	case !t.ConnectedAt.IsZero():
		return statusConnected
	}
	return statusNotStarted
}

func (t *ticket) expected() string {
	if sc, err := scenarios.Lookup(t.Scenario); err == nil {
		return sc.RootCause
	}
	return ""
}

// right is nil before the answer.
func (t *ticket) right() *bool {
	if !t.answered() {
		return nil
	}
	ok := t.AnswerCode == t.expected()
	return &ok
}

func (t *ticket) score() int {
	if r := t.right(); r == nil || !*r {
		return 0
	}
	return max(0, scoreRight-hintCost*t.HintsUsed)
}

// seconds is the time from opening the ticket (or the first connection, or
// the class's creation) to the answer; nil before the answer.
func (t *ticket) seconds() *int64 {
	if !t.answered() {
		return nil
	}
	from := t.OpenedAt
	if from.IsZero() {
		from = t.ConnectedAt
	}
	if from.IsZero() {
		from = t.trainee.class.Created
	}
	n := int64(t.AnsweredAt.Sub(from).Round(time.Second) / time.Second)
	return &n
}

// ticketView is the admin view; s.cls.mu is held.
func ticketView(t *ticket) ticketJSON {
	v := ticketJSON{ID: t.ID, Scenario: t.Scenario, LabID: t.LabID, Status: t.status(),
		OpenedAt: optTime(t.OpenedAt), ConnectedAt: optTime(t.ConnectedAt), AnsweredAt: optTime(t.AnsweredAt),
		Seconds: t.seconds(), HintsUsed: t.HintsUsed, Right: t.right(), ExpectedRootCause: t.expected(), Score: t.score()}
	if sc, err := scenarios.Lookup(t.Scenario); err == nil {
		v.Title = sc.Title
	}
	if t.answered() {
		v.Answer = &answerJSON{Code: t.AnswerCode, Fix: t.AnswerFix}
	}
	return v
}

// classView is the admin view; s.cls.mu is held.
func classView(c *class) classJSON {
	v := classJSON{ID: c.ID, Name: c.Name, Created: c.Created, Scenarios: c.Scenarios, Assignment: c.Assignment, PerTrainee: c.PerTrainee, Trainees: []traineeJSON{}}
	for _, tr := range c.Trainees {
		tv := traineeJSON{ID: tr.ID, Name: tr.Name, Key: tr.Key, Link: "/t/" + tr.Key, Tickets: []ticketJSON{}}
		for _, t := range tr.Tickets {
			tv.Tickets = append(tv.Tickets, ticketView(t))
		}
		v.Trainees = append(v.Trainees, tv)
	}
	return v
}

// classOf returns the class of the request's {cid}, or 404.
func (s *Server) classOf(r *http.Request) (*class, error) {
	id := r.PathValue("cid")
	s.cls.mu.Lock()
	defer s.cls.mu.Unlock()
	c, ok := s.cls.byID[id]
	if !ok {
		return nil, errorf(http.StatusNotFound, "cid", "no class %q (GET /api/v1/classes lists them)", id)
	}
	return c, nil
}

func (s *Server) listClasses(w http.ResponseWriter, r *http.Request) error {
	s.cls.mu.Lock()
	out := make([]classJSON, 0, len(s.cls.order))
	for _, c := range s.cls.order {
		out = append(out, classView(c))
	}
	s.cls.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) getClass(w http.ResponseWriter, r *http.Request) error {
	c, err := s.classOf(r)
	if err != nil {
		return err
	}
	s.cls.mu.Lock()
	v := classView(c)
	s.cls.mu.Unlock()
	writeJSON(w, http.StatusOK, v)
	return nil
}

// deleteClass closes the class's labs (their ports are free when the call
// returns) and deletes the class, its trainees' keys and its answers.
func (s *Server) deleteClass(w http.ResponseWriter, r *http.Request) error {
	c, err := s.classOf(r)
	if err != nil {
		return err
	}
	s.cls.mu.Lock()
	if s.cls.byID[c.ID] != c {
		s.cls.mu.Unlock()
		return errorf(http.StatusNotFound, "cid", "no class %q", c.ID)
	}
	s.cls.unregister(c)
	s.cls.mu.Unlock()
	ctx := context.WithoutCancel(r.Context())
	var labs []*managedLab
	for _, tr := range c.Trainees {
		for _, t := range tr.Tickets {
			if m, ok := s.lab(t.LabID); ok && m.hub != nil {
				labs = append(labs, m)
			}
		}
	}
	errs := []error{s.removeLabs(ctx, labs)}
	c.hub.close()
	if err := s.store.deleteClass(ctx, c.ID); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// classEvents streams the class's ticket changes: first the state of
// every ticket, then each change, as "event: ticket" with the ticket
// (admin view plus trainee_id). A reconnecting client gets the whole state
// again, so Last-Event-ID needs no history.
func (s *Server) classEvents(w http.ResponseWriter, r *http.Request) error {
	c, err := s.classOf(r)
	if err != nil {
		return err
	}
	s.stream(w, r, c.hub, c.hub.last(), func(send func(uint64, string, []byte) error) (uint64, error) {
		// Changes are published under the class lock, so the snapshot
		// and the sequence number it covers agree; later events only.
		s.cls.mu.Lock()
		seq := c.hub.last()
		var snap [][]byte
		for _, tr := range c.Trainees {
			for _, t := range tr.Tickets {
				snap = append(snap, ticketEvent(t))
			}
		}
		s.cls.mu.Unlock()
		for _, data := range snap {
			if err := send(seq, "ticket", data); err != nil {
				return 0, err
			}
		}
		return seq, nil
	}, func(ev Event) (string, []byte) { return ev.Kind, ev.data })
	return nil
}

// resultRow is one ticket's line of the results.
type resultRow struct {
	Trainee    string `json:"trainee"`
	TraineeID  string `json:"trainee_id"`
	Ticket     string `json:"ticket"`
	Scenario   string `json:"scenario"`
	Status     string `json:"status"`
	AnswerCode string `json:"answer_code"`
	Right      *bool  `json:"right"`
	Fix        string `json:"fix"`
	Seconds    *int64 `json:"seconds"`
	HintsUsed  int    `json:"hints_used"`
	Score      int    `json:"score"`
}

func (s *Server) results(c *class) []resultRow {
	s.cls.mu.Lock()
	defer s.cls.mu.Unlock()
	out := []resultRow{}
	for _, tr := range c.Trainees {
		for _, t := range tr.Tickets {
			out = append(out, resultRow{Trainee: tr.Name, TraineeID: tr.ID, Ticket: t.ID, Scenario: t.Scenario, Status: t.status(),
				AnswerCode: t.AnswerCode, Right: t.right(), Fix: t.AnswerFix, Seconds: t.seconds(), HintsUsed: t.HintsUsed, Score: t.score()})
		}
	}
	return out
}

func (s *Server) resultsJSON(w http.ResponseWriter, r *http.Request) error {
	c, err := s.classOf(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.results(c))
	return nil
}

// resultsCSV writes the results as CSV for a spreadsheet. Trainees type
// the names and fixes, so every cell is made inert (csvCell).
func (s *Server) resultsCSV(w http.ResponseWriter, r *http.Request) error {
	c, err := s.classOf(r)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="class-`+c.ID+`-results.csv"`)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	cw := csv.NewWriter(w)
	cw.Write([]string{"trainee", "scenario", "status", "answer_code", "right", "fix", "seconds", "hints_used", "score"})
	for _, row := range s.results(c) {
		right, secs := "", ""
		if row.Right != nil {
			right = strconv.FormatBool(*row.Right)
		}
		if row.Seconds != nil {
			secs = strconv.FormatInt(*row.Seconds, 10)
		}
		rec := []string{row.Trainee, row.Scenario, row.Status, row.AnswerCode, right, row.Fix, secs, strconv.Itoa(row.HintsUsed), strconv.Itoa(row.Score)}
		for i := range rec {
			rec[i] = csvCell(rec[i])
		}
		cw.Write(rec)
	}
	cw.Flush()
	return cw.Error()
}

// csvCell defuses a cell a spreadsheet would run as a formula (CSV
// injection, OWASP): a value starting with = + - @ TAB or CR gets a
// leading apostrophe, which spreadsheets show as text.
func csvCell(v string) string {
	if v != "" && strings.ContainsRune("=+-@\t\r", rune(v[0])) {
		return "'" + v
	}
	return v
}

// debriefJSON is one scenario of a class's debrief.
type debriefJSON struct {
	Scenario          string              `json:"scenario"`
	Title             string              `json:"title"`
	Story             string              `json:"story"`
	Cause             string              `json:"cause"`
	Symptoms          string              `json:"symptoms"`
	Fix               string              `json:"fix"`
	ExpectedRootCause string              `json:"expected_root_cause"`
	Answers           []debriefAnswerJSON `json:"answers"`
}

type debriefAnswerJSON struct {
	Trainee   string `json:"trainee"`
	Code      string `json:"code"`
	Right     bool   `json:"right"`
	Fix       string `json:"fix"`
	Seconds   int64  `json:"seconds"`
	HintsUsed int    `json:"hints_used"`
}

func (s *Server) debrief(w http.ResponseWriter, r *http.Request) error {
	c, err := s.classOf(r)
	if err != nil {
		return err
	}
	s.cls.mu.Lock()
	out := []debriefJSON{}
	for _, name := range c.Scenarios {
		sc, err := scenarios.Lookup(name)
		if err != nil {
			continue
		}
		d := debriefJSON{Scenario: sc.Name, Title: sc.Title, Story: sc.Story, Cause: sc.Cause, Symptoms: sc.Symptoms, Fix: sc.Fix, ExpectedRootCause: sc.RootCause, Answers: []debriefAnswerJSON{}}
		for _, tr := range c.Trainees {
			for _, t := range tr.Tickets {
				if t.Scenario != name || !t.answered() {
					continue
				}
				d.Answers = append(d.Answers, debriefAnswerJSON{Trainee: tr.Name, Code: t.AnswerCode, Right: *t.right(), Fix: t.AnswerFix, Seconds: *t.seconds(), HintsUsed: t.HintsUsed})
			}
		}
		out = append(out, d)
	}
	s.cls.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
	return nil
}
