package serve

import (
	"bufio"
	"bytes"
	"crypto/x509"
	"encoding/csv"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/maillab/maillab/rootcause"
	"github.com/maillab/maillab/scenarios"
	"github.com/maillab/maillab/settings"
)

func TestRootCausesAPI(t *testing.T) {
	ts := newTestServer(t, Options{})
	var got []rootCauseJSON
	code, data := ts.do("GET", "/api/v1/root-causes", nil, true)
	if code != http.StatusOK {
		t.Fatalf("GET /root-causes without a token = %d %s, want 200", code, data)
	}
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(rootcause.All) {
		t.Fatalf("GET /root-causes lists %d codes, want %d", len(got), len(rootcause.All))
	}
	for i, info := range rootcause.All {
		rc := got[i]
		if rc.Code != string(info.Code) || rc.Title != info.Title || rc.Meaning != info.Meaning || rc.Layer != info.Layer.ID() || rc.LayerTitle != info.Layer.Title() {
			t.Errorf("root cause %d = %+v, want the row of %s", i, rc, info.Code)
		}
		if rc.Title == "" || rc.Layer == "" || rc.LayerTitle == "" {
			t.Errorf("%s: title %q layer %q layer_title %q; want all", rc.Code, rc.Title, rc.Layer, rc.LayerTitle)
		}
	}
}

// classResp is a class as the tests read it.
type classResp struct {
	ID         string   `json:"id"`
	Name       string   `json:"name"`
	Scenarios  []string `json:"scenarios"`
	Assignment string   `json:"assignment"`
	Trainees   []struct {
		ID      string       `json:"id"`
		Name    string       `json:"name"`
		Key     string       `json:"key"`
		Link    string       `json:"link"`
		Tickets []ticketJSON `json:"tickets"`
	} `json:"trainees"`
}

func (ts *testServer) createClass(body any) classResp {
	ts.t.Helper()
	var c classResp
	ts.must(http.StatusCreated, "POST", "/api/v1/classes", body, &c)
	return c
}

func (ts *testServer) getClass(id string) classResp {
	ts.t.Helper()
	var c classResp
	ts.must(http.StatusOK, "GET", "/api/v1/classes/"+id, nil, &c)
	return c
}

// trainee sends a request without the token (the key is the credential).
func (ts *testServer) trainee(method, path string, body any) (int, []byte) {
	ts.t.Helper()
	return ts.do(method, "/api/v1/trainee/"+path, body, true)
}

func (ts *testServer) traineeMust(want int, method, path string, body, out any) []byte {
	ts.t.Helper()
	code, data := ts.trainee(method, path, body)
	if code != want {
		ts.t.Fatalf("%s trainee/%s = %d %s, want %d", method, path, code, data, want)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			ts.t.Fatalf("%s trainee/%s: decode %s: %v", method, path, data, err)
		}
	}
	return data
}

func TestClassLifecycle(t *testing.T) {
	ts := newTestServer(t, Options{})
	c := ts.createClass(map[string]any{"name": "Monday group", "trainees": []string{"Ann", "Bob"}, "scenarios": []string{"expired-cert", "wrong-password"}})
	if c.Name != "Monday group" || c.Assignment != "all" || len(c.Trainees) != 2 {
		t.Fatalf("POST /classes = %+v", c)
	}
	labs := map[string]bool{}
	keys := map[string]bool{}
	for _, tr := range c.Trainees {
		if len(tr.Key) != 32 || keys[tr.Key] || tr.Link != "/t/"+tr.Key {
			t.Errorf("trainee %s: key %q link %q, want a distinct 128-bit hex key and /t/KEY", tr.Name, tr.Key, tr.Link)
		}
		keys[tr.Key] = true
		if len(tr.Tickets) != 2 || tr.Tickets[0].Scenario != "expired-cert" || tr.Tickets[1].Scenario != "wrong-password" {
			t.Fatalf("trainee %s tickets = %+v, want one per scenario", tr.Name, tr.Tickets)
		}
		for _, tk := range tr.Tickets {
			if tk.Status != statusNotStarted || tk.Answer != nil || tk.Right != nil || tk.Seconds != nil || tk.Score != 0 {
				t.Errorf("new ticket = %+v, want not started and unanswered", tk)
			}
			if labs[tk.LabID] {
				t.Errorf("ticket %s shares lab %s", tk.ID, tk.LabID)
			}
			labs[tk.LabID] = true
		}
	}
	if n := ts.srv.Labs(); n != 4 {
		t.Errorf("%d labs run, want 4 (one per ticket)", n)
	}
	var list []classResp
	ts.must(http.StatusOK, "GET", "/api/v1/classes", nil, &list)
	if len(list) != 1 || list[0].ID != c.ID {
		t.Fatalf("GET /classes = %+v, want the class", list)
	}
	if got := ts.getClass(c.ID); got.Trainees[1].Tickets[1].LabID != c.Trainees[1].Tickets[1].LabID {
		t.Errorf("GET /classes/%s differs from the created class", c.ID)
	}
	var ports []int
	for id := range labs {
		var l labResp
		ts.must(http.StatusOK, "GET", "/api/v1/labs/"+id, nil, &l)
		for _, p := range l.Ports {
			ports = append(ports, p)
		}
	}

	ts.must(http.StatusNoContent, "DELETE", "/api/v1/classes/"+c.ID, nil, nil)
	for _, p := range ports {
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", fmt.Sprint(p)))
		if err != nil {
			t.Errorf("port %d still taken after DELETE /classes: %v", p, err)
			continue
		}
		ln.Close()
	}
	if n := ts.srv.Labs(); n != 0 {
		t.Errorf("%d labs run after DELETE /classes, want 0", n)
	}
	if code, _ := ts.do("GET", "/api/v1/classes/"+c.ID, nil); code != http.StatusNotFound {
		t.Errorf("GET deleted class = %d, want 404", code)
	}
	if code, _ := ts.trainee("GET", c.Trainees[0].Key, nil); code != http.StatusNotFound {
		t.Errorf("trainee of a deleted class = %d, want 404", code)
	}
}

