package console

import (
	"regexp"
	"strings"
	"testing"

	"golang.org/x/net/html"
)

// selector is the subset of CSS the tests need, the form the contract
// writes its data-test selectors in: tag[attr=value][attr]..., tag
// optional ("[data-test=x]" matches any element).
type selector struct {
	tag   string
	attrs [][2]string // name, value ("" value with present=true: attribute must exist)
}

var selPart = regexp.MustCompile(`\[([a-z-]+)(?:=([^\]]*))?\]`)

func parseSelector(s string) selector {
	var sel selector
	if i := strings.IndexByte(s, '['); i >= 0 {
		sel.tag, s = s[:i], s[i:]
	} else {
		sel.tag, s = s, ""
	}
	for _, m := range selPart.FindAllStringSubmatch(s, -1) {
		v := strings.Trim(m[2], `"'`)
		if m[2] == "" {
			v = "\x00any"
		}
		sel.attrs = append(sel.attrs, [2]string{m[1], v})
	}
	return sel
}

func (sel selector) match(n *html.Node) bool {
	if n.Type != html.ElementNode || sel.tag != "" && n.Data != sel.tag {
		return false
	}
	for _, a := range sel.attrs {
		v, ok := attr(n, a[0])
		if !ok || a[1] != "\x00any" && v != a[1] {
			return false
		}
	}
	return true
}

func attr(n *html.Node, name string) (string, bool) {
	for _, a := range n.Attr {
		if a.Key == name {
			return a.Val, true
		}
	}
	return "", false
}

// findAll returns the elements of doc matching the selector; a space in
// sel means descendant ("form[data-test=x] select[name=type]").
func findAll(doc *html.Node, sel string) []*html.Node {
	parts := strings.Fields(sel)
	roots := []*html.Node{doc}
	for _, p := range parts {
		s := parseSelector(p)
		var next []*html.Node
		seen := map[*html.Node]bool{}
		for _, r := range roots {
			var walk func(*html.Node)
			walk = func(n *html.Node) {
				for c := n.FirstChild; c != nil; c = c.NextSibling {
					if s.match(c) && !seen[c] {
						seen[c] = true
						next = append(next, c)
					}
					walk(c)
				}
			}
			walk(r)
		}
		roots = next
	}
	return roots
}

func parseHTML(t *testing.T, body string) *html.Node {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse HTML: %v", err)
	}
	return doc
}

func text(n *html.Node) string {
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return b.String()
}
