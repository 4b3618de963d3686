package diagnose

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/maillab/maillab/diagnose/wire"
	"github.com/maillab/maillab/rootcause"
)

// recordedDir holds what real Postfix and Dovecot servers sent to a mail
// client, recorded by the e2e harness (go test -tags e2e ./e2e/realservers
// -record). The files are golden inputs of these ordinary unit tests.
const recordedDir = "../e2e/testdata/recorded"

// recordedReply is a refusal in a recording: a reply the probes classify.
type recordedReply struct {
	// at is "file:line" for messages.
	at      string
	proto   string
	stage   stage
	command string
	// reply is the wire text, SMTP lines joined by a literal \n as in
	// testdata/replies.
	reply string
}

// recordedGreeting is the first line a server sent in a recorded section.
type recordedGreeting struct {
	at, proto, line string
	// wrongProtocol is set when the recording expects WRONG_PROTOCOL: the
	// client spoke another protocol than the server.
	wrongProtocol bool
}

// recording is what parseRecording finds in one transcript.
type recording struct {
	refusals  []recordedReply
	greetings []recordedGreeting
	// unclassified counts refusals at stages no table judges (STARTTLS:
	// the probes judge it by whether the capability was advertised).
	unclassified int
}

var (
	sectionRE  = regexp.MustCompile(`^## [a-z0-9]+: (SMTP|IMAP|POP3) client, security (none|starttls|tls)$`)
	smtpLineRE = regexp.MustCompile(`^[0-9]{3}([ -]|$)`)
	imapTagRE  = regexp.MustCompile(`^([^ ]+) (OK|NO|BAD|BYE|PREAUTH)\b`)
)