func TestClassRandomAssignment(t *testing.T) {
	ts := newTestServer(t, Options{})
	scs := []string{"expired-cert", "wrong-password", "healthy"}
	c := ts.createClass(map[string]any{"name": "r", "count": 3, "scenarios": scs, "assignment": "random", "per_trainee": 2})
	for i, tr := range c.Trainees {
		if tr.Name != fmt.Sprintf("Trainee %d", i+1) {
			t.Errorf("trainee %d named %q", i+1, tr.Name)
		}
		if len(tr.Tickets) != 2 || tr.Tickets[0].Scenario == tr.Tickets[1].Scenario {
			t.Errorf("%s tickets = %+v, want 2 distinct scenarios", tr.Name, tr.Tickets)
		}
	}
}

func TestClassBadInput(t *testing.T) {
	ts := newTestServer(t, Options{MaxLabs: 3})
	ok := func(m map[string]any) map[string]any {
		base := map[string]any{"name": "x", "trainees": []string{"Ann"}, "scenarios": []string{"healthy"}}
		for k, v := range m {
			if v == nil {
				delete(base, k)
			} else {
				base[k] = v
			}
		}
		return base
	}
	tests := []struct {
		name      string
		body      any
		wantCode  int
		wantField string
		wantText  string
	}{
		{"empty name", ok(map[string]any{"name": " "}), 400, "name", "empty"},
		{"neither trainees nor count", ok(map[string]any{"trainees": nil}), 400, "trainees", "count"},
		{"trainees and count", ok(map[string]any{"count": 2}), 400, "count", "not both"},
		{"count zero", ok(map[string]any{"trainees": nil, "count": 0}), 400, "count", "1 to"},
		{"empty trainee name", ok(map[string]any{"trainees": []string{"Ann", ""}}), 400, "trainees[1]", "empty"},
		{"trainee twice", ok(map[string]any{"trainees": []string{"Ann", "Ann"}}), 400, "trainees[1]", "twice"},
		{"no scenarios", ok(map[string]any{"scenarios": []string{}}), 400, "scenarios", "at least one"},
		{"unknown scenario names the nearest", ok(map[string]any{"scenarios": []string{"healthy", "expird-cert"}}), 400, "scenarios[1]", "expired-cert"},
		{"scenario twice", ok(map[string]any{"scenarios": []string{"healthy", "healthy"}}), 400, "scenarios[1]", "twice"},
		{"bad assignment", ok(map[string]any{"assignment": "some"}), 400, "assignment", "random"},
		{"per_trainee over the scenarios", ok(map[string]any{"assignment": "random", "per_trainee": 2}), 400, "per_trainee", "1 to 1"},
		{"unknown field", ok(map[string]any{"trainee": "Ann"}), 400, "trainee", "unknown field"},
		{"more labs than --max-labs", ok(map[string]any{"trainees": nil, "count": 2, "scenarios": []string{"healthy", "wrong-password"}}), 409, "", "--max-labs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, data := ts.do("POST", "/api/v1/classes", tt.body)
			var e apiError
			json.Unmarshal(data, &e)
			if code != tt.wantCode || e.Field != tt.wantField || !strings.Contains(e.Msg, tt.wantText) {
				t.Errorf("POST /classes = %d %s, want %d field %q mentioning %q", code, data, tt.wantCode, tt.wantField, tt.wantText)
			}
		})
	}
	if n := ts.srv.Labs(); n != 0 {
		t.Errorf("%d labs run after refused classes, want 0", n)
	}
}

// traineeTicket reads a ticket as its trainee.
func (ts *testServer) traineeTicket(key, tid string) traineeTicketJSON {
	ts.t.Helper()
	var v traineeTicketJSON
	ts.traineeMust(http.StatusOK, "GET", key+"/tickets/"+tid, nil, &v)
	return v
}

// traineeLogin logs in on the ticket lab's submission port with the
// trainee's settings and the password given.
func (ts *testServer) traineeLogin(t *testing.T, key, tid, password string) error {
	t.Helper()
	data := ts.traineeMust(http.StatusOK, "GET", key+"/tickets/"+tid+"/settings.json", nil, nil)
	s, err := settings.Parse("settings.json", data)
	if err != nil {
		t.Fatalf("trainee settings.json: %v", err)
	}
	caPEM := ts.traineeMust(http.StatusOK, "GET", key+"/tickets/"+tid+"/ca.pem", nil, nil)
	b, _ := pem.Decode(caPEM)
	if b == nil {
		t.Fatalf("trainee ca.pem is not PEM")
	}
	cert, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	if password != "" {
		s.Accounts[0].Password = password
	}
	return submit(t, s, pool, s.Accounts[0].Email, "hello")
}

