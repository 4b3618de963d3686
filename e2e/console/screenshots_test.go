//go:build e2e

package console

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// Widths the console must fit: a laptop and a phone (issue 10: no
// horizontal scroll at 375 px).
var widths = []int64{1280, 375}

// maxShotHeight cuts a screenshot of a long page (CSS pixels): the
// README shows the top of each page.
const maxShotHeight = 2000

// TestScreenshots opens the pages a class uses (scenario board, class
// board, a lab view with a transcript, a trainee's ticket, the debrief)
// at each width and asserts that none scrolls horizontally and that all
// visible text meets the WCAG AA contrast. With
// MAILLAB_SCREENSHOTS=DIR it also writes DIR/console-PAGE-WIDTH.png
// (scripts/screenshots.sh, for docs/screenshots/).
func TestScreenshots(t *testing.T) {
	curl := need(t, []string{"curl"}, "curl")
	dir := os.Getenv("MAILLAB_SCREENSHOTS")
	c := startConsole(t)
	b := startBrowser(t)

	// A class in the middle of its run, made over the API: Ann answered
	// right, Bob wrong, Cem has not started; Ann's curl fills a lab's
	// transcript.
	var class struct {
		ID       string `json:"id"`
		Trainees []struct {
			Name, Key string
			Tickets   []struct {
				ID       string `json:"id"`
				Scenario string `json:"scenario"`
				LabID    string `json:"lab_id"`
			}
		}
	}
	c.send(t, http.MethodPost, "/api/v1/classes", map[string]any{
		"name": "Monday group", "trainees": []string{"Ann", "Bob", "Cem"},
		"scenarios": []string{"expired-cert", "wrong-password"}, "assignment": "all",
	}, &class, true)
	ticket := func(trainee, scenario string) (key, tid, lab string) {
		for _, tr := range class.Trainees {
			for _, tk := range tr.Tickets {
				if tr.Name == trainee && tk.Scenario == scenario {
					return tr.Key, tk.ID, tk.LabID
				}
			}
		}
		t.Fatalf("class: no %s ticket for %s: %+v", scenario, trainee, class)
		return
	}
	annKey, annTid, annLab := ticket("Ann", "wrong-password")
	if exit, out := traineeCurl(t, c, curl, annKey, annTid); exit == 0 {
		t.Fatalf("Ann's curl against wrong-password worked:\n%s", out)
	}
	answer := func(key, tid, code, fix string) {
		c.public(t, "/api/v1/trainee/"+key+"/tickets/"+tid, nil) // opens the ticket
		c.send(t, http.MethodPost, "/api/v1/trainee/"+key+"/tickets/"+tid+"/answer", map[string]string{"code": code, "fix": fix}, nil, false)
	}
	answer(annKey, annTid, "AUTH_FAILED", "Enter the new password in the mail client.")
	bobKey, bobTid, _ := ticket("Bob", "expired-cert")
	answer(bobKey, bobTid, "AUTH_FAILED", "Type the password again.")
	cemKey, cemTid, _ := ticket("Cem", "expired-cert")

	pages := []struct {
		name, path, ready string
		trainee           bool
	}{
		{"board", "/", `section[data-test=section] [data-test=scenario-card]`, false},
		{"class", "/classes/" + class.ID, `table[data-test=class-board] td[data-test=ticket-cell][data-status=answered]`, false},
		{"lab", "/labs/" + annLab, `[data-test=transcript-line][data-kind=auth]`, false},
		{"ticket", "/t/" + cemKey + "/tickets/" + cemTid, `form[data-test=answer-form]`, true},
		{"debrief", "/classes/" + class.ID + "/debrief", `tr[data-test=debrief-answer]`, false},
	}
	trainer := b.tab("trainer")
	trainer.visit(c.printedURL())
	trainee := b.incognito("trainee Cem")
	for _, pg := range pages {
		for _, w := range widths {
			t.Run(fmt.Sprintf("%s-%d", pg.name, w), func(t *testing.T) {
				p := trainer
				if pg.trainee {
					p = trainee
				}
				p.t = t
				opts := []chromedp.EmulateViewportOption{}
				height := int64(900)
				if w < 600 {
					opts = append(opts, chromedp.EmulateMobile, chromedp.EmulateTouch, chromedp.EmulatePortrait)
					height = 812
				}
				p.do(chromedp.EmulateViewport(w, height, opts...))
				p.visit(c.base + pg.path)
				p.waitFor(pg.ready)
				// Fonts and the live updates settle.
				eval[int](p, `document.fonts.ready.then(() => new Promise(r => setTimeout(() => r(1), 300)))`)
				sw := eval[int64](p, `document.documentElement.scrollWidth`)
				if sw > w {
					wide := eval[[]string](p, fmt.Sprintf(`[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > %d).slice(0, 8).map(e => e.tagName.toLowerCase() + (e.dataset.test ? '[data-test=' + e.dataset.test + ']' : '') + (e.className ? '.' + e.className : ''))`, w))
					t.Errorf("%s at %d px: document.documentElement.scrollWidth = %d, want <= %d (horizontal scroll); wider elements: %v", pg.path, w, sw, w, wide)
				}
				if low := eval[[]string](p, lowContrast); len(low) > 0 {
					t.Errorf("%s at %d px: text below the WCAG AA contrast (4.5:1, large text 3:1):\n%s", pg.path, w, strings.Join(low, "\n"))
				}
				if dir == "" {
					return
				}
				png := screenshot(t, p, w)
				file := filepath.Join(dir, fmt.Sprintf("console-%s-%d.png", pg.name, w))
				if err := os.WriteFile(file, png, 0o644); err != nil {
					t.Fatal(err)
				}
				t.Logf("wrote %s (%d bytes)", file, len(png))
			})
		}
	}
	trainer.t, trainee.t = t, t
	if strings.TrimSpace(dir) != "" {
		t.Logf("screenshots in %s", dir)
	}
}

