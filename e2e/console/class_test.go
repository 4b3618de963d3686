//go:build e2e

package console

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/maillab/maillab/scenarios"
)

// transcriptWait is how soon a trainee's failure must show in the
// trainer's live transcript (issue 10).
const transcriptWait = 2 * time.Second

// boardTrainee is a row of the live class board as the page shows it.
type boardTrainee struct {
	Name  string      `json:"name"`
	Link  string      `json:"link"`
	Cells []boardCell `json:"cells"`
}

type boardCell struct {
	Ticket   string `json:"ticket"`
	Scenario string `json:"scenario"`
	Status   string `json:"status"`
	Result   string `json:"result"`
	Lab      string `json:"lab"`
}

// readBoard reads the class board from the page's data-test attributes.
const readBoard = `[...document.querySelectorAll('table[data-test=class-board] tr[data-test=trainee-row]')].map(r => ({
	name: r.dataset.trainee,
	link: (r.querySelector('a[data-test=trainee-link]') || {}).href || "",
	cells: [...r.querySelectorAll('td[data-test=ticket-cell]')].map(c => ({
		ticket: c.dataset.ticket, scenario: c.dataset.scenario,
		status: c.dataset.status, result: c.dataset.result || "",
		lab: ((c.querySelector('a[href*="/labs/"]') || {}).href) || "",
	})),
}))`

// cellSel selects a ticket's cell on the board.
func cellSel(tid string) string {
	return fmt.Sprintf(`document.querySelector('td[data-test=ticket-cell][data-ticket="%s"]')`, tid)
}

// curlSymptom is what the scenario's symptoms say curl prints.
var curlSymptom = regexp.MustCompile(`curl: "([^"]+)"`)

// failure is how a scenario's failure shows in the trainer's transcript:
// a JavaScript condition on a transcript line element l.
var failure = map[string]string{
	// The server sees the client abort the handshake.
	"expired-cert": `l.dataset.service === 'imaps' && l.textContent.includes('TLS handshake failed')`,
	// The lab notes the refused login (kind auth), highlighted.
	"wrong-password": `l.dataset.service === 'imaps' && l.dataset.kind === 'auth' && l.classList.contains('hl')`,
}