// TestTraineeIsolation: each ticket is its own lab, so locking one
// trainee's account out leaves another's working.
func TestTraineeIsolation(t *testing.T) {
	ts := newTestServer(t, Options{})
	c := ts.createClass(map[string]any{"name": "iso", "trainees": []string{"Ann", "Bob"}, "scenarios": []string{"healthy"}})
	ann, bob := c.Trainees[0], c.Trainees[1]
	annT, bobT := ann.Tickets[0], bob.Tickets[0]
	annV, bobV := ts.traineeTicket(ann.Key, annT.ID), ts.traineeTicket(bob.Key, bobT.ID)
	if annV.DNS == bobV.DNS || annV.Card.Servers[0].Port == bobV.Card.Servers[0].Port {
		t.Errorf("Ann and Bob share DNS %s or port %d", annV.DNS, annV.Card.Servers[0].Port)
	}
	annCA := ts.traineeMust(http.StatusOK, "GET", ann.Key+"/tickets/"+annT.ID+"/ca.pem", nil, nil)
	bobCA := ts.traineeMust(http.StatusOK, "GET", bob.Key+"/tickets/"+bobT.ID+"/ca.pem", nil, nil)
	if bytes.Equal(annCA, bobCA) {
		t.Errorf("Ann and Bob share a CA")
	}
	// The same lockout rule in both labs: two failures lock the account.
	for _, lab := range []string{annT.LabID, bobT.LabID} {
		ts.must(http.StatusCreated, "POST", "/api/v1/labs/"+lab+"/faults", map[string]any{"type": "lockout", "params": map[string]any{"threshold": 2, "window": "1m"}}, nil)
	}
	for i := 0; i < 2; i++ {
		if err := ts.traineeLogin(t, ann.Key, annT.ID, "wrong-password-"+fmt.Sprint(i)); err == nil {
			t.Fatalf("Ann's login with a wrong password succeeded")
		}
	}
	if err := ts.traineeLogin(t, ann.Key, annT.ID, ""); err == nil || !strings.Contains(err.Error(), "Too many failed") {
		t.Fatalf("Ann's right password after two failures: %v, want the lockout", err)
	}
	if err := ts.traineeLogin(t, bob.Key, bobT.ID, ""); err != nil {
		t.Errorf("Bob's login while Ann is locked out: %v, want it to work", err)
	}
}

// TestTraineeSeesNoAnswer: before answering, nothing a trainee can read
// names the scenario, its root cause, cause or fix.
func TestTraineeSeesNoAnswer(t *testing.T) {
	ts := newTestServer(t, Options{})
	// Every scenario of the catalog: a story or a customer setting that
	// named its own scenario would show here.
	names := scenarios.Names()
	if testing.Short() {
		names = []string{"expired-cert", "lockout-after-retries", "smtp-host-typo"}
	}
	c := ts.createClass(map[string]any{"name": "leak", "trainees": []string{"Ann"}, "scenarios": names})
	ann := c.Trainees[0]
	home := ts.traineeMust(http.StatusOK, "GET", ann.Key, nil, nil)
	for i, tk := range ann.Tickets {
		sc, err := scenarios.Lookup(tk.Scenario)
		if err != nil {
			t.Fatal(err)
		}
		secrets := []string{sc.Name, sc.RootCause, sc.Title, sc.Cause, sc.Fix, "expected_root_cause", `"scenario"`}
		reads := map[string][]byte{
			"home":          home,
			"ticket":        ts.traineeMust(http.StatusOK, "GET", ann.Key+"/tickets/"+tk.ID, nil, nil),
			"settings.json": ts.traineeMust(http.StatusOK, "GET", ann.Key+"/tickets/"+tk.ID+"/settings.json", nil, nil),
		}
		for what, data := range reads {
			for _, secret := range secrets {
				if bytes.Contains(data, []byte(secret)) {
					t.Errorf("%s: trainee's %s contains %q before the answer:\n%s", tk.Scenario, what, secret, data)
				}
			}
		}
		v := ts.traineeTicket(ann.Key, tk.ID)
		if v.Title != fmt.Sprintf("Ticket %d", i+1) || v.Story != sc.Story || v.Card == nil || len(v.Card.Servers) == 0 || !strings.HasPrefix(v.DNS, "127.0.0.1:") || v.HintsLeft != 2 {
			t.Errorf("%s: trainee ticket %s = %+v, want title, story, card, DNS and 2 hints", tk.Scenario, reads["ticket"], v)
		}
	}
	// After the answer the trainee learns it.
	tk := ann.Tickets[slices.IndexFunc(ann.Tickets, func(tk ticketJSON) bool { return tk.Scenario == "expired-cert" })]
	var v traineeTicketJSON
	ts.traineeMust(http.StatusOK, "POST", ann.Key+"/tickets/"+tk.ID+"/answer", map[string]string{"code": "AUTH_FAILED", "fix": "reset the password"}, &v)
	if !v.Answered || v.Right == nil || *v.Right || v.ExpectedRootCause != "TLS_CERT_EXPIRED" || v.Debrief == nil || v.Debrief.Fix == "" || v.Answer.Code != "AUTH_FAILED" {
		t.Errorf("answered ticket = %+v, want wrong, expected TLS_CERT_EXPIRED and the debrief", v)
	}
}