// lowContrast lists the visible text whose colour against its effective
// background (the first opaque background up the tree; white at the top)
// has a WCAG 2 contrast ratio below 4.5:1, or 3:1 for large text (24 px,
// or 18.66 px bold). Colours with transparency are blended over that
// background; background images are not considered (the console has none).
const lowContrast = `(() => {
	const parse = c => { const m = c.match(/rgba?\(([^)]+)\)/); if (!m) return null; const v = m[1].split(/[ ,\/]+/).filter(Boolean).map(Number); return {r: v[0], g: v[1], b: v[2], a: v.length > 3 ? v[3] : 1}; };
	const lum = c => { const f = x => { x /= 255; return x <= 0.03928 ? x / 12.92 : Math.pow((x + 0.055) / 1.055, 2.4); }; return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b); };
	const bg = e => { for (; e; e = e.parentElement) { const c = parse(getComputedStyle(e).backgroundColor); if (c && c.a >= 1) return c; } return {r: 255, g: 255, b: 255, a: 1}; };
	const out = [];
	const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
	const seen = new Set();
	for (let n = walker.nextNode(); n; n = walker.nextNode()) {
		const e = n.parentElement;
		if (!e || seen.has(e) || !n.textContent.trim()) continue;
		seen.add(e);
		const s = getComputedStyle(e), r = e.getBoundingClientRect();
		if (s.visibility === 'hidden' || s.display === 'none' || r.width === 0 || r.height === 0 || e.closest('.sr,[hidden]')) continue;
		const b = bg(e), f = parse(s.color);
		if (!f) continue;
		const fg = {r: f.r * f.a + b.r * (1 - f.a), g: f.g * f.a + b.g * (1 - f.a), b: f.b * f.a + b.b * (1 - f.a)};
		const [l1, l2] = [lum(fg), lum(b)].sort((x, y) => y - x);
		const ratio = (l1 + 0.05) / (l2 + 0.05);
		const size = parseFloat(s.fontSize), bold = parseInt(s.fontWeight) >= 700;
		const need = (size >= 24 || (bold && size >= 18.66)) ? 3 : 4.5;
		if (ratio < need) out.push(e.tagName.toLowerCase() + (e.className ? '.' + e.className : '') + ' "' + n.textContent.trim().slice(0, 40) + '" ' + s.color + ' on rgb(' + [b.r, b.g, b.b] + ') = ' + ratio.toFixed(2) + ':1');
	}
	return out.slice(0, 20);
})()`

// screenshot is a PNG of the page from its top, the full width and at
// most maxShotHeight high.
func screenshot(t *testing.T, p *window, width int64) []byte {
	t.Helper()
	h := eval[float64](p, `document.documentElement.scrollHeight`)
	h = math.Min(h, maxShotHeight)
	ctx, cancel := context.WithTimeout(p.ctx, wait)
	defer cancel()
	shot := func(ctx context.Context, tg *chromedp.Target) ([]byte, error) {
		r, err := cdp.Call(ctx, tg, page.CaptureScreenshot, page.CaptureScreenshotParams{
			Format:                page.CaptureScreenshotFormatPng,
			Clip:                  &page.Viewport{Width: float64(width), Height: h, Scale: 1},
			CaptureBeyondViewport: new(true),
			FromSurface:           new(true),
		})
		return r.Data, err
	}
	png, err := chromedp.Run(ctx, shot)
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	return png
}
