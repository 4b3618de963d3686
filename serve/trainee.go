package serve

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/maillab/maillab/rootcause"
	"github.com/maillab/maillab/scenarios"
	"github.com/maillab/maillab/settings"
)

// The trainee API needs no token: the key in the path is the trainee's
// credential. An unknown key and a ticket of someone else get the same
// 404, so a key cannot be probed through another's tickets.
var errNotFound = errorf(http.StatusNotFound, "", "not found")

// traineeOf returns the trainee of the request's {key}.
func (s *Server) traineeOf(r *http.Request) (*trainee, error) {
	s.cls.mu.Lock()
	defer s.cls.mu.Unlock()
	tr, ok := s.cls.byKey[r.PathValue("key")]
	if !ok {
		return nil, errNotFound
	}
	return tr, nil
}

// traineeTicketOf returns the trainee's ticket {tid} and its number
// (from 1) among the trainee's tickets.
func (s *Server) traineeTicketOf(r *http.Request) (*ticket, int, error) {
	tr, err := s.traineeOf(r)
	if err != nil {
		return nil, 0, err
	}
	tid := r.PathValue("tid")
	for i, t := range tr.Tickets {
		if t.ID == tid {
			return t, i + 1, nil
		}
	}
	return nil, 0, errNotFound
}

// traineeTitle names a ticket for its trainee. The scenario's own title
// tells the answer ("The certificate has expired"), so a trainee sees
// only the ticket's number.
func traineeTitle(n int) string { return "Ticket " + strconv.Itoa(n) }

// traineeHomeJSON is GET /api/v1/trainee/{key}.
type traineeHomeJSON struct {
	Name    string              `json:"name"`
	Class   string              `json:"class"`
	Tickets []traineeTicketLine `json:"tickets"`
}

type traineeTicketLine struct {
	ID       string `json:"id"`
	Title    string `json:"title"`
	Status   string `json:"status"`
	Answered bool   `json:"answered"`
	Right    *bool  `json:"right,omitempty"`
}

func (s *Server) traineeHome(w http.ResponseWriter, r *http.Request) error {
	tr, err := s.traineeOf(r)
	if err != nil {
		return err
	}
	s.cls.mu.Lock()
	v := traineeHomeJSON{Name: tr.Name, Class: tr.class.Name, Tickets: []traineeTicketLine{}}
	for i, t := range tr.Tickets {
		v.Tickets = append(v.Tickets, traineeTicketLine{ID: t.ID, Title: traineeTitle(i + 1), Status: t.status(), Answered: t.answered(), Right: t.right()})
	}
	s.cls.mu.Unlock()
	writeJSON(w, http.StatusOK, v)
	return nil
}

// cardJSON is the customer's settings as a printed card: what the
// customer typed into the mail client.
type cardJSON struct {
	Domain   string           `json:"domain"`
	Email    string           `json:"email"`
	Username string           `json:"username"`
	Password string           `json:"password"`
	Servers  []cardServerJSON `json:"servers"`
}

type cardServerJSON struct {
	// Service is the settings' name ("submission", "imaps").
	Service string `json:"service"`
	// Role is "Outgoing mail (SMTP)" or "Incoming mail (IMAP)" / "(POP3)".
	Role     string `json:"role"`
	Protocol string `json:"protocol"`
	Host     string `json:"host"`
	Port     int    `json:"port"`
	// Security is "none", "starttls" or "tls" (SSL/TLS).
	Security string `json:"security"`
}

// card builds the settings card, services in the settings' order.
func card(cs *settings.Settings) *cardJSON {
	c := &cardJSON{Domain: cs.Domain, Servers: []cardServerJSON{}}
	if len(cs.Accounts) > 0 {
		a := cs.Accounts[0]
		c.Email, c.Username, c.Password = a.Email, a.Username, a.Password
	}
	for _, info := range settings.Services {
		svc, ok := cs.Services[info.Name]
		if !ok {
			continue
		}
		role := "Incoming mail (" + strings.ToUpper(info.Protocol) + ")"
		if info.Protocol == settings.ProtocolSMTP {
			role = "Outgoing mail (SMTP)"
		}
		c.Servers = append(c.Servers, cardServerJSON{Service: info.Name, Role: role, Protocol: info.Protocol, Host: svc.Host, Port: svc.Port, Security: svc.Security})
	}
	return c
}

