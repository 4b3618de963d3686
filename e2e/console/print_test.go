//go:build e2e

package console

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// papers are the sheets a settings card must fit on, in inches.
var papers = []struct {
	name          string
	width, height float64
}{
	{"A4", 8.27, 11.69},
	{"Letter", 8.5, 11},
}

// TestPrintCard prints the lab view and a trainee's ticket as Chromium
// does (Page.printToPDF with the default 1 cm margins) and asserts one
// sheet of A4 and of Letter each, with the settings card on it (issue
// 10: the settings card printable on one A4/Letter page).
func TestPrintCard(t *testing.T) {
	c := startConsole(t)
	b := startBrowser(t)
	var class struct {
		Trainees []struct {
			Key     string
			Tickets []struct {
				ID    string `json:"id"`
				LabID string `json:"lab_id"`
			}
		}
	}
	c.send(t, http.MethodPost, "/api/v1/classes", map[string]any{
		"name": "Print", "trainees": []string{"Ann"}, "scenarios": []string{"expired-cert"}, "assignment": "all",
	}, &class, true)
	if len(class.Trainees) != 1 || len(class.Trainees[0].Tickets) != 1 {
		t.Fatalf("class: %+v, want one trainee with one ticket", class)
	}
	tr := class.Trainees[0]
	trainer := b.tab("trainer")
	trainer.visit(c.printedURL())
	trainee := b.incognito("trainee")
	for _, pg := range []struct {
		name, path string
		w          *window
	}{
		{"lab view", "/labs/" + tr.Tickets[0].LabID, trainer},
		{"ticket", "/t/" + tr.Key + "/tickets/" + tr.Tickets[0].ID, trainee},
	} {
		pg.w.visit(c.base + pg.path)
		pg.w.waitFor(`[data-test=settings-card]`)
		pg.w.do(chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := cdp.Call(ctx, tg, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{Media: "print"})
			return err
		}))
		if h := eval[float64](pg.w, `document.querySelector('[data-test=settings-card]').getBoundingClientRect().height`); h == 0 {
			t.Errorf("%s: the settings card is hidden in print", pg.name)
		}
		for _, paper := range papers {
			if !oneSheet(t, pg.w, paper.width, paper.height) {
				t.Errorf("%s: printed on %s it takes more than one sheet", pg.name, paper.name)
			}
		}
	}
	// The control: the scenario board is long, so the count can say no.
	trainer.visit(c.base + "/")
	trainer.waitFor(`[data-test=scenario-card]`)
	if oneSheet(t, trainer, papers[0].width, papers[0].height) {
		t.Errorf("the scenario board prints on one sheet: the sheet count cannot tell")
	}
}

// oneSheet prints the page on paper of the size (inches) and says
// whether it fits one sheet: Chromium refuses a page range beyond the
// last page.
func oneSheet(t *testing.T, w *window, width, height float64) bool {
	t.Helper()
	printPages := func(ranges string) error {
		ctx, cancel := context.WithTimeout(w.ctx, wait)
		defer cancel()
		_, err := chromedp.Run(ctx, func(ctx context.Context, tg *chromedp.Target) ([]byte, error) {
			r, err := cdp.Call(ctx, tg, page.PrintToPDF, page.PrintToPDFParams{
				PaperWidth: width, PaperHeight: height, PageRanges: ranges})
			return r.Data, err
		})
		return err
	}
	if err := printPages("1"); err != nil {
		t.Fatalf("%s: print: %v", w.name, err)
	}
	err := printPages("2")
	if err != nil && !strings.Contains(strings.ToLower(err.Error()), "page range") {
		t.Fatalf("%s: print page 2: %v, want Chromium's page range error", w.name, err)
	}
	return err != nil
}
