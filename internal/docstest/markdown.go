package docstest

import (
	"regexp"
	"strconv"
	"strings"
	"unicode"
)

// Page is what the checks need of one Markdown file.
type Page struct {
	Path    string
	Anchors map[string]bool // GitHub's heading ids
	Links   []Link
	Blocks  []Block // fenced sh blocks
}

// Link is a Markdown link target, on its line.
type Link struct {
	Line   int
	Target string
}

// Block is a fenced shell code block.
type Block struct {
	Line     int    // of the opening fence
	Skip     string // the reason of a docstest skip marker; "" runs it
	Commands []Command
}

// Command is one command line of a block, continuation lines joined and
// trailing comments removed.
type Command struct {
	Line int
	Text string
}

var (
	linkRE    = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	codeSpan  = regexp.MustCompile("`[^`]*`")
	skipRE    = regexp.MustCompile(`^<!-- docstest: skip: (.+\S) -->$`)
	headingRE = regexp.MustCompile(`^(#{1,6})\s+(.*?)\s*#*\s*$`)
)

// Parse reads a Markdown page.
func Parse(path, text string) *Page {
	p := &Page{Path: path, Anchors: map[string]bool{}}
	lines := strings.Split(text, "\n")
	seen := map[string]int{}
	var fence string // the open fence's info string; "" outside
	var block *Block
	var cont strings.Builder
	contLine := 0
	prev := ""
	for i, line := range lines {
		n := i + 1
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "```") {
			if fence == "" {
				fence = strings.TrimSpace(strings.TrimPrefix(trimmed, "```"))
				if fence == "" {
					fence = "text"
				}
				if fence == "sh" || fence == "bash" || fence == "shell" {
					block = &Block{Line: n}
					if m := skipRE.FindStringSubmatch(prev); m != nil {
						block.Skip = m[1]
					}
				}
				continue
			}
			if block != nil {
				p.Blocks = append(p.Blocks, *block)
			}
			fence, block = "", nil
			prev = trimmed
			continue
		}
		if fence != "" {
			if block != nil {
				cmd := stripComment(line)
				if cont.Len() == 0 {
					contLine = n
				}
				if strings.HasSuffix(cmd, `\`) {
					cont.WriteString(strings.TrimSuffix(cmd, `\`) + " ")
					continue
				}
				cont.WriteString(cmd)
				if text := strings.TrimSpace(cont.String()); text != "" {
					block.Commands = append(block.Commands, Command{Line: contLine, Text: text})
				}
				cont.Reset()
			}
			continue
		}
		if m := headingRE.FindStringSubmatch(line); m != nil {
			a := Anchor(m[2])
			if k := seen[a]; k > 0 {
				p.Anchors[a+"-"+strconv.Itoa(k)] = true
			} else {
				p.Anchors[a] = true
			}
			seen[a]++
		}
		for _, m := range linkRE.FindAllStringSubmatch(codeSpan.ReplaceAllString(line, ""), -1) {
			p.Links = append(p.Links, Link{Line: n, Target: m[1]})
		}
		if trimmed != "" {
			prev = trimmed
		}
	}
	return p
}

// Anchor is GitHub's id of a heading: lower case, punctuation dropped,
// spaces as hyphens.
func Anchor(heading string) string {
	heading = codeSpan.ReplaceAllStringFunc(heading, func(s string) string { return strings.Trim(s, "`") })
	var b strings.Builder
	for _, r := range strings.ToLower(heading) {
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_':
			b.WriteRune(r)
		case r == ' ':
			b.WriteByte('-')
		}
	}
	return b.String()
}

// stripComment removes a shell comment: a # at the start or after a
// blank, outside quotes.
func stripComment(line string) string {
	var quote rune
	for i, r := range line {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			}
		case r == '\'' || r == '"':
			quote = r
		case r == '#' && (i == 0 || line[i-1] == ' ' || line[i-1] == '\t'):
			return strings.TrimRight(line[:i], " \t")
		}
	}
	return strings.TrimRight(line, " \t")
}

// Words splits a command line as sh would for the simple quoting the
// examples use: blanks separate words, single and double quotes group.
func Words(line string) []string {
	var words []string
	var cur strings.Builder
	inWord := false
	var quote rune
	for _, r := range line {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case r == ' ' || r == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words
}
