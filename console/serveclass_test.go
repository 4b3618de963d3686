package console_test

import (
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// TestClassWithServe runs a class through the console mounted by a real
// serve.Server: the trainer creates it from the form, a trainee opens the
// personal link, takes a hint and answers; the board, the debrief and the
// trainee's page show it; another trainee's key does not open the ticket.
func TestClassWithServe(t *testing.T) {
	srv, ts := startServe(t)
	get := func(hc *http.Client, path string) (int, string) {
		t.Helper()
		code, _, body := browserGet(t, hc, ts.URL+path)
		return code, body
	}
	csrfRE := regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`)
	post := func(hc *http.Client, page, path string, form url.Values) (int, string) {
		t.Helper()
		m := csrfRE.FindStringSubmatch(page)
		if m == nil {
			t.Fatalf("POST %s: the page has no CSRF token", path)
		}
		resp := browserPost(t, hc, ts.URL, path, m[1], form)
		defer resp.Body.Close()
		if resp.StatusCode == http.StatusSeeOther {
			return resp.StatusCode, resp.Header.Get("Location")
		}
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	trainer := newBrowser()
	get(trainer, "/?token="+srv.Token())
	if code, _ := get(trainer, "/api/v1/classes"); code == http.StatusNotFound {
		t.Skip("this build's serve API has no /api/v1/classes (contract section 1, branch classes-api)")
	}
	_, form := get(trainer, "/classes/new")
	code, body := post(trainer, form, "/classes", url.Values{"name": {"Monday"}, "trainees": {"Ann\nBob"}, "assignment": {"all"}, "scenario": {"no-such-scenario"}})
	if code != http.StatusBadRequest || !strings.Contains(body, `data-test="form-error"`) || !strings.Contains(body, "Ann\nBob") {
		t.Fatalf("POST /classes with an unknown scenario = %d, want 400 with the error and the names kept", code)
	}
	code, loc := post(trainer, form, "/classes", url.Values{"name": {"Monday"}, "trainees": {"Ann\nBob"}, "assignment": {"all"}, "scenario": {"wrong-password"}})
	if code != http.StatusSeeOther || !strings.HasPrefix(loc, "/classes/") {
		t.Fatalf("POST /classes = %d %q, want 303 to the class", code, loc)
	}
	_, board := get(trainer, loc)
	links := regexp.MustCompile(`data-test="trainee-link" class="link" href="`+regexp.QuoteMeta(ts.URL)+`(/t/[0-9a-zA-Z]+)"`).FindAllStringSubmatch(board, -1)
	if len(links) != 2 || !strings.Contains(board, `data-trainee="Ann"`) {
		t.Fatalf("the board has %d absolute trainee links, want 2", len(links))
	}
	ann, bob := links[0][1], links[1][1]

	trainee := newBrowser()
	code, home := get(trainee, ann)
	m := regexp.MustCompile(`data-test="ticket-link" data-ticket="([^"]+)" href="([^"]+)"`).FindStringSubmatch(home)
	if code != http.StatusOK || m == nil {
		t.Fatalf("GET %s = %d without a ticket link", ann, code)
	}
	tid, ticketPath := m[1], m[2]
	code, page := get(trainee, ticketPath)
	if code != http.StatusOK || !strings.Contains(page, `data-test="answer-form"`) || strings.Contains(page, "wrong-password") {
		t.Fatalf("GET %s = %d: no answer form, or the scenario name shows before answering", ticketPath, code)
	}
	if code, _ := get(trainee, bob+"/tickets/"+tid); code != http.StatusNotFound {
		t.Errorf("Bob's key with Ann's ticket = %d, want 404", code)
	}
	if code, _ := post(trainee, page, ticketPath+"/hints", url.Values{}); code != http.StatusSeeOther {
		t.Fatalf("POST hint = %d, want 303", code)
	}
	_, page = get(trainee, ticketPath)
	if !strings.Contains(page, `<ol data-test="hints"><li>`) {
		t.Errorf("no hint shown after asking for one")
	}
	if code, _ := post(trainee, page, ticketPath+"/answer", url.Values{"code": {"AUTH_FAILED"}, "fix": {"type the new password"}}); code != http.StatusSeeOther {
		t.Fatalf("POST answer = %d, want 303", code)
	}
	_, page = get(trainee, ticketPath)
	if !strings.Contains(page, `data-test="result" data-result="right"`) || !strings.Contains(page, `data-test="debrief"`) {
		t.Errorf("after a right answer the page has no right result or no debrief")
	}
	_, board = get(trainer, loc)
	if !regexp.MustCompile(`data-ticket="` + tid + `" data-scenario="wrong-password" data-status="answered" data-result="right"`).MatchString(board) {
		t.Errorf("the board does not show the ticket answered right")
	}
	_, debrief := get(trainer, loc+"/debrief")
	if !strings.Contains(debrief, `data-test="debrief-scenario" data-scenario="wrong-password"`) || !strings.Contains(debrief, "type the new password") {
		t.Errorf("the debrief does not show the scenario and Ann's fix")
	}
	_, board = get(trainer, loc)
	if code, to := post(trainer, board, loc+"/delete", url.Values{}); code != http.StatusSeeOther || to != "/classes" {
		t.Errorf("POST delete class = %d %q", code, to)
	}
	if code, _ := get(trainee, ticketPath); code != http.StatusNotFound {
		t.Errorf("the ticket after deleting the class = %d, want 404", code)
	}
}