func TestTraineeNotFoundIsUniform(t *testing.T) {
	ts := newTestServer(t, Options{})
	c := ts.createClass(map[string]any{"name": "nf", "trainees": []string{"Ann", "Bob"}, "scenarios": []string{"healthy"}})
	ann, bob := c.Trainees[0], c.Trainees[1]
	bobTicket := bob.Tickets[0].ID
	paths := []struct{ method, suffix string }{
		{"GET", ""}, {"GET", "/ca.pem"}, {"GET", "/settings.json"}, {"POST", "/hints"}, {"POST", "/answer"},
	}
	var want []byte
	for _, p := range paths {
		for _, who := range []struct{ name, path string }{
			{"unknown key", strings.Repeat("0", 32) + "/tickets/" + bobTicket},
			{"another trainee's ticket", ann.Key + "/tickets/" + bobTicket},
			{"unknown ticket", ann.Key + "/tickets/nope"},
		} {
			var body any
			if p.suffix == "/answer" {
				body = map[string]string{"code": "HEALTHY"}
			}
			code, data := ts.trainee(p.method, who.path+p.suffix, body)
			if want == nil {
				want = data
			}
			if code != http.StatusNotFound || !bytes.Equal(data, want) {
				t.Errorf("%s %s%s = %d %s, want 404 %s", p.method, who.name, p.suffix, code, data, want)
			}
		}
	}
	if code, data := ts.trainee("GET", "ffff", nil); code != http.StatusNotFound || !bytes.Equal(data, want) {
		t.Errorf("GET unknown trainee = %d %s, want 404 %s", code, data, want)
	}
	for _, p := range []struct{ method, path string }{
		{"GET", ann.Key + "/tickets/" + ann.Tickets[0].ID + "/nope"},
		{"GET", ann.Key + "/nope"},
		{"DELETE", ann.Key + "/tickets/" + ann.Tickets[0].ID},
		{"PUT", ann.Key + "/tickets/" + ann.Tickets[0].ID + "/answer"},
	} {
		if code, data := ts.trainee(p.method, p.path, nil); code != http.StatusNotFound || !bytes.Equal(data, want) {
			t.Errorf("%s unmatched trainee path %s = %d %s, want 404 %s", p.method, p.path, code, data, want)
		}
	}
	req, _ := http.NewRequest("GET", ts.http.URL+"/api/v1/trainee/"+ann.Key, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("Cache-Control") != "no-store" || resp.Header.Get("Referrer-Policy") != "no-referrer" {
		t.Errorf("trainee API headers %v, want Cache-Control: no-store and Referrer-Policy: no-referrer", resp.Header)
	}
	if !bytes.Contains(want, []byte(`"error": "not found"`)) {
		t.Errorf("404 body = %s, want {\"error\":\"not found\"}", want)
	}
	// Bob's ticket is untouched by Ann's attempts.
	if got := ts.getClass(c.ID).Trainees[1].Tickets[0]; got.HintsUsed != 0 || got.Answer != nil || got.OpenedAt != nil {
		t.Errorf("Bob's ticket after Ann's attempts = %+v", got)
	}
}

func TestAnswersHintsAndScore(t *testing.T) {
	ts := newTestServer(t, Options{})
	c := ts.createClass(map[string]any{"name": "score", "trainees": []string{"Ann"}, "scenarios": []string{"expired-cert", "wrong-password", "healthy"}})
	ann := c.Trainees[0]
	cert, pw, healthy := ann.Tickets[0], ann.Tickets[1], ann.Tickets[2]
	base := ann.Key + "/tickets/"

	// Two hints, then none left.
	var v traineeTicketJSON
	ts.traineeMust(http.StatusOK, "POST", base+cert.ID+"/hints", nil, &v)
	if v.HintsLeft != 1 || len(v.Hints) != 1 || !strings.Contains(v.Hints[0], "certificate") {
		t.Errorf("after one hint = %+v, want the layer (encryption and the certificate)", v)
	}
	ts.traineeMust(http.StatusOK, "POST", base+cert.ID+"/hints", nil, &v)
	sc, _ := scenarios.Lookup("expired-cert")
	if v.HintsLeft != 0 || len(v.Hints) != 2 || !strings.Contains(v.Hints[1], sc.Symptoms) {
		t.Errorf("after two hints = %+v, want the symptoms", v)
	}
	if code, _ := ts.trainee("POST", base+cert.ID+"/hints", nil); code != http.StatusConflict {
		t.Errorf("third hint = %d, want 409", code)
	}

	// Unknown code: 400 naming the field; nothing recorded.
	code, data := ts.trainee("POST", base+cert.ID+"/answer", map[string]string{"code": "CERT_OLD"})
	if code != http.StatusBadRequest || !strings.Contains(string(data), `"field": "code"`) {
		t.Errorf("unknown code = %d %s, want 400 field code", code, data)
	}
	ts.traineeMust(http.StatusOK, "POST", base+cert.ID+"/answer", map[string]string{"code": "TLS_CERT_EXPIRED", "fix": "renew it"}, &v)
	if v.Right == nil || !*v.Right || *v.Score != 50 {
		t.Errorf("right after two hints = %+v, want right with 50", v)
	}
	// Answer once: the second is refused and the first stays.
	if code, _ := ts.trainee("POST", base+cert.ID+"/answer", map[string]string{"code": "AUTH_FAILED"}); code != http.StatusConflict {
		t.Errorf("second answer = %d, want 409", code)
	}
	if code, _ := ts.trainee("POST", base+cert.ID+"/hints", nil); code != http.StatusConflict {
		t.Errorf("hint after the answer = %d, want 409", code)
	}
	ts.traineeMust(http.StatusOK, "POST", base+pw.ID+"/answer", map[string]string{"code": "TLS_CERT_EXPIRED"}, nil)
	ts.traineeMust(http.StatusOK, "POST", base+healthy.ID+"/answer", map[string]string{"code": "HEALTHY"}, nil)

	got := ts.getClass(c.ID).Trainees[0].Tickets
	want := []struct {
		code        string
		right       bool
		score, hint int
	}{{"TLS_CERT_EXPIRED", true, 50, 2}, {"TLS_CERT_EXPIRED", false, 0, 0}, {"HEALTHY", true, 100, 0}}
	for i, w := range want {
		g := got[i]
		if g.Status != statusAnswered || g.Answer == nil || g.Answer.Code != w.code || g.Right == nil || *g.Right != w.right || g.Score != w.score || g.HintsUsed != w.hint || g.Seconds == nil || g.AnsweredAt == nil {
			t.Errorf("ticket %s = %+v, want answered %s right=%v score %d hints %d", g.Scenario, g, w.code, w.right, w.score, w.hint)
		}
	}
	var rows []resultRow
	ts.must(http.StatusOK, "GET", "/api/v1/classes/"+c.ID+"/results.json", nil, &rows)
	if len(rows) != 3 || rows[0].Score != 50 || rows[1].Right == nil || *rows[1].Right || rows[2].AnswerCode != "HEALTHY" {
		t.Errorf("results.json = %+v", rows)
	}
	var deb []debriefJSON
	ts.must(http.StatusOK, "GET", "/api/v1/classes/"+c.ID+"/debrief", nil, &deb)
	if len(deb) != 3 || deb[0].Scenario != "expired-cert" || deb[0].Cause != sc.Cause || len(deb[0].Answers) != 1 || deb[0].Answers[0].Trainee != "Ann" || !deb[0].Answers[0].Right {
		t.Errorf("debrief = %+v", deb)
	}
}

func TestCSVCell(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Ann", "Ann"}, {"", ""}, {"=1+2", "'=1+2"}, {"+1", "'+1"}, {"-2", "'-2"}, {"@SUM(A1)", "'@SUM(A1)"},
		{"\tx", "'\tx"}, {"\rx", "'\rx"}, {"a=b", "a=b"},
	}
	for _, tt := range tests {
		if got := csvCell(tt.in); got != tt.want {
			t.Errorf("csvCell(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestResultsCSVInjection(t *testing.T) {
	ts := newTestServer(t, Options{})
	evil := `=HYPERLINK("http://x.test","y")`
	c := ts.createClass(map[string]any{"name": "csv", "trainees": []string{evil, "@Bob"}, "scenarios": []string{"healthy"}})
	ts.traineeMust(http.StatusOK, "POST", c.Trainees[0].Key+"/tickets/"+c.Trainees[0].Tickets[0].ID+"/answer", map[string]string{"code": "HEALTHY", "fix": "-1+cmd|' /C calc'!A0"}, nil)
	data := ts.must(http.StatusOK, "GET", "/api/v1/classes/"+c.ID+"/results.csv", nil, nil)
	recs, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
	if err != nil {
		t.Fatalf("results.csv: %v\n%s", err, data)
	}
	wantHeader := "trainee,scenario,status,answer_code,right,fix,seconds,hints_used,score"
	if len(recs) != 3 || strings.Join(recs[0], ",") != wantHeader {
		t.Fatalf("results.csv =\n%s", data)
	}
	if recs[1][0] != "'"+evil || recs[1][5] != "'-1+cmd|' /C calc'!A0" || recs[1][4] != "true" || recs[1][8] != "100" || recs[2][0] != "'@Bob" {
		t.Errorf("results.csv rows = %q, want formulas defused with a leading '", recs[1:])
	}
	for _, rec := range recs {
		for _, cell := range rec {
			if cell != "" && strings.ContainsRune("=+-@\t\r", rune(cell[0])) {
				t.Errorf("cell %q starts a formula", cell)
			}
		}
	}
}

// classSSE reads a class's event stream.
type classSSE struct {
	resp *http.Response
	sc   *bufio.Scanner
}

func (ts *testServer) subscribeClass(id string) *classSSE {
	ts.t.Helper()
	req, _ := http.NewRequest("GET", ts.http.URL+"/api/v1/classes/"+id+"/events", nil)
	req.Header.Set("Authorization", "Bearer "+ts.srv.Token())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		ts.t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		ts.t.Fatalf("class events = %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	ts.t.Cleanup(func() { resp.Body.Close() })
	sc := bufio.NewScanner(resp.Body)
	if !sc.Scan() || sc.Text() != "retry: 3000" {
		ts.t.Errorf("class events start with %q, want retry: 3000", sc.Text())
	}
	return &classSSE{resp: resp, sc: sc}
}

// next returns the next ticket event.
func (r *classSSE) next(t *testing.T) ticketJSON {
	t.Helper()
	timer := time.AfterFunc(20*time.Second, func() { r.resp.Body.Close() })
	defer timer.Stop()
	kind, id := "", ""
	for r.sc.Scan() {
		line := r.sc.Text()
		switch {
		case strings.HasPrefix(line, "id: "):
			id = strings.TrimPrefix(line, "id: ")
		case strings.HasPrefix(line, "event: "):
			kind = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: ") && kind == "ticket":
			if id == "" {
				t.Errorf("ticket event without id")
			}
			var tk ticketJSON
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &tk); err != nil {
				t.Fatalf("ticket event %q: %v", line, err)
			}
			return tk
		}
	}
	t.Fatalf("class events ended: %v", errors.Join(r.sc.Err(), errors.New("no ticket event")))
	return ticketJSON{}
}

// TestClassEvents: the class stream starts with every ticket, then tells
// when a real client reaches a ticket's lab and when the trainee answers.
// The lab's own simulated client (lockout-after-retries logs in with a
// stale password at start) is not the trainee.
func TestClassEvents(t *testing.T) {
	ts := newTestServer(t, Options{})
	c := ts.createClass(map[string]any{"name": "live", "trainees": []string{"Ann", "Bob"}, "scenarios": []string{"lockout-after-retries"}})
	ann := c.Trainees[0]
	tk := ann.Tickets[0]
	stream := ts.subscribeClass(c.ID)
	seen := map[string]ticketJSON{}
	for range 2 {
		ev := stream.next(t)
		seen[ev.ID] = ev
	}
	for _, tr := range c.Trainees {
		ev, ok := seen[tr.Tickets[0].ID]
		if !ok || ev.TraineeID != tr.ID || ev.Status != statusNotStarted {
			t.Errorf("first events %+v lack %s's ticket, not started", seen, tr.Name)
		}
	}

	ts.traineeTicket(ann.Key, tk.ID) // opens it
	if ev := stream.next(t); ev.ID != tk.ID || ev.OpenedAt == nil || ev.Status != statusNotStarted {
		t.Errorf("after opening: %+v, want opened_at and not_started", ev)
	}
	// A plain SMTP dial to the ticket's lab is a real client.
	var l labResp
	ts.must(http.StatusOK, "GET", "/api/v1/labs/"+tk.LabID, nil, &l)
	conn, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", fmt.Sprint(l.Ports["submission"])))
	if err != nil {
		t.Fatal(err)
	}
	greeting, _ := bufio.NewReader(conn).ReadString('\n')
	conn.Close()
	if !strings.HasPrefix(greeting, "220") {
		t.Errorf("greeting %q", greeting)
	}
	if ev := stream.next(t); ev.ID != tk.ID || ev.Status != statusConnected || ev.ConnectedAt == nil {
		t.Errorf("after the dial: %+v, want connected", ev)
	}
	ts.traineeMust(http.StatusOK, "POST", ann.Key+"/tickets/"+tk.ID+"/answer", map[string]string{"code": "AUTH_ACCOUNT_LOCKED"}, nil)
	if ev := stream.next(t); ev.ID != tk.ID || ev.Status != statusAnswered || ev.Right == nil || !*ev.Right || ev.Score != 100 || ev.TraineeID != ann.ID {
		t.Errorf("after the answer: %+v, want answered right", ev)
	}
	// Bob's lab ran its stale client too, and Bob never connected.
	if got := ts.getClass(c.ID).Trainees[1].Tickets[0]; got.Status != statusNotStarted || got.ConnectedAt != nil {
		t.Errorf("Bob's ticket = %+v, want not started (the lab's own client is not Bob)", got)
	}
	// Deleting the class ends the stream.
	ts.must(http.StatusNoContent, "DELETE", "/api/v1/classes/"+c.ID, nil, nil)
	closed := false
	for stream.sc.Scan() {
		if stream.sc.Text() == "event: closed" {
			closed = true
			break
		}
	}
	if !closed {
		t.Errorf("class stream after DELETE ended without event: closed (%v)", stream.sc.Err())
	}
}

// TestClassesSurviveRestart: a restart in the middle of a class keeps
// classes, keys, answers, hints, times and the tickets' labs.
func TestClassesSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	ts := newTestServer(t, Options{DataDir: dir})
	c := ts.createClass(map[string]any{"name": "restart", "trainees": []string{"Ann", "Bob"}, "scenarios": []string{"expired-cert", "healthy"}})
	ann := c.Trainees[0]
	base := ann.Key + "/tickets/"
	ts.traineeTicket(ann.Key, ann.Tickets[0].ID)
	ts.traineeMust(http.StatusOK, "POST", base+ann.Tickets[0].ID+"/hints", nil, nil)
	ts.traineeMust(http.StatusOK, "POST", base+ann.Tickets[0].ID+"/answer", map[string]string{"code": "TLS_CERT_EXPIRED", "fix": "renew"}, nil)
	ts.traineeMust(http.StatusOK, "POST", base+ann.Tickets[1].ID+"/hints", nil, nil)
	before := ts.getClass(c.ID)
	beforeSettings := ts.traineeMust(http.StatusOK, "GET", base+ann.Tickets[1].ID+"/settings.json", nil, nil)
	ts.close()

	ts2 := newTestServer(t, Options{DataDir: dir})
	after := ts2.getClass(c.ID)
	b, _ := json.Marshal(before)
	a, _ := json.Marshal(after)
	if !bytes.Equal(a, b) {
		t.Errorf("class after restart:\n%s\nwant\n%s", a, b)
	}
	tk := after.Trainees[0].Tickets[0]
	if tk.Answer == nil || tk.Answer.Fix != "renew" || tk.HintsUsed != 1 || tk.Score != 75 || tk.OpenedAt == nil {
		t.Errorf("answered ticket after restart = %+v", tk)
	}
	if again := ts2.traineeMust(http.StatusOK, "GET", base+ann.Tickets[1].ID+"/settings.json", nil, nil); !bytes.Equal(again, beforeSettings) {
		t.Errorf("trainee settings changed across restart:\n%s\nwant\n%s", again, beforeSettings)
	}
	if code, _ := ts2.trainee("POST", base+ann.Tickets[0].ID+"/answer", map[string]string{"code": "HEALTHY"}); code != http.StatusConflict {
		t.Errorf("answer after restart = %d, want 409 (answered before)", code)
	}
	if err := ts2.traineeLogin(t, c.Trainees[1].Key, c.Trainees[1].Tickets[1].ID, ""); err != nil {
		t.Errorf("Bob's healthy lab after restart: %v", err)
	}
	ts2.must(http.StatusNoContent, "DELETE", "/api/v1/classes/"+c.ID, nil, nil)
}

// TestCookieSameOrigin: a request that changes something, authenticated
// by the cookie alone, must come from our own pages.
func TestCookieSameOrigin(t *testing.T) {
	ts := newTestServer(t, Options{})
	host := strings.TrimPrefix(ts.http.URL, "http://")
	tests := []struct {
		name   string
		method string
		cookie bool
		header map[string]string
		want   int
	}{
		{"cookie, no origin information", "POST", true, nil, http.StatusForbidden},
		{"cookie, foreign Origin", "POST", true, map[string]string{"Origin": "http://evil.test"}, http.StatusForbidden},
		{"cookie, foreign Origin despite same-origin", "POST", true, map[string]string{"Origin": "http://evil.test", "Sec-Fetch-Site": "same-origin"}, http.StatusForbidden},
		{"cookie, cross-site", "POST", true, map[string]string{"Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
		{"cookie, same-site", "DELETE", true, map[string]string{"Sec-Fetch-Site": "same-site"}, http.StatusForbidden},
		{"cookie, Origin null alone", "POST", true, map[string]string{"Origin": "null"}, http.StatusForbidden},
		{"cookie, Origin null and same-origin", "POST", true, map[string]string{"Origin": "null", "Sec-Fetch-Site": "same-origin"}, http.StatusBadRequest},
		{"cookie, same-origin", "POST", true, map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": "http://" + host}, http.StatusBadRequest},
		{"cookie, matching Origin without fetch metadata", "POST", true, map[string]string{"Origin": "http://" + host}, http.StatusBadRequest},
		{"cookie, GET from anywhere", "GET", true, map[string]string{"Origin": "http://evil.test", "Sec-Fetch-Site": "cross-site"}, http.StatusOK},
		{"bearer, foreign Origin", "POST", false, map[string]string{"Origin": "http://evil.test"}, http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := "/api/v1/classes"
			if tt.method == "DELETE" {
				path += "/nope"
			}
			req, _ := http.NewRequest(tt.method, ts.http.URL+path, strings.NewReader(`{}`))
			if tt.cookie {
				req.AddCookie(&http.Cookie{Name: CookieName, Value: ts.srv.Token()})
			} else {
				req.Header.Set("Authorization", "Bearer "+ts.srv.Token())
			}
			for k, v := range tt.header {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Errorf("%s %s = %d, want %d", tt.method, path, resp.StatusCode, tt.want)
			}
		})
	}
}

// FuzzClassRequest: any body of POST /classes is accepted (with names
// and known scenarios) or refused with a 4xx that says what is wrong;
// never a panic.
func FuzzClassRequest(f *testing.F) {
	f.Add(`{"name":"Monday","trainees":["Ann","Bob"],"scenarios":["expired-cert"]}`)
	f.Add(`{"name":"x","count":3,"scenarios":["healthy","wrong-password"],"assignment":"random","per_trainee":2}`)
	f.Add(`{"name":"x","count":-1,"trainees":[""],"scenarios":[]}`)
	f.Add(`{"name":"x","trainees":["=1"],"scenarios":["expird-cert"],"per_trainee":0}`)
	f.Fuzz(func(t *testing.T, body string) {
		r := httptest.NewRequest("POST", "/api/v1/classes", strings.NewReader(body))
		r.Body = http.MaxBytesReader(httptest.NewRecorder(), r.Body, 1<<12)
		var req classRequest
		err := decodeBody(r, &req)
		var names []string
		var scs []*scenarios.Scenario
		if err == nil {
			names, scs, err = req.validate()
		}
		if err != nil {
			var ae *apiError
			if !errors.As(err, &ae) || ae.Status/100 != 4 || ae.Msg == "" {
				t.Errorf("body %q: %v, want a 4xx apiError", body, err)
			}
			return
		}
		if len(names) == 0 || len(scs) == 0 || req.Name == "" || (req.Assignment != "all" && req.Assignment != "random") {
			t.Errorf("body %q accepted as %+v with %d trainees and %d scenarios", body, req, len(names), len(scs))
		}
	})
}

// TestDNSQueryMarksConnected: for a trainee whose client never gets past
// the name (smtp-host-typo), a DNS query to the ticket's lab is the sign
// that they are at work.
func TestDNSQueryMarksConnected(t *testing.T) {
	ts := newTestServer(t, Options{})
	c := ts.createClass(map[string]any{"name": "dns", "trainees": []string{"Ann"}, "scenarios": []string{"smtp-host-typo"}})
	ann := c.Trainees[0]
	v := ts.traineeTicket(ann.Key, ann.Tickets[0].ID)
	host := v.Card.Servers[0].Host
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(host), dns.TypeA)
	r, err := dns.Exchange(m, v.DNS)
	if err != nil {
		t.Fatalf("query %s at %s: %v", host, v.DNS, err)
	}
	if r.Rcode != dns.RcodeNameError {
		t.Errorf("%s: rcode %s, want NXDOMAIN (the typo)", host, dns.RcodeToString[r.Rcode])
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		tk := ts.getClass(c.ID).Trainees[0].Tickets[0]
		if tk.Status == statusConnected && tk.ConnectedAt != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ticket after a DNS query = %+v, want connected", tk)
		}
	}
}

// TestAnswerOnceUnderRace: of many answers sent at once, exactly one
// counts and the others get 409.
func TestAnswerOnceUnderRace(t *testing.T) {
	ts := newTestServer(t, Options{})
	c := ts.createClass(map[string]any{"name": "race", "trainees": []string{"Ann"}, "scenarios": []string{"healthy"}})
	path := ts.http.URL + "/api/v1/trainee/" + c.Trainees[0].Key + "/tickets/" + c.Trainees[0].Tickets[0].ID + "/answer"
	codes := make(chan int, 10)
	for i := range 10 {
		go func() {
			body := fmt.Sprintf(`{"code":"HEALTHY","fix":"answer %d"}`, i)
			resp, err := http.Post(path, "application/json", strings.NewReader(body))
			if err != nil {
				codes <- 0
				return
			}
			resp.Body.Close()
			codes <- resp.StatusCode
		}()
	}
	count := map[int]int{}
	for range 10 {
		count[<-codes]++
	}
	if count[http.StatusOK] != 1 || count[http.StatusConflict] != 9 {
		t.Errorf("10 answers at once: %v, want one 200 and nine 409", count)
	}
	if tk := ts.getClass(c.ID).Trainees[0].Tickets[0]; tk.Answer == nil || !strings.HasPrefix(tk.Answer.Fix, "answer ") {
		t.Errorf("ticket = %+v, want the one answer", tk)
	}
}

// TestClassesLeakNothing creates and deletes classes (with the class
// stream open and a client connected to a ticket's lab) and compares
// goroutines, file descriptors, listening sockets and lab directories.
func TestClassesLeakNothing(t *testing.T) {
	n := 20
	if testing.Short() || raceEnabled {
		n = 6
	}
	t.Setenv("TMPDIR", t.TempDir())
	ts := newTestServer(t, Options{})
	body := map[string]any{"name": "leak", "trainees": []string{"Ann", "Bob"}, "scenarios": []string{"healthy", "lockout-after-retries"}}
	c := ts.createClass(body) // warm up
	ts.must(http.StatusNoContent, "DELETE", "/api/v1/classes/"+c.ID, nil, nil)
	http.DefaultClient.CloseIdleConnections()
	before := countResources(t, ts.dir)
	for range n {
		c := ts.createClass(body)
		stream := ts.subscribeClass(c.ID)
		var l labResp
		ts.must(http.StatusOK, "GET", "/api/v1/labs/"+c.Trainees[0].Tickets[0].LabID, nil, &l)
		client, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", fmt.Sprint(l.Ports["submission"])))
		if err != nil {
			t.Fatal(err)
		}
		ts.must(http.StatusNoContent, "DELETE", "/api/v1/classes/"+c.ID, nil, nil)
		closed := false
		for !closed && stream.sc.Scan() {
			closed = stream.sc.Text() == "event: closed"
		}
		if !closed {
			t.Errorf("class stream ended without event: closed")
		}
		stream.resp.Body.Close()
		client.Close()
	}
	var after resources
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		http.DefaultClient.CloseIdleConnections()
		after = countResources(t, ts.dir)
		if after.goroutines <= before.goroutines+2 && after.fds <= before.fds+2 || time.Now().After(deadline) {
			break
		}
	}
	t.Logf("%d classes of 4 labs created and deleted: before %+v, after %+v", n, before, after)
	if after.goroutines > before.goroutines+2 || after.fds > before.fds+2 || after.listening > before.listening || after.labDirs != 0 {
		t.Errorf("after %d classes: before %+v, after %+v", n, before, after)
	}
	ts.srv.cls.mu.Lock()
	defer ts.srv.cls.mu.Unlock()
	if len(ts.srv.cls.byID) != 0 || len(ts.srv.cls.byKey) != 0 {
		t.Errorf("classes still registered: %d, keys %d", len(ts.srv.cls.byID), len(ts.srv.cls.byKey))
	}
}