// parseRecording reads a transcript: "# " header lines, "## " notes (a
// "## NAME: PROTO client, security MODE" note starts a service), "C: "
// client lines and "S: " server lines.
func parseRecording(t *testing.T, path string) recording {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rec recording
	var (
		proto, command, tag string
		expected            rootcause.Code
		inAuth, seenServer  bool
		smtpLines           []string
		pop3Multi           bool
	)
	// refusal files a refusal answering command.
	refusal := func(n int, reply string) {
		st := recordedStage(proto, command, inAuth)
		if st == stageStartTLS || st == "" {
			rec.unclassified++
			return
		}
		rec.refusals = append(rec.refusals, recordedReply{at: filepath.Base(path) + ":" + itoa(n), proto: proto, stage: st, command: command, reply: reply})
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "# expected root cause: "):
			expected = rootcause.Code(strings.TrimPrefix(line, "# expected root cause: "))
		case strings.HasPrefix(line, "## "):
			if m := sectionRE.FindStringSubmatch(line); m != nil {
				proto, command, tag, inAuth, seenServer, smtpLines, pop3Multi = strings.ToLower(m[1]), "", "", false, false, nil, false
			}
		case strings.HasPrefix(line, "C: "):
			cmd := strings.TrimPrefix(line, "C: ")
			switch proto {
			case "imap":
				if tg, rest, ok := strings.Cut(cmd, " "); ok && !inAuth {
					tag, cmd = tg, rest
				}
			}
			if !inAuth {
				command = cmd
			}
		case strings.HasPrefix(line, "S: "):
			text := strings.TrimPrefix(line, "S: ")
			if proto == "" {
				t.Fatalf("%s:%d: server line before any service section", path, n)
			}
			if !seenServer {
				seenServer = true
				rec.greetings = append(rec.greetings, recordedGreeting{at: filepath.Base(path) + ":" + itoa(n), proto: proto, line: text, wrongProtocol: expected == rootcause.WrongProtocol})
			}
			switch proto {
			case "smtp":
				if !smtpLineRE.MatchString(text) {
					continue // another protocol's greeting on an SMTP client
				}
				smtpLines = append(smtpLines, text)
				if len(text) > 3 && text[3] == '-' {
					continue
				}
				reply := strings.Join(smtpLines, `\n`)
				smtpLines = nil
				inAuth = strings.HasPrefix(reply, "334")
				if reply[0] == '4' || reply[0] == '5' {
					refusal(n, reply)
				}
			case "imap":
				if text == "+" || strings.HasPrefix(text, "+ ") {
					inAuth = true // a SASL continuation of the command
					continue
				}
				m := imapTagRE.FindStringSubmatch(text)
				if m == nil {
					continue
				}
				switch {
				case m[1] == tag && command != "":
					inAuth = false
					if m[2] == "NO" || m[2] == "BAD" {
						refusal(n, text)
					}
				case m[1] == "*" && command == "" && (m[2] == "BYE" || m[2] == "NO" || m[2] == "BAD"):
					refusal(n, text) // a refusing greeting
				}
			case "pop3":
				switch {
				case pop3Multi:
					pop3Multi = text != "."
				case text == "+" || strings.HasPrefix(text, "+ "):
					inAuth = true
				case strings.HasPrefix(text, "+OK"):
					inAuth = false
					pop3Multi = pop3MultiLine(command)
				case strings.HasPrefix(text, "-ERR"):
					inAuth = false
					refusal(n, text)
				}
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return rec
}

// pop3MultiLine reports whether a +OK to command starts a multi-line
// response (RFC 1939 §3; RFC 2449 §5 for CAPA).
func pop3MultiLine(command string) bool {
	f := strings.Fields(strings.ToUpper(command))
	if len(f) == 0 {
		return false
	}
	switch f[0] {
	case "CAPA", "RETR", "TOP":
		return true
	case "UIDL", "LIST":
		return len(f) == 1
	}
	return false
}

// recordedStage returns the stage a reply to command is classified at,
// stageStartTLS for STARTTLS/STLS, "" for commands the probes do not
// judge by their reply (EHLO, CAPABILITY, CAPA, LOGOUT, QUIT, ...).
func recordedStage(proto, command string, inAuth bool) stage {
	if command == "" {
		return stageGreeting
	}
	if inAuth {
		return stageAuth
	}
	verb := strings.ToUpper(strings.Fields(command + " x")[0])
	switch {
	case verb == "STARTTLS" || verb == "STLS":
		return stageStartTLS
	case verb == "AUTH" || verb == "AUTHENTICATE" || verb == "LOGIN" || verb == "USER" || verb == "PASS":
		return stageAuth
	case proto == "smtp" && (verb == "EHLO" || verb == "HELO"):
		return stageGreeting
	case verb == "MAIL":
		return stageMail
	case verb == "RCPT":
		return stageRcpt
	case verb == "DATA":
		return stageData
	case strings.HasPrefix(command, "<message"):
		return stageDataEnd
	case verb == "SELECT" || verb == "EXAMINE" || verb == "STATUS":
		return stageSelect
	case verb == "FETCH" || verb == "STAT" || verb == "UIDL" || verb == "LIST" || verb == "RETR" || verb == "TOP":
		return stageFetch
	}
	return ""
}

// replyKey normalizes a reply for looking it up in the tables: an IMAP
// tag and the mailbox in angle brackets do not make another reply.
var (
	tagKeyRE  = regexp.MustCompile(`^[A-Za-z0-9.]+ (NO|BAD) `)
	addrKeyRE = regexp.MustCompile(`<[^<>@ ]+@[^<> ]+>`)
)

func replyKey(proto string, st stage, reply string) string {
	if proto == "imap" {
		reply = tagKeyRE.ReplaceAllString(reply, "TAG $1 ")
	}
	return proto + " " + string(st) + " " + addrKeyRE.ReplaceAllString(reply, "<ADDRESS>")
}

// TestRecordedReplies classifies every refusal that real Postfix and
// Dovecot servers sent in the e2e recordings: each must be an entry of
// testdata/replies (so that it carries a reviewed expected code) and be
// classified as that entry says. It also sniffs each recorded greeting:
// the server's protocol must be the client's, unless the recording expects
// WRONG_PROTOCOL.
func TestRecordedReplies(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(recordedDir, "*.txt"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no recordings in %s: %v", recordedDir, err)
	}
	table := map[string]replyCase{}
	for _, c := range loadReplyCases(t) {
		table[replyKey(c.proto, stage(c.stage), c.reply)] = c
	}
	refusals, greetings := 0, 0
	for _, file := range files {
		rec := parseRecording(t, file)
		for _, r := range rec.refusals {
			refusals++
			t.Run(r.at, func(t *testing.T) {
				c, ok := table[replyKey(r.proto, r.stage, r.reply)]
				if !ok {
					t.Fatalf("%s: the %s reply to %q at stage %s is not in testdata/replies; add it with its expected code:\n%s %s CODE | %s",
						r.at, r.proto, r.command, r.stage, r.proto, r.stage, r.reply)
				}
				if v := classifyReply(t, r.proto, r.stage, r.reply); v.code != c.want {
					t.Errorf("%s: classify(%s %s %q) = %s (rule %s), want %s as %s:%d says", r.at, r.proto, r.stage, r.reply, v.code, v.rule, c.want, filepath.Base(c.file), c.line)
				}
			})
		}
		for _, g := range rec.greetings {
			greetings++
			t.Run(g.at, func(t *testing.T) {
				got := wire.Sniff([]byte(g.line + "\r\n")).Protocol
				want := wire.Protocol(strings.ToUpper(g.proto))
				switch {
				case g.wrongProtocol && got == want:
					t.Errorf("%s: Sniff(%q) = %s: the recording expects another protocol than %s", g.at, g.line, got, want)
				case !g.wrongProtocol && got != want:
					t.Errorf("%s: Sniff(%q) = %q, want %s", g.at, g.line, got, want)
				}
			})
		}
	}
	if refusals == 0 || greetings == 0 {
		t.Errorf("the recordings held %d refusals and %d greetings; the parser found nothing to check", refusals, greetings)
	}
}

// TestParseRecording checks the transcript parser on a made-up recording
// with every shape it must handle.
func TestParseRecording(t *testing.T) {
	text := strings.Join([]string{
		"# expected root cause: AUTH_FAILED",
		"## submission: SMTP client, security starttls",
		"S: 220 mail.example.test ESMTP Postfix",
		"C: EHLO client",
		"S: 250-mail.example.test",
		"S: 250 AUTH PLAIN",
		"C: AUTH LOGIN",
		"S: 334 VXNlcm5hbWU6",
		"C: *",
		"S: 501 5.7.0 Authentication aborted",
		"C: MAIL FROM:<a@example.test>",
		"S: 250 2.1.0 Ok",
		"C: RCPT TO:<b@elsewhere.test>",
		"S: 554-5.7.1 <b@elsewhere.test>: Relay access denied",
		"S: 554 5.7.1 see the policy",
		"C: STARTTLS",
		"S: 454 4.7.0 TLS not available",
		"## imaps: IMAP client, security tls",
		"## TLS: a note",
		"S: * OK [CAPABILITY IMAP4rev1] ready.",
		"C: a1 CAPABILITY",
		"S: * CAPABILITY IMAP4rev1",
		"S: a1 OK done",
		"C: a2 AUTHENTICATE PLAIN",
		"S: +",
		"C: <secret>",
		"S: a2 NO [AUTHENTICATIONFAILED] Authentication failed.",
		"C: a3 LOGOUT",
		"S: * BYE Logging out",
		"S: a3 OK Logout completed.",
		"## pop3s: POP3 client, security tls",
		"S: +OK ready.",
		"C: CAPA",
		"S: +OK",
		"S: -ERR looks like a status but is a capability",
		"S: .",
		"C: USER alice",
		"S: +OK",
		"C: PASS <secret>",
		"S: -ERR [AUTH] Authentication failed.",
		"C: STAT",
		"S: -ERR [SYS/TEMP] later",
	}, "\n") + "\n"
	path := filepath.Join(t.TempDir(), "made-up.txt")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	rec := parseRecording(t, path)
	var got []string
	for _, r := range rec.refusals {
		got = append(got, r.proto+" "+string(r.stage)+" | "+r.reply)
	}
	want := []string{
		`smtp auth | 501 5.7.0 Authentication aborted`,
		`smtp rcpt | 554-5.7.1 <b@elsewhere.test>: Relay access denied\n554 5.7.1 see the policy`,
		`imap auth | a2 NO [AUTHENTICATIONFAILED] Authentication failed.`,
		`pop3 auth | -ERR [AUTH] Authentication failed.`,
		`pop3 fetch | -ERR [SYS/TEMP] later`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("refusals:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if rec.unclassified != 1 {
		t.Errorf("unclassified = %d, want 1 (the reply to STARTTLS)", rec.unclassified)
	}
	var greet []string
	for _, g := range rec.greetings {
		greet = append(greet, g.proto+" "+g.line)
	}
	if want := "smtp 220 mail.example.test ESMTP Postfix|imap * OK [CAPABILITY IMAP4rev1] ready.|pop3 +OK ready."; strings.Join(greet, "|") != want {
		t.Errorf("greetings = %q, want %q", strings.Join(greet, "|"), want)
	}
}