// TestClass runs a class end to end in the browser, as issue 10 asks: the
// trainer creates a class of 3 trainees × 2 scenarios through the form;
// trainees open their personal links in browsers of their own; their
// curl against the ticket's customer settings fails as the scenario says,
// and the failure shows in the trainer's live transcript within 2 s; one
// answers right, the other takes a hint and answers wrong; the board,
// never reloaded, follows live (connected, hints, answered, right/wrong);
// the CSV export holds both answers with hints and scores, and the
// debrief shows them.
func TestClass(t *testing.T) {
	curl := need(t, []string{"curl"}, "curl")
	c := startConsole(t)
	b := startBrowser(t)
	started := time.Now()

	// The trainer opens the printed URL: the token becomes a cookie.
	trainer := b.tab("trainer")
	trainer.visit(c.printedURL())
	if u := trainer.location(); u.RawQuery != "" {
		t.Errorf("trainer: after the printed URL the address is %s, want the token gone from it", u)
	}
	trainer.click(`a[data-test=nav-classes]`)
	trainer.click(`a[data-test=new-class]`)
	trainer.waitFor(`form[data-test=class-form]`)
	trainer.setValue(`form[data-test=class-form] input[name=name]`, "Monday group")
	trainer.setValue(`form[data-test=class-form] textarea[name=trainees]`, "Ann\nBob\nCem")
	names := []string{"expired-cert", "wrong-password"}
	for _, sc := range names {
		trainer.click(fmt.Sprintf(`form[data-test=class-form] input[name=scenario][value=%q]`, sc))
	}
	trainer.setValue(`form[data-test=class-form] select[name=assignment]`, "all")
	trainer.click(`button[data-test=create-class]`)
	trainer.waitFor(`table[data-test=class-board]`)
	cid := strings.TrimPrefix(trainer.location().Path, "/classes/")
	if cid == "" || strings.Contains(cid, "/") {
		t.Fatalf("trainer: after creating the class the page is %s, want /classes/{cid}", trainer.location())
	}
	// A mark on the board's window: it must survive to the end, so every
	// change below reached the board live, not by a reload.
	eval[bool](trainer, `(window.maillabBoardMark = true)`)

	board := eval[[]boardTrainee](trainer, readBoard)
	byName := map[string]boardTrainee{}
	for _, tr := range board {
		byName[tr.Name] = tr
		var got []string
		for _, cell := range tr.Cells {
			got = append(got, cell.Scenario)
			if cell.Status != "not_started" || cell.Result != "" {
				t.Errorf("board: %s %s status=%q result=%q, want not_started and no result", tr.Name, cell.Scenario, cell.Status, cell.Result)
			}
			if !strings.HasPrefix(cell.Lab, c.base+"/labs/") {
				t.Errorf("board: %s %s links to %q, want the lab view %s/labs/{id}", tr.Name, cell.Scenario, cell.Lab, c.base)
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, names) {
			t.Errorf("board: %s has tickets %v, want %v", tr.Name, got, names)
		}
		if !strings.HasPrefix(tr.Link, c.base+"/t/") {
			t.Errorf("board: %s's personal link is %q, want %s/t/{key}", tr.Name, tr.Link, c.base)
		}
	}
	if len(board) != 3 || byName["Ann"].Name == "" || byName["Bob"].Name == "" || byName["Cem"].Name == "" {
		t.Fatalf("board: trainees %+v, want Ann, Bob and Cem", board)
	}
	cell := func(trainee, scenario string) boardCell {
		for _, c := range byName[trainee].Cells {
			if c.Scenario == scenario {
				return c
			}
		}
		t.Fatalf("board: %s has no %s ticket", trainee, scenario)
		return boardCell{}
	}
	labs := map[string]bool{}
	for _, tr := range board {
		for _, c := range tr.Cells {
			labs[c.Lab] = true
		}
	}
	if len(labs) != 6 {
		t.Errorf("board: %d distinct labs for 6 tickets, want one lab per ticket", len(labs))
	}

	// Ann works on expired-cert and answers right; Bob on wrong-password
	// and answers wrong.
	// Bob takes a hint first.
	type work struct {
		trainee, scenario, answer, fix string
		right                          bool
		hints                          int
	}
	works := []work{
		{"Ann", "expired-cert", "", "Renew the certificate on the server and reload the services.", true, 0},
		{"Bob", "wrong-password", "TLS_CERT_EXPIRED", "Tell the customer to accept the certificate warning.", false, 1},
	}
	for i := range works {
		sc, err := scenarios.Lookup(works[i].scenario)
		if err != nil {
			t.Fatal(err)
		}
		if works[i].answer == "" {
			works[i].answer = sc.RootCause
		}
	}
	for _, w := range works {
		sc, _ := scenarios.Lookup(w.scenario)
		tc := cell(w.trainee, w.scenario)
		key := strings.TrimPrefix(byName[w.trainee].Link, c.base+"/t/")

		// The trainee's own browser: no cookie of the trainer's.
		trainee := b.incognito("trainee " + w.trainee)
		trainee.visit(byName[w.trainee].Link)
		trainee.click(fmt.Sprintf(`a[data-test=ticket-link][data-ticket=%q]`, tc.Ticket))
		trainee.waitFor(`[data-test=settings-card]`)
		trainee.waitFor(`a[data-test=ca-download]`)
		story := eval[string](trainee, `document.querySelector('[data-test=story]').textContent`)
		if !strings.Contains(norm(story), norm(sc.Story)) {
			t.Errorf("trainee %s: story %q, want the scenario's %q", w.trainee, norm(story), norm(sc.Story))
		}
		instr := eval[string](trainee, `document.querySelector('[data-test=instructions]').textContent`)
		for _, want := range []string{"Thunderbird", "Outlook", "curl"} {
			if !strings.Contains(instr, want) {
				t.Errorf("trainee %s: the instructions do not mention %s:\n%s", w.trainee, want, instr)
			}
		}
		// Before answering, nothing on the ticket but the select names the cause.
		shown := eval[string](trainee, `[...document.querySelectorAll('[data-test=story],[data-test=settings-card],[data-test=instructions],[data-test=hints]')].map(e => e.textContent).join('\n')`)
		if strings.Contains(shown, sc.RootCause) || strings.Contains(shown, sc.Name) {
			t.Errorf("trainee %s: the ticket shows %s or %s before the answer:\n%s", w.trainee, sc.RootCause, sc.Name, shown)
		}
		if n := eval[int](trainee, `document.cookie.length`); n != 0 {
			t.Errorf("trainee %s: the page sees cookies %d bytes long, want none (HttpOnly)", w.trainee, n)
		}

		// The trainer watches the ticket's lab in a second tab.
		watch := b.tab("trainer lab " + w.scenario)
		watch.visit(tc.Lab)
		watch.waitFor(`[data-test=transcript]`)
		watch.waitFor(`[data-test=transcript-line]`)
		before := eval[int](watch, `Math.max(0, ...[...document.querySelectorAll('[data-test=transcript-line]')].map(l => +l.dataset.seq))`)

		// The trainee's curl with the customer's settings.
		exit, out := traineeCurl(t, c, curl, key, tc.Ticket)
		curlDone := time.Now()
		m := curlSymptom.FindStringSubmatch(sc.Symptoms)
		if m == nil {
			t.Fatalf("%s: the symptoms name no curl text: %s", sc.Name, sc.Symptoms)
		}
		if exit == 0 || !strings.Contains(out, m[1]) {
			t.Errorf("trainee %s: curl exit %d, want a failure saying %q as the scenario's symptoms do:\n%s", w.trainee, exit, m[1], out)
		}
		watch.until("the failure in the live transcript",
			fmt.Sprintf(`[...document.querySelectorAll('[data-test=transcript-line]')].some(l => +l.dataset.seq > %d && (%s))`, before, failure[w.scenario]),
			transcriptWait)
		t.Logf("%s: curl's failure was in the trainer's live transcript when looked for, %v after curl exited (limit 2s)", w.scenario, time.Since(curlDone).Round(time.Millisecond))
		trainer.until(w.trainee+"'s "+w.scenario+" cell connected", cellSel(tc.Ticket)+`.dataset.status === 'connected'`, wait)

		for i := range w.hints {
			trainee.click(`form[data-test=hint] button[type=submit]`)
			trainee.until(fmt.Sprintf("hint %d", i+1), fmt.Sprintf(`document.querySelectorAll('[data-test=hints] li').length === %d`, i+1), wait)
		}
		if w.hints > 0 {
			trainer.until(fmt.Sprintf("%s's hints on the board", w.trainee), cellSel(tc.Ticket)+fmt.Sprintf(`.textContent.includes('%d hint')`, w.hints), wait)
		}

		// The answer.
		trainee.setValue(`form[data-test=answer-form] select[name=code]`, w.answer)
		trainee.setValue(`form[data-test=answer-form] textarea[name=fix]`, w.fix)
		trainee.click(`button[data-test=submit-answer]`)
		want := map[bool]string{true: "right", false: "wrong"}[w.right]
		trainee.waitFor(fmt.Sprintf(`[data-test=result][data-result=%s]`, want))
		trainee.waitFor(`[data-test=debrief]`)
		debrief := eval[string](trainee, `document.querySelector('[data-test=debrief]').textContent`)
		if !strings.Contains(norm(debrief), norm(sc.Fix)) {
			t.Errorf("trainee %s: the debrief lacks the scenario's fix %q:\n%s", w.trainee, sc.Fix, norm(debrief))
		}
		// The trainee's browser has no access to the trainer's pages.
		trainee.visit(c.base + "/classes/" + cid)
		if n := eval[int](trainee, `document.querySelectorAll('table[data-test=class-board]').length`); n != 0 {
			t.Errorf("trainee %s: the trainee's browser sees the class board", w.trainee)
		}
		trainer.until(w.trainee+"'s "+w.scenario+" cell answered "+want,
			cellSel(tc.Ticket)+`.dataset.status === 'answered' && `+cellSel(tc.Ticket)+`.dataset.result === '`+want+`'`, wait)
	}

	// A trainee link opens only that trainee's tickets.
	other := b.incognito("stranger")
	annKey := strings.TrimPrefix(byName["Ann"].Link, c.base+"/t/")
	if status := other.status(c.base + "/t/" + annKey + "/tickets/" + cell("Bob", "wrong-password").Ticket); status != http.StatusNotFound {
		t.Errorf("Ann's link with Bob's ticket id = HTTP %d, want 404", status)
	}

	if !eval[bool](trainer, `window.maillabBoardMark === true`) {
		t.Errorf("trainer: the board was reloaded; want live updates")
	}
	final := eval[[]boardTrainee](trainer, readBoard)
	for _, tr := range final {
		for _, cl := range tr.Cells {
			answered := (tr.Name == "Ann" && cl.Scenario == "expired-cert") || (tr.Name == "Bob" && cl.Scenario == "wrong-password")
			if answered != (cl.Status == "answered") {
				t.Errorf("board: %s %s status %q", tr.Name, cl.Scenario, cl.Status)
			}
		}
	}

	// The CSV export, fetched by the trainer's browser with its cookie.
	csvText := eval[string](trainer, `fetch(document.querySelector('a[data-test=export-csv]').href).then(r => r.ok ? r.text() : 'HTTP ' + r.status)`)
	rows, err := csv.NewReader(strings.NewReader(csvText)).ReadAll()
	if err != nil || len(rows) == 0 {
		t.Fatalf("export-csv: %v\n%s", err, csvText)
	}
	header := []string{"trainee", "scenario", "status", "answer_code", "right", "fix", "seconds", "hints_used", "score"}
	if !slices.Equal(rows[0][:min(len(rows[0]), len(header))], header) {
		t.Errorf("export-csv header %v, want it to start with %v", rows[0], header)
	}
	if len(rows) != 7 {
		t.Errorf("export-csv has %d rows, want a header and 6 tickets:\n%s", len(rows), csvText)
	}
	for _, w := range works {
		found := false
		for _, r := range rows[1:] {
			if len(r) < len(header) || r[0] != w.trainee || r[1] != w.scenario {
				continue
			}
			found = true
			right, err := strconv.ParseBool(r[4])
			if r[2] != "answered" || r[3] != w.answer || err != nil || right != w.right || r[5] != w.fix {
				t.Errorf("export-csv row %v, want answered %s right=%v fix %q", r, w.answer, w.right, w.fix)
			}
			if s, err := strconv.ParseFloat(r[6], 64); err != nil || s < 0 {
				t.Errorf("export-csv row %v: seconds %q", r, r[6])
			}
			if r[7] != strconv.Itoa(w.hints) {
				t.Errorf("export-csv row %v: hints_used %q, want %d", r, r[7], w.hints)
			}
			// 100 if right, less 25 a hint; 0 if wrong.
			score := 0
			if w.right {
				score = 100 - 25*w.hints
			}
			if r[8] != strconv.Itoa(score) {
				t.Errorf("export-csv row %v: score %q, want %d", r, r[8], score)
			}
		}
		if !found {
			t.Errorf("export-csv has no row for %s %s:\n%s", w.trainee, w.scenario, csvText)
		}
	}
	jsonText := eval[string](trainer, `fetch(document.querySelector('a[data-test=export-json]').href).then(r => r.text())`)
	if !json.Valid([]byte(jsonText)) || !strings.Contains(jsonText, works[1].fix) {
		t.Errorf("export-json is not JSON holding Bob's fix:\n%s", jsonText)
	}

	// The debrief shows each scenario with what the trainees answered.
	trainer.click(`a[data-test=debrief-link]`)
	// The whole page: the sections' selector matches while Chromium still
	// parses the rest of a page that arrives in chunks (seen under load).
	trainer.until("the debrief loaded", `location.pathname.endsWith('/debrief') && document.readyState === 'complete'`, wait)
	for _, w := range works {
		sec := fmt.Sprintf(`section[data-test=debrief-scenario][data-scenario=%q]`, w.scenario)
		trainer.waitFor(sec)
		text := eval[string](trainer, `document.querySelector('`+sec+`').textContent`)
		sc, _ := scenarios.Lookup(w.scenario)
		for _, want := range []string{sc.Story, sc.Cause, sc.Fix} {
			if !strings.Contains(norm(text), norm(want)) {
				t.Errorf("debrief %s lacks %q", w.scenario, want)
			}
		}
		answers := eval[[]string](trainer, `[...document.querySelector('`+sec+`').querySelectorAll('tr[data-test=debrief-answer]')].map(r => r.textContent)`)
		if !slices.ContainsFunc(answers, func(a string) bool { return strings.Contains(a, w.trainee) && strings.Contains(a, w.fix) }) {
			t.Errorf("debrief %s: answer rows %q, want %s's with the fix %q", w.scenario, answers, w.trainee, w.fix)
		}
	}
	t.Logf("class run in the browser: %v", time.Since(started).Round(time.Millisecond))
}

// norm folds white space, for comparing texts the page wraps.
func norm(s string) string { return strings.Join(strings.Fields(s), " ") }
