package diagnose

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/maillab/maillab/diagnose/wire"
	"github.com/maillab/maillab/rootcause"
)

// replyCase is one line of testdata/replies/*.txt.
type replyCase struct {
	file, source string
	line         int
	proto, stage string
	want         rootcause.Code
	reply        string
}

func loadReplyCases(t *testing.T) []replyCase {
	t.Helper()
	files, err := filepath.Glob("testdata/replies/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no reply tables: %v", err)
	}
	var cases []replyCase
	for _, file := range files {
		f, err := os.Open(file)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		source, n := "", 0
		for sc.Scan() {
			n++
			line := sc.Text()
			if s, ok := strings.CutPrefix(line, "# source:"); ok {
				source = strings.TrimSpace(s)
				continue
			}
			if strings.HasPrefix(line, "#") || strings.TrimSpace(line) == "" {
				continue
			}
			head, reply, ok := strings.Cut(line, " | ")
			fields := strings.Fields(head)
			if !ok || len(fields) != 3 {
				t.Fatalf("%s:%d: want \"PROTO STAGE CODE | REPLY\"", file, n)
			}
			if source == "" {
				t.Fatalf("%s:%d: entry without a # source: line", file, n)
			}
			if !rootcause.Valid(fields[2]) {
				t.Fatalf("%s:%d: unknown code %q", file, n, fields[2])
			}
			cases = append(cases, replyCase{file: file, source: source, line: n, proto: fields[0], stage: fields[1], want: rootcause.Code(fields[2]), reply: reply})
		}
		f.Close()
	}
	return cases
}

// TestReplyTables checks every recorded reply of testdata/replies against
// the classification tables.
func TestReplyTables(t *testing.T) {
	for _, c := range loadReplyCases(t) {
		name := filepath.Base(c.file) + ":" + itoa(c.line)
		t.Run(name, func(t *testing.T) {
			v := classifyReply(t, c.proto, stage(c.stage), c.reply)
			if v.code != c.want {
				t.Errorf("classify(%s %s %q) = %s (rule %s), want %s [source: %s]", c.proto, c.stage, c.reply, v.code, v.rule, c.want, c.source)
			}
			if v.meaning == "" {
				t.Errorf("classify(%q): no meaning", c.reply)
			}
		})
	}
}

// classifyReply parses reply as proto's wire text (SMTP lines joined by
// a literal \n) and classifies it at st, as the probes do.
func classifyReply(t *testing.T, proto string, st stage, reply string) verdict {
	t.Helper()
	switch proto {
	case "smtp":
		rep, err := wire.ParseReply(strings.Split(reply, `\n`))
		if err != nil {
			t.Fatalf("parse %q: %v", reply, err)
		}
		if st == stageAuth {
			return classifySMTPAuth(rep)
		}
		return classifySMTPSend(st, rep)
	case "imap":
		resp, err := wire.ParseResponse(reply)
		if err != nil {
			t.Fatalf("parse %q: %v", reply, err)
		}
		return classifyIMAP(st, resp)
	case "pop3":
		stt, err := wire.ParseStatus(reply)
		if err != nil {
			t.Fatalf("parse %q: %v", reply, err)
		}
		return classifyPOP3(st, stt)
	}
	t.Fatalf("unknown protocol %q", proto)
	return verdict{}
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(b[i:])
		}
	}
}

// TestRuleTablesCodesValid guards against typos in rule codes.
func TestRuleTablesCodesValid(t *testing.T) {
	for _, table := range [][]rule{authRules, sendRules, mailboxRules} {
		for _, r := range table {
			if !rootcause.Valid(string(r.code)) || r.meaning == "" || r.name == "" {
				t.Errorf("rule %q: code %q meaning %q", r.name, r.code, r.meaning)
			}
			for _, s := range r.stages {
				found := false
				for _, a := range allStages {
					found = found || a == s
				}
				if !found {
					t.Errorf("rule %q: unknown stage %q", r.name, s)
				}
			}
		}
	}
}

// TestEveryReplyGetsACode checks that no reply code leaves a step without a
// catalog code.
func TestEveryReplyGetsACode(t *testing.T) {
	for code := 200; code <= 599; code++ {
		rep := wire.Reply{Code: code, Lines: []string{"something"}}
		if v := classifySMTPAuth(rep); v.code == "" {
			t.Errorf("classifySMTPAuth(%d) has no code", code)
		}
		for _, st := range []stage{stageGreeting, stageMail, stageRcpt, stageData, stageDataEnd} {
			if v := classifySMTPSend(st, rep); v.code == "" {
				t.Errorf("classifySMTPSend(%s, %d) has no code", st, code)
			}
		}
	}
	for _, st := range []stage{stageAuth, stageGreeting, stageSelect, stageFetch} {
		if v := classifyIMAP(st, wire.Response{Tag: "a1", Status: "NO", Text: "x"}); v.code == "" {
			t.Errorf("classifyIMAP(%s) has no code", st)
		}
		if v := classifyPOP3(st, wire.Status{Text: "x"}); v.code == "" {
			t.Errorf("classifyPOP3(%s) has no code", st)
		}
	}
}