// traineeSettings is the customer's settings without what gives the
// answer away (the scenario's name and expected root cause).
func traineeSettings(cs *settings.Settings) *settings.Settings {
	c := cs.Clone()
	c.ExpectedRootCause, c.Scenario = "", ""
	return c
}

// hints are a ticket's hints in the order they are revealed: the layer in
// plain words, then how the failure shows in real clients.
func hints(sc *scenarios.Scenario) []string {
	layer := rootcause.LayerOf(rootcause.Code(sc.RootCause))
	return []string{
		"Look at this part of the connection: " + layer.Title() + ".",
		"How it shows in real mail clients: " + sc.Symptoms,
	}
}

// traineeTicketJSON is a ticket as its trainee sees it. Before the answer
// it holds nothing that names the scenario or its root cause.
type traineeTicketJSON struct {
	ID     string `json:"id"`
	Title  string `json:"title"`
	Story  string `json:"story"`
	Status string `json:"status"`
	// Card, Settings and DNS are null/empty while the ticket's lab is
	// not running.
	Card      *cardJSON       `json:"card"`
	Settings  json.RawMessage `json:"settings"`
	DNS       string          `json:"dns"`
	Hints     []string        `json:"hints"`
	HintsLeft int             `json:"hints_left"`
	Answered  bool            `json:"answered"`
	// After the answer only.
	Answer            *answerJSON  `json:"answer,omitempty"`
	Right             *bool        `json:"right,omitempty"`
	ExpectedRootCause string       `json:"expected_root_cause,omitempty"`
	Score             *int         `json:"score,omitempty"`
	Debrief           *debriefText `json:"debrief,omitempty"`
}

type debriefText struct {
	Cause    string `json:"cause"`
	Symptoms string `json:"symptoms"`
	Fix      string `json:"fix"`
}

// traineeTicketView builds the trainee's view of t (number n). The lab's
// part is read first, outside the class lock: a lab being rebuilt holds
// its own lock for a while, and the other tickets must not wait for it.
func (s *Server) traineeTicketView(t *ticket, n int) (traineeTicketJSON, error) {
	sc, err := scenarios.Lookup(t.Scenario)
	if err != nil {
		return traineeTicketJSON{}, err
	}
	v := traineeTicketJSON{ID: t.ID, Title: traineeTitle(n), Story: sc.Story, Settings: json.RawMessage("null")}
	if m, ok := s.lab(t.LabID); ok && m.hub != nil {
		if l, cs, ok := m.current(); ok {
			ts := traineeSettings(cs)
			data, err := ts.Marshal()
			if err != nil {
				return v, err
			}
			v.Card, v.Settings, v.DNS = card(ts), data, ts.Resolver
			if v.DNS == "" {
				v.DNS = l.DNSAddr
			}
		}
	}
	s.cls.mu.Lock()
	defer s.cls.mu.Unlock()
	hs := hints(sc)
	v.Status, v.Answered = t.status(), t.answered()
	v.Hints, v.HintsLeft = hs[:min(t.HintsUsed, len(hs))], max(0, len(hs)-t.HintsUsed)
	if t.answered() {
		score := t.score()
		v.Answer, v.Right, v.ExpectedRootCause, v.Score = &answerJSON{Code: t.AnswerCode, Fix: t.AnswerFix}, t.right(), sc.RootCause, &score
		v.Debrief = &debriefText{Cause: sc.Cause, Symptoms: sc.Symptoms, Fix: sc.Fix}
	}
	return v, nil
}

