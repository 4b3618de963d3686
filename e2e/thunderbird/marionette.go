//go:build e2e

package thunderbird

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"
)

// marionette is a minimal client of Marionette, the remote protocol
// built into Thunderbird: messages are "LENGTH:JSON"; a command is
// [0, id, name, params] and its response [1, id, error, result]. The
// harness only reads: it runs one script in the chrome context that
// collects window titles and alert texts.
type marionette struct {
	conn net.Conn
	r    *bufio.Reader
	id   int
}

// maxMarionetteMessage bounds one message so a broken peer cannot make the
// harness allocate without limit.
const maxMarionetteMessage = 16 << 20

// dialMarionette connects, reads the server's hello and starts a session
// in the chrome context.
func dialMarionette(ctx context.Context, addr string) (*marionette, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dial marionette %s: %w", addr, err)
	}
	m := &marionette{conn: conn, r: bufio.NewReader(conn)}
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	var hello struct {
		ApplicationType    string `json:"applicationType"`
		MarionetteProtocol int    `json:"marionetteProtocol"`
	}
	raw, err := m.read()
	if err == nil {
		err = json.Unmarshal(raw, &hello)
	}
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("marionette hello: %w", err)
	}
	if hello.MarionetteProtocol != 3 {
		conn.Close()
		return nil, fmt.Errorf("marionette protocol %d, want 3", hello.MarionetteProtocol)
	}
	// "ignore": Marionette's default dismisses any open alert when a
	// command runs, which would change what Thunderbird does.
	// Marionette takes the capabilities unwrapped.
	if _, err := m.call("WebDriver:NewSession", map[string]any{"unhandledPromptBehavior": "ignore"}); err != nil {
		conn.Close()
		return nil, err
	}
	if _, err := m.call("Marionette:SetContext", map[string]any{"value": "chrome"}); err != nil {
		conn.Close()
		return nil, err
	}
	conn.SetDeadline(time.Time{})
	return m, nil
}

