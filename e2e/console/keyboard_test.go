//go:build e2e

package console

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// focused describes document.activeElement and whether its focus shows:
// an outline or a box shadow (issue 10: keyboard navigation, visible
// focus).
type focused struct {
	Tag     string `json:"tag"`
	Name    string `json:"name"`
	Value   string `json:"value"`
	Test    string `json:"test"`
	Visible bool   `json:"visible"`
}

const readFocus = `(() => {
	const e = document.activeElement, s = getComputedStyle(e);
	return {tag: e.tagName.toLowerCase(), name: e.getAttribute('name') || '', value: e.getAttribute('value') || '',
		test: e.dataset.test || '',
		visible: (s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0) || s.boxShadow !== 'none'};
})()`

// TestKeyboard creates a class with the keyboard alone: Tab from the top
// of /classes/new to each field, type, Space on a scenario's checkbox,
// Enter on the button. Every element the focus lands on must show it.
func TestKeyboard(t *testing.T) {
	c := startConsole(t)
	b := startBrowser(t)
	p := b.tab("trainer")
	p.visit(c.printedURL())
	p.visit(c.base + "/classes/new")
	p.waitFor(`form[data-test=class-form]`)

	stops := 0
	// tabTo presses Tab until the focus is on the element match accepts.
	tabTo := func(what string, match func(f focused) bool) {
		t.Helper()
		for range 200 {
			p.do(chromedp.KeyEvent(kb.Tab))
			f := eval[focused](p, readFocus)
			stops++
			if f.Tag != "body" && !f.Visible {
				t.Errorf("focus on %s name=%q value=%q data-test=%q does not show (no outline, no box shadow)", f.Tag, f.Name, f.Value, f.Test)
			}
			if match(f) {
				return
			}
		}
		t.Fatalf("200 presses of Tab never reached %s\n%s", what, p.describe())
	}
	tabTo("the class name", func(f focused) bool { return f.Name == "name" })
	p.do(chromedp.KeyEvent("Keyboard class"))
	tabTo("the trainees' names", func(f focused) bool { return f.Name == "trainees" })
	p.do(chromedp.KeyEvent("Dee"), chromedp.KeyEvent(kb.Enter), chromedp.KeyEvent("Eve"))
	tabTo("the expired-cert checkbox", func(f focused) bool { return f.Name == "scenario" && f.Value == "expired-cert" })
	p.do(chromedp.KeyEvent(" "))
	tabTo("the create button", func(f focused) bool { return f.Test == "create-class" })
	p.do(chromedp.KeyEvent(kb.Enter))
	t.Logf("%d focus stops, each with a visible focus ring", stops)
	p.waitFor(`table[data-test=class-board]`)
	rows := eval[[]string](p, `[...document.querySelectorAll('tr[data-test=trainee-row]')].map(r => r.dataset.trainee + ':' + [...r.querySelectorAll('td[data-test=ticket-cell]')].map(c => c.dataset.scenario).join(','))`)
	if got := strings.Join(rows, " "); got != "Dee:expired-cert Eve:expired-cert" {
		t.Errorf("class made with the keyboard: trainees %q, want Dee and Eve with one expired-cert ticket each", got)
	}
	if h := eval[string](p, `document.querySelector('h1') ? document.querySelector('h1').textContent : ''`); !strings.Contains(h, "Keyboard class") {
		t.Errorf("class board title %q, want the typed name %q", h, "Keyboard class")
	}
}

// TestClassFormErrors submits the class form wrong and expects it back
// with the message next to the field and what was typed kept.
func TestClassFormErrors(t *testing.T) {
	c := startConsole(t)
	b := startBrowser(t)
	p := b.tab("trainer")
	p.visit(c.printedURL())
	cases := []struct {
		name, trainees, count string
		scenarios             []string
		field                 string // the field the error sits next to
	}{
		{name: "no scenario", trainees: "Ann\nBob", field: "scenario"},
		{name: "names and a count", trainees: "Ann", count: "3", scenarios: []string{"expired-cert"}, field: "count"},
	}
	for _, tc := range cases {
		t.Run(strings.ReplaceAll(tc.name, " ", "-"), func(t *testing.T) {
			p.t = t
			p.visit(c.base + "/classes/new")
			p.setValue(`form[data-test=class-form] input[name=name]`, "Form errors")
			p.setValue(`form[data-test=class-form] textarea[name=trainees]`, tc.trainees)
			p.setValue(`form[data-test=class-form] input[name=count]`, tc.count)
			for _, sc := range tc.scenarios {
				p.click(`form[data-test=class-form] input[name=scenario][value="` + sc + `"]`)
			}
			p.click(`button[data-test=create-class]`)
			p.waitFor(`form[data-test=class-form] [data-test=form-error]`)
			msg := eval[string](p, `document.querySelector('[data-test=form-error]').textContent`)
			if strings.TrimSpace(msg) == "" {
				t.Errorf("empty form error")
			}
			if got := eval[string](p, `document.querySelector('form[data-test=class-form] input[name=name]').value`); got != "Form errors" {
				t.Errorf("the class name came back as %q, want what was typed", got)
			}
			// Next to the field: the error is the field's description or
			// sits in the scenarios' fieldset.
			near := eval[bool](p, `(() => {
				const err = document.querySelector('[data-test=form-error]');
				const f = document.querySelector('form[data-test=class-form] [name=`+tc.field+`]');
				const fs = f.closest('fieldset');
				const describes = e => !!e && (e.getAttribute('aria-describedby') || '').split(' ').includes(err.id);
				return describes(f) || describes(fs) || (!!fs && fs.contains(err));
			})()`)
			if !near {
				t.Errorf("the error %q is not tied to the field %s", norm(msg), tc.field)
			}
			if n := eval[int](p, `document.querySelectorAll('table[data-test=class-board]').length`); n != 0 {
				t.Errorf("a class board after a bad form")
			}
		})
	}
	p.t = t
}