// writeTraineeTicket answers with the trainee's view of t.
func (s *Server) writeTraineeTicket(w http.ResponseWriter, t *ticket, n int) error {
	v, err := s.traineeTicketView(t, n)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

// traineeTicket returns the ticket; the first call marks it opened.
func (s *Server) traineeTicket(w http.ResponseWriter, r *http.Request) error {
	t, n, err := s.traineeTicketOf(r)
	if err != nil {
		return err
	}
	err = s.changeTicket(t, func(t *ticket) error {
		if t.OpenedAt.IsZero() {
			t.OpenedAt = time.Now().UTC()
		}
		return nil
	})
	if err != nil {
		return err
	}
	return s.writeTraineeTicket(w, t, n)
}

// traineeLab returns the running lab of the trainee's ticket.
func (s *Server) traineeLab(r *http.Request) (*managedLab, error) {
	t, _, err := s.traineeTicketOf(r)
	if err != nil {
		return nil, err
	}
	m, ok := s.lab(t.LabID)
	if !ok || m.hub == nil {
		return nil, errorf(http.StatusConflict, "", "the ticket's lab is not running: ask the trainer")
	}
	return m, nil
}

func (s *Server) traineeCA(w http.ResponseWriter, r *http.Request) error {
	m, err := s.traineeLab(r)
	if err != nil {
		return err
	}
	return writeCA(w, m, "maillab-ca.pem")
}

// traineeSettingsJSON returns the customer's settings (--settings-out
// format) without the scenario and expected root cause.
func (s *Server) traineeSettingsJSON(w http.ResponseWriter, r *http.Request) error {
	m, err := s.traineeLab(r)
	if err != nil {
		return err
	}
	_, cs, ok := m.current()
	if !ok {
		return errorf(http.StatusConflict, "", "the ticket's lab is not running: ask the trainer")
	}
	data, err := traineeSettings(cs).Marshal()
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Disposition", `attachment; filename="settings.json"`)
	w.Write(data)
	return nil
}

// traineeHint reveals the next hint; each costs hintCost points of a
// right answer.
func (s *Server) traineeHint(w http.ResponseWriter, r *http.Request) error {
	t, n, err := s.traineeTicketOf(r)
	if err != nil {
		return err
	}
	sc, err := scenarios.Lookup(t.Scenario)
	if err != nil {
		return err
	}
	err = s.changeTicket(t, func(t *ticket) error {
		switch {
		case t.answered():
			return errorf(http.StatusConflict, "", "the ticket is answered: no more hints")
		case t.HintsUsed >= len(hints(sc)):
			return errorf(http.StatusConflict, "", "no hints left")
		}
		t.HintsUsed++
		return nil
	})
	if err != nil {
		return err
	}
	return s.writeTraineeTicket(w, t, n)
}

// answerRequest is the body of POST .../answer.
type answerRequest struct {
	Code string `json:"code"`
	Fix  string `json:"fix"`
}

// traineeAnswer records the trainee's one answer: the root cause and the
// fix in their words. A second answer is refused; the first stays.
func (s *Server) traineeAnswer(w http.ResponseWriter, r *http.Request) error {
	t, n, err := s.traineeTicketOf(r)
	if err != nil {
		return err
	}
	var req answerRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	req.Code = strings.TrimSpace(req.Code)
	switch {
	case req.Code == "":
		return errorf(http.StatusBadRequest, "code", "code is empty: pick the root cause (GET /api/v1/root-causes lists them)")
	case !rootcause.Valid(req.Code):
		return errorf(http.StatusBadRequest, "code", "unknown root cause %q (GET /api/v1/root-causes lists them)", req.Code)
	case len(req.Fix) > maxFixBytes:
		return errorf(http.StatusBadRequest, "fix", "fix is over %d bytes", maxFixBytes)
	}
	err = s.changeTicket(t, func(t *ticket) error {
		if t.answered() {
			return errorf(http.StatusConflict, "", "the ticket is answered already: an answer counts once")
		}
		t.AnswerCode, t.AnswerFix, t.AnsweredAt = req.Code, strings.TrimSpace(req.Fix), time.Now().UTC()
		return nil
	})
	if err != nil {
		return err
	}
	return s.writeTraineeTicket(w, t, n)
}