// read returns one message's JSON.
func (m *marionette) read() ([]byte, error) {
	head, err := m.r.ReadString(':')
	if err != nil {
		return nil, err
	}
	n, err := strconv.Atoi(head[:len(head)-1])
	if err != nil || n < 0 || n > maxMarionetteMessage {
		return nil, fmt.Errorf("bad message length %q", head)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(m.r, buf); err != nil {
		return nil, err
	}
	return buf, nil
}

// call sends a command and returns its result.
func (m *marionette) call(name string, params any) (json.RawMessage, error) {
	m.id++
	msg, err := json.Marshal([]any{0, m.id, name, params})
	if err != nil {
		return nil, err
	}
	if _, err := fmt.Fprintf(m.conn, "%d:%s", len(msg), msg); err != nil {
		return nil, fmt.Errorf("marionette %s: %w", name, err)
	}
	raw, err := m.read()
	if err != nil {
		return nil, fmt.Errorf("marionette %s: %w", name, err)
	}
	var resp []json.RawMessage
	if err := json.Unmarshal(raw, &resp); err != nil || len(resp) != 4 {
		return nil, fmt.Errorf("marionette %s: bad response %.200s", name, raw)
	}
	if string(resp[2]) != "null" {
		var e struct {
			Error   string `json:"error"`
			Message string `json:"message"`
		}
		json.Unmarshal(resp[2], &e)
		if e.Error == errAlertOpen.Error() {
			return nil, fmt.Errorf("marionette %s: %w: %s", name, errAlertOpen, e.Message)
		}
		return nil, fmt.Errorf("marionette %s: %s: %s", name, e.Error, e.Message)
	}
	return resp[3], nil
}

// errAlertOpen is Marionette's refusal to run a script in a window that
// has an alert open.
var errAlertOpen = errors.New("unexpected alert open")

// execute runs script in the chrome context and decodes its return value
// into v. Marionette refuses scripts in a window with an open alert (and
// must not touch the alert), so the script then runs from another of
// Thunderbird's windows, without moving the focus: the script reads every
// window anyway.
func (m *marionette) execute(ctx context.Context, script string, v any) error {
	return m.executeArgs(ctx, script, nil, v)
}

// executeArgs is execute with arguments for the script (its arguments[]);
// a script returning a promise is awaited.
func (m *marionette) executeArgs(ctx context.Context, script string, args []any, v any) error {
	if dl, ok := ctx.Deadline(); ok {
		m.conn.SetDeadline(dl)
		defer m.conn.SetDeadline(time.Time{})
	}
	if args == nil {
		args = []any{}
	}
	params := map[string]any{"script": script, "args": args}
	raw, err := m.call("WebDriver:ExecuteScript", params)
	if errors.Is(err, errAlertOpen) {
		var handles []string
		hraw, herr := m.call("WebDriver:GetWindowHandles", map[string]any{})
		if herr != nil {
			return herr
		}
		if herr := json.Unmarshal(hraw, &handles); herr != nil {
			var wrap struct {
				Value []string `json:"value"`
			}
			if herr := json.Unmarshal(hraw, &wrap); herr != nil {
				return fmt.Errorf("window handles %.100s: %w", hraw, herr)
			}
			handles = wrap.Value
		}
		for _, h := range handles {
			if _, serr := m.call("WebDriver:SwitchToWindow", map[string]any{"handle": h, "focus": false}); serr != nil {
				continue
			}
			if raw, err = m.call("WebDriver:ExecuteScript", params); !errors.Is(err, errAlertOpen) {
				break
			}
		}
	}
	if err != nil {
		return err
	}
	var wrap struct {
		Value json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal(raw, &wrap); err != nil {
		return fmt.Errorf("marionette result: %w", err)
	}
	if len(wrap.Value) == 0 {
		return errors.New("marionette result has no value")
	}
	return json.Unmarshal(wrap.Value, v)
}

func (m *marionette) Close() error { return m.conn.Close() }

// screenScript collects, for every open window, its title, the prompts
// shown in it or in its sub-dialogs (commonDialog: title, text, button
// labels), its notification bars and its status bar. Prompts are found in
// any chrome document reachable through frames, since Thunderbird shows
// window-modal prompts as sub-dialogs inside the window.
const screenScript = `
const out = [];
const seen = new Set();
function visibleButtons(doc) {
  const d = doc.querySelector("dialog");
  const labels = [];
  if (d && d.getButton) {
    for (const name of ["accept", "extra1", "extra2", "cancel"]) {
      const b = d.getButton(name);
      const label = b && !b.hidden && (b.label || b.getAttribute("label") || b.textContent.trim());
      if (label) labels.push(label);
    }
  }
  return labels;
}
function walk(doc, win, depth) {
  if (!doc || seen.has(doc) || depth > 6) return;
  seen.add(doc);
  const info = doc.getElementById("infoBody");
  if (info && String(doc.documentURI).includes("commonDialog")) {
    const t = doc.getElementById("infoTitle");
    win.prompts.push({title: (t && t.textContent.trim()) || doc.title, text: info.textContent.trim(), buttons: visibleButtons(doc)});
  }
  for (const n of doc.querySelectorAll("notification-message")) {
    const text = (n.messageText && n.messageText.textContent) || n.getAttribute("label") || n.textContent;
    if (text && text.trim()) win.notifications.push(text.trim());
  }
  for (const f of doc.querySelectorAll("iframe, browser")) {
    let d = null;
    try { d = f.contentDocument; } catch (e) {}
    walk(d, win, depth + 1);
  }
}
// visibleText is the text of a dialog window's visible descriptions and
// labels (e.g. the certificate exception dialog's status).
function visibleText(doc) {
  const parts = [];
  for (const el of doc.querySelectorAll("description, label, p, h1, h2, h3, [id$=Description]")) {
    if (el.closest("[hidden]") || (el.checkVisibility && !el.checkVisibility())) continue;
    const t = (el.textContent || el.getAttribute("value") || "").replace(/\s+/g, " ").trim();
    if (t && !parts.includes(t)) parts.push(t);
  }
  return parts;
}
for (const w of Services.wm.getEnumerator(null)) {
  const url = String(w.location);
  const win = {title: w.document.title, url, prompts: [], notifications: [], status: "", text: []};
  if (!/messenger\.xhtml|messengercompose\.xhtml/.test(url)) win.text = visibleText(w.document);
  // The 3-pane window's message list: subjects of the folder shown.
  win.messages = [];
  try {
    const about3Pane = w.gTabmail && w.gTabmail.currentAbout3Pane;
    const view = about3Pane && about3Pane.gDBView;
    if (view) {
      win.folder = about3Pane.gFolder ? about3Pane.gFolder.URI : "";
      for (let i = 0; i < view.rowCount; i++) win.messages.push(view.getMsgHdrAt(i).mime2DecodedSubject);
    }
  } catch (e) {}
  const st = w.document.getElementById("statusText");
  if (st) win.status = (st.value || st.textContent || "").trim();
  walk(w.document, win, 0);
  out.push(win);
}
return out;
`

// window is one Thunderbird window as screenScript saw it.
type window struct {
	Title         string   `json:"title"`
	URL           string   `json:"url"`
	Prompts       []prompt `json:"prompts"`
	Notifications []string `json:"notifications"`
	Status        string   `json:"status"`
	// Folder and Messages are the folder the 3-pane window shows and the
	// subjects of its message list.
	Folder   string   `json:"folder"`
	Messages []string `json:"messages"`
	// Text is the visible text of a dialog window (not of the main and
	// compose windows).
	Text []string `json:"text"`
}

// prompt is an alert, confirmation or password prompt.
type prompt struct {
	Title   string   `json:"title"`
	Text    string   `json:"text"`
	Buttons []string `json:"buttons"`
}
