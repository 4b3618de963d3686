package pop3

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// login is the USER/PASS exchange of the fixture user.
var login = []string{"C: USER alice", "S: +OK", "C: PASS s3cret pass", "S: +OK Logged in."}

func script(parts ...[]string) []string { return slices.Concat(parts...) }

// Message sizes of the fixture, as LIST reports them.
var (
	size1 = crlfSize(fixtureMessages[0].body)
	size2 = crlfSize(fixtureMessages[1].body)
	size3 = crlfSize(fixtureMessages[2].body)
	total = size1 + size2 + size3
)

func TestProtocol(t *testing.T) {
	tests := []struct {
		name   string
		server func(s *Server)
		be     func(be *testBackend)
		// ownGreeting: the script expects the greeting itself.
		ownGreeting bool
		script      []string
		check       func(t *testing.T, be *testBackend, rec *recorder)
	}{
		{
			name:   "greeting and CAPA before login on plaintext",
			script: []string{"C: CAPA", "S: +OK Capability list follows", "S: TOP", "S: UIDL", "S: RESP-CODES", "S: AUTH-RESP-CODE", "S: PIPELINING", "S: IMPLEMENTATION maillab-test", "S: ."},
		},
		{
			name:   "CAPA lists USER and SASL when insecure auth is allowed",
			server: func(s *Server) { s.AllowInsecureAuth = true },
			script: []string{"C: capa", "S: +OK Capability list follows", "S: TOP", "S: UIDL", "S: RESP-CODES", "S: AUTH-RESP-CODE", "S: PIPELINING", "S: USER", "S: SASL PLAIN", "S: IMPLEMENTATION maillab-test", "S: ."},
		},
		{
			name:   "CAPA after login keeps USER and SASL",
			server: func(s *Server) { s.AllowInsecureAuth = true },
			script: script(login, []string{"C: CAPA", "S: +OK Capability list follows", "S: TOP", "S: UIDL", "S: RESP-CODES", "S: AUTH-RESP-CODE", "S: PIPELINING", "S: USER", "S: SASL PLAIN", "S: IMPLEMENTATION maillab-test", "S: ."}),
		},
		{
			name:   "CAPA without USER when USER/PASS is disabled",
			server: func(s *Server) { s.AllowInsecureAuth = true; s.DisableUserPass = true; s.Implementation = "" },
			script: []string{"C: CAPA", "S: +OK Capability list follows", "S: TOP", "S: UIDL", "S: RESP-CODES", "S: AUTH-RESP-CODE", "S: PIPELINING", "S: SASL PLAIN", "S: .",
				"C: USER alice", "S: -ERR USER/PASS authentication is disabled; use AUTH.",
				"C: PASS x", "S: -ERR USER/PASS authentication is disabled; use AUTH."},
		},
		{
			name:   "CAPA with arguments is a bad command",
			script: []string{"C: CAPA X", "S: -ERR Wrong number of arguments."},
		},
		{
			name: "plaintext auth refused with Dovecot wording",
			script: []string{
				"C: USER alice", "S: -ERR [AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) connections.",
				"C: PASS s3cret pass", "S: -ERR [AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) connections.",
				"C: AUTH PLAIN AGFsaWNlAHMzY3JldCBwYXNz", "S: -ERR [AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) connections.",
				"C: AUTH", "S: -ERR [AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) connections.",
			},
			check: func(t *testing.T, be *testBackend, _ *recorder) {
				if logins, _, _ := be.snapshot(); len(logins) != 0 {
					t.Errorf("Login called with %q on an insecure connection", logins)
				}
			},
		},
		{
			name:   "wrong password then right password",
			server: func(s *Server) { s.AllowInsecureAuth = true },
			script: script([]string{"C: USER alice", "S: +OK", "C: PASS wrong", "S: -ERR [AUTH] Authentication failed.",
				"C: PASS s3cret pass", "S: -ERR No username given."}, login),
			check: func(t *testing.T, be *testBackend, _ *recorder) {
				if logins, _, _ := be.snapshot(); !slices.Equal(logins, []string{"alice", "alice"}) {
					t.Errorf("logins = %q, want two for alice", logins)
				}
			},
		},
		{
			name:   "USER without a name and PASS without a password",
			server: func(s *Server) { s.AllowInsecureAuth = true },
			script: []string{"C: USER", "S: -ERR Wrong number of arguments.", "C: USER alice", "S: +OK", "C: PASS", "S: -ERR No password given."},
		},
		{
			name:   "transaction commands before login are refused",
			script: []string{"C: STAT", "S: -ERR Command not valid in this state.", "C: LIST", "S: -ERR Command not valid in this state.", "C: RETR 1", "S: -ERR Command not valid in this state.", "C: NOOP", "S: -ERR Command not valid in this state.", "C: QUIT", "S: +OK Logging out.", "EOF"},
		},
		{
			name:   "authorization commands after login are refused",
			server: func(s *Server) { s.AllowInsecureAuth = true; s.TLSConfig = getPKI(t).serverConfig() },
			script: script(login, []string{"C: USER alice", "S: -ERR Command not valid in this state.", "C: PASS x", "S: -ERR Command not valid in this state.", "C: AUTH PLAIN", "S: -ERR Command not valid in this state.", "C: STLS", "S: -ERR Command not valid in this state."}),
		},
		{
			name:   "unknown and malformed commands",
			script: []string{"C: FOOBAR", "S: -ERR Unknown command.", "C: XYZ", "S: -ERR Unknown command.", "C: APOP alice 0123456789abcdef", "S: -ERR Unknown command.", "C: ", "S: -ERR Unknown command.", "C: NO\tOP", "S: -ERR Unknown command."},
		},
		{
			name:   "STLS without a TLS configuration is unknown",
			script: []string{"C: STLS", "S: -ERR Unknown command."},
		},
		{
			name:   "STAT LIST UIDL",
			server: func(s *Server) { s.AllowInsecureAuth = true },
			script: script(login, []string{
				"C: STAT", fmt.Sprintf("S: +OK 3 %d", total),
				"C: LIST", fmt.Sprintf("S: +OK 3 messages (%d octets)", total), fmt.Sprintf("S: 1 %d", size1), fmt.Sprintf("S: 2 %d", size2), fmt.Sprintf("S: 3 %d", size3), "S: .",
				"C: LIST 2", fmt.Sprintf("S: +OK 2 %d", size2),
				"C: LIST 002", fmt.Sprintf("S: +OK 2 %d", size2),
				"C: LIST 4", "S: -ERR No such message.",
				"C: LIST 0", "S: -ERR No such message.",
				"C: LIST 99999999999999999999", "S: -ERR No such message.",
				"C: LIST x", "S: -ERR Invalid message number.",
				"C: LIST -1", "S: -ERR Invalid message number.",
				"C: LIST 1 2", "S: -ERR Wrong number of arguments.",
				"C: UIDL", "S: +OK", "S: 1 uid-1", "S: 2 uid-2", "S: 3 uid-3", "S: .",
				"C: UIDL 3", "S: +OK 3 uid-3",
				"C: UIDL 9", "S: -ERR No such message.",
				"C: NOOP", "S: +OK",
				"C: NOOP x", "S: -ERR Wrong number of arguments.",
			}),
		},
		{
			name:   "RETR normalizes line endings and dot-stuffs",
			server: func(s *Server) { s.AllowInsecureAuth = true },
			script: script(login, []string{
				"C: RETR 1", fmt.Sprintf("S: +OK %d octets", size1), "S: From: bob@example.test", "S: Subject: one", "S: ", "S: Hello", "S: ..dot line", "S: ...two dots", "S: ..", "S: end", "S: .",
				"C: RETR 2", fmt.Sprintf("S: +OK %d octets", size2), "S: Subject: two", "S: ", "S: line1", "S: line2", "S: line3", "S: .",
				"C: RETR 3", fmt.Sprintf("S: +OK %d octets", size3), "S: Subject: three", "S: ", "S: no newline", "S: .",
				"C: RETR 4", "S: -ERR No such message.",
				"C: RETR", "S: -ERR Wrong number of arguments.",
			}),
		},
		{
			name:   "TOP",
			server: func(s *Server) { s.AllowInsecureAuth = true },
			script: script(login, []string{
				"C: TOP 1 0", "S: +OK", "S: From: bob@example.test", "S: Subject: one", "S: ", "S: .",
				"C: TOP 1 2", "S: +OK", "S: From: bob@example.test", "S: Subject: one", "S: ", "S: Hello", "S: ..dot line", "S: .",
				"C: TOP 2 1", "S: +OK", "S: Subject: two", "S: ", "S: line1", "S: .",
				"C: TOP 2 99999999999999999999", "S: +OK", "S: Subject: two", "S: ", "S: line1", "S: line2", "S: line3", "S: .",
				"C: TOP 3 5", "S: +OK", "S: Subject: three", "S: ", "S: no newline", "S: .",
				"C: TOP 1 -1", "S: -ERR Invalid number of lines.",
				"C: TOP 1", "S: -ERR Wrong number of arguments.",
				"C: TOP 7 0", "S: -ERR No such message.",
			}),
		},
		{
			name:   "DELE RSET and deleted messages are invisible",
			server: func(s *Server) { s.AllowInsecureAuth = true },
			script: script(login, []string{
				"C: DELE 2", "S: +OK Message 2 deleted.",
				"C: DELE 2", "S: -ERR Message 2 already deleted.",
				"C: DELE 9", "S: -ERR No such message.",
				"C: DELE x", "S: -ERR Invalid message number.",
				"C: STAT", fmt.Sprintf("S: +OK 2 %d", size1+size3),
				"C: LIST", fmt.Sprintf("S: +OK 2 messages (%d octets)", size1+size3), fmt.Sprintf("S: 1 %d", size1), fmt.Sprintf("S: 3 %d", size3), "S: .",
				"C: LIST 2", "S: -ERR No such message.",
				"C: UIDL", "S: +OK", "S: 1 uid-1", "S: 3 uid-3", "S: .",
				"C: UIDL 2", "S: -ERR No such message.",
				"C: RETR 2", "S: -ERR No such message.",
				"C: TOP 2 0", "S: -ERR No such message.",
				"C: RSET", fmt.Sprintf("S: +OK Maildrop has 3 messages (%d octets).", total),
				"C: LIST 2", fmt.Sprintf("S: +OK 2 %d", size2),
				"C: QUIT", "S: +OK Logging out (3 messages left).", "EOF",
			}),
			check: func(t *testing.T, be *testBackend, _ *recorder) {
				waitLogout(t, be, 1)
				if _, updates, _ := be.snapshot(); len(updates) != 1 || len(updates[0]) != 0 {
					t.Errorf("Update calls = %q, want one with no UIDs after RSET", updates)
				}
			},
		},
		{
			name:   "DELE then QUIT applies the deletions",
			server: func(s *Server) { s.AllowInsecureAuth = true },
			script: script(login, []string{"C: DELE 3", "S: +OK Message 3 deleted.", "C: DELE 1", "S: +OK Message 1 deleted.", "C: QUIT", "S: +OK Logging out (1 message left).", "EOF"}),
			check: func(t *testing.T, be *testBackend, _ *recorder) {
				waitLogout(t, be, 1)
				_, updates, logouts := be.snapshot()
				if want := [][]string{{"uid-1", "uid-3"}}; !slices.EqualFunc(updates, want, slices.Equal) {
					t.Errorf("Update calls = %q, want %q", updates, want)
				}
				if logouts != 1 {
					t.Errorf("Logout calls = %d, want 1", logouts)
				}
			},
		},
		{
			name:   "QUIT with an empty maildrop",
			server: func(s *Server) { s.AllowInsecureAuth = true },
			be:     func(be *testBackend) { be.messages = be.messages[:1] },
			script: script(login, []string{"C: DELE 1", "S: +OK Message 1 deleted.", "C: QUIT", "S: +OK Logging out (maildrop empty).", "EOF"}),
		},
		{
			name:   "QUIT in AUTHORIZATION does not update",
			script: []string{"C: QUIT", "S: +OK Logging out.", "EOF"},
			check: func(t *testing.T, be *testBackend, _ *recorder) {
				waitLogout(t, be, 1)
				if _, updates, logouts := be.snapshot(); len(updates) != 0 || logouts != 1 {
					t.Errorf("updates = %q, logouts = %d; want none and 1", updates, logouts)
				}
			},
		},
		{
			name:   "pipelined commands are answered in order",
			server: func(s *Server) { s.AllowInsecureAuth = true },
			script: []string{
				"C: USER alice\r\nPASS s3cret pass\r\nSTAT\r\nUIDL 1\r\nDELE 1\r\nLIST 1\r\nNOOP",
				"S: +OK", "S: +OK Logged in.", fmt.Sprintf("S: +OK 3 %d", total), "S: +OK 1 uid-1", "S: +OK Message 1 deleted.", "S: -ERR No such message.", "S: +OK",
			},
		},
		{
			name:   "a command line of exactly 255 octets is accepted",
			script: []string{"C: CAPA" + strings.Repeat(" ", 255-6), "S: +OK Capability list follows"},
		},
		{
			name:   "a command line over 255 octets closes the connection",
			script: []string{"C: CAPA" + strings.Repeat(" ", 256-6), "S: -ERR Line too long.", "EOF"},
		},
		{
			name:   "MaxLineLength is configurable",
			server: func(s *Server) { s.MaxLineLength = 10; s.AllowInsecureAuth = true },
			script: []string{"C: USER ali", "S: +OK", "C: USER alic", "S: -ERR Line too long.", "EOF"},
		},
		{
			name:   "too many bad commands close the connection",
			server: func(s *Server) { s.MaxBadCommands = 3 },
			script: []string{
				"C: BAD1", "S: -ERR Unknown command.", "C: BAD2", "S: -ERR Unknown command.",
				"C: CAPA", "S~ \\+OK.*", "S: TOP", "S: UIDL", "S: RESP-CODES", "S: AUTH-RESP-CODE", "S: PIPELINING", "S: IMPLEMENTATION maillab-test", "S: .",
				"C: BAD3", "S: -ERR Unknown command.", "C: STAT", "S: -ERR Command not valid in this state.", "C: LIST x y", "S: -ERR Command not valid in this state.",
				"S: -ERR Too many bad commands.", "EOF",
			},
		},
		{
			name:   "default bad-command limit is 10",
			script: append(slices.Repeat([]string{"C: ZZZZ", "S: -ERR Unknown command."}, 10), "S: -ERR Too many bad commands.", "EOF"),
		},
		{
			name:   "AUTH PLAIN with initial response",
			server: func(s *Server) { s.AllowInsecureAuth = true },
			script: []string{"C: AUTH PLAIN AGFsaWNlAHMzY3JldCBwYXNz", "S: +OK Logged in.", "C: STAT", fmt.Sprintf("S: +OK 3 %d", total)},
		},
		{
			name:   "AUTH PLAIN without initial response",
			server: func(s *Server) { s.AllowInsecureAuth = true },
			script: []string{"C: AUTH plain", "S: + ", "C: AGFsaWNlAHMzY3JldCBwYXNz", "S: +OK Logged in.", "C: AUTH PLAIN", "S: -ERR Command not valid in this state."},
		},
		{
			name:   "AUTH PLAIN with authorization identity",
			server: func(s *Server) { s.AllowInsecureAuth = true },
			script: []string{
				"C: AUTH PLAIN Ym9iAGFsaWNlAHMzY3JldCBwYXNz", "S: -ERR [AUTH] Authorization identity must match the user name.",
				"C: AUTH PLAIN YWxpY2UAYWxpY2UAczNjcmV0IHBhc3M=", "S: +OK Logged in.",
			},
		},
		{
			name:   "AUTH cancelled, bad base64, wrong password, unknown mechanism",
			server: func(s *Server) { s.AllowInsecureAuth = true },
			script: []string{
				"C: AUTH PLAIN", "S: + ", "C: *", "S: -ERR Authentication cancelled.",
				"C: AUTH PLAIN", "S: + ", "C: not base64!", "S: -ERR Invalid base64 data.",
				"C: AUTH PLAIN AAA=BBB", "S: -ERR Invalid base64 data in initial response.",
				"C: AUTH PLAIN AGFsaWNlAHdyb25n", "S: -ERR [AUTH] Authentication failed.",
				"C: AUTH PLAIN =", "S: -ERR [AUTH] Authentication failed.",
				"C: AUTH PLAIN", "S: + ", "C: ", "S: -ERR [AUTH] Authentication failed.",
				"C: AUTH CRAM-MD5", "S: -ERR Unsupported authentication mechanism.",
				"C: AUTH PLAIN a b", "S: -ERR Wrong number of arguments.",
				"C: AUTH", "S: +OK", "S: PLAIN", "S: .",
				"C: AUTH PLAIN AGFsaWNlAHMzY3JldCBwYXNz", "S: +OK Logged in.",
			},
		},
		{
			name:   "AUTH continuation lines may exceed 255 octets",
			server: func(s *Server) { s.AllowInsecureAuth = true },
			script: []string{"C: AUTH PLAIN", "S: + ", "C: " + strings.Repeat("QUFB", 200), "S: -ERR [AUTH] Authentication failed."},
		},
		{
			name:   "AUTH continuation line over MaxAuthLineLength closes the connection",
			server: func(s *Server) { s.AllowInsecureAuth = true; s.MaxAuthLineLength = 20 },
			script: []string{"C: AUTH PLAIN", "S: + ", "C: " + strings.Repeat("QUFB", 5), "S: -ERR Line too long.", "EOF"},
		},
		{
			name:   "AuthSession mechanisms",
			server: func(s *Server) { s.AllowInsecureAuth = true; s.DisableUserPass = true; s.Implementation = "" },
			be:     func(be *testBackend) { be.mechanisms = []string{"xtest", "PLAIN", "bad mech!"} },
			script: []string{
				"C: CAPA", "S: +OK Capability list follows", "S: TOP", "S: UIDL", "S: RESP-CODES", "S: AUTH-RESP-CODE", "S: PIPELINING", "S: SASL XTEST PLAIN", "S: .",
				"C: AUTH XTEST", "S: + " + "c2VuZCB0b2tlbg==", "C: dG9rZW46d3Jvbmc=", "S: -ERR [AUTH] Invalid token.",
				"C: AUTH XTEST", "S: + c2VuZCB0b2tlbg==", "C: dG9rZW46czNjcmV0IHBhc3M=", "S: +OK Logged in.",
			},
			check: func(t *testing.T, _ *testBackend, rec *recorder) {
				if !slices.ContainsFunc(rec.logLines(), func(l string) bool { return strings.Contains(l, `"BAD MECH!"`) }) {
					t.Errorf("invalid mechanism name not logged; logs: %q", rec.logLines())
				}
			},
		},
		{
			name:        "NewSession error refuses the connection in the greeting",
			ownGreeting: true,
			be:          func(be *testBackend) { be.newSessionErr = &Error{Code: CodeSysTemp, Message: "Too many connections."} },
			script:      []string{"S: -ERR [SYS/TEMP] Too many connections.", "EOF"},
		},
		{
			name:   "Login *Error codes reach the wire",
			server: func(s *Server) { s.AllowInsecureAuth = true },
			be: func(be *testBackend) {
				be.loginErr = fmt.Errorf("wrapped: %w", &Error{Code: CodeLoginDelay, Message: "Wait 15 minutes."})
			},
			script: []string{"C: USER alice", "S: +OK", "C: PASS s3cret pass", "S: -ERR [LOGIN-DELAY] Wait 15 minutes.", "C: AUTH PLAIN AGFsaWNlAHMzY3JldCBwYXNz", "S: -ERR [LOGIN-DELAY] Wait 15 minutes."},
		},
		{
			name:   "Login internal errors are logged, not leaked",
			server: func(s *Server) { s.AllowInsecureAuth = true },
			be:     func(be *testBackend) { be.loginErr = errors.New("ldap://10.0.0.1 down") },
			script: []string{
				"C: USER alice", "S: +OK", "C: PASS s3cret pass", "S: -ERR " + internalErrorText,
				"C: AUTH PLAIN AGFsaWNlAHMzY3JldCBwYXNz", "S: -ERR " + internalErrorText,
			},
			check: func(t *testing.T, _ *testBackend, rec *recorder) {
				if n := len(slices.DeleteFunc(rec.logLines(), func(l string) bool { return !strings.Contains(l, "ldap://10.0.0.1 down") })); n != 2 {
					t.Errorf("backend error logged %d times, want 2; logs: %q", n, rec.logLines())
				}
			},
		},
		{
			name:   "Maildrop IN-USE keeps AUTHORIZATION",
			server: func(s *Server) { s.AllowInsecureAuth = true },
			be: func(be *testBackend) {
				be.maildropErr = &Error{Code: CodeInUse, Message: "Mailbox is locked by another POP3 session."}
			},
			script: []string{"C: USER alice", "S: +OK", "C: PASS s3cret pass", "S: -ERR [IN-USE] Mailbox is locked by another POP3 session.", "C: STAT", "S: -ERR Command not valid in this state."},
		},
		{
			name:   "Maildrop internal error is SYS/TEMP",
			server: func(s *Server) { s.AllowInsecureAuth = true },
			be:     func(be *testBackend) { be.maildropErr = errors.New("disk on fire") },
			script: []string{"C: USER alice", "S: +OK", "C: PASS s3cret pass", "S: -ERR " + internalErrorText},
		},
		{
			name:   "invalid UIDs in the maildrop are refused",
			server: func(s *Server) { s.AllowInsecureAuth = true },
			be:     func(be *testBackend) { be.maildrop = []Message{{UID: "a", Size: 1}, {UID: "has space", Size: 1}} },
			script: []string{"C: USER alice", "S: +OK", "C: PASS s3cret pass", "S: -ERR [SYS/PERM] Maildrop is damaged."},
		},
		{
			name:   "duplicate UIDs in the maildrop are refused",
			server: func(s *Server) { s.AllowInsecureAuth = true },
			be:     func(be *testBackend) { be.maildrop = []Message{{UID: "a", Size: 1}, {UID: "a", Size: 1}} },
			script: []string{"C: USER alice", "S: +OK", "C: PASS s3cret pass", "S: -ERR [SYS/PERM] Maildrop is damaged."},
		},
		{
			name:   "Retrieve *Error",
			server: func(s *Server) { s.AllowInsecureAuth = true },
			be:     func(be *testBackend) { be.retrieveErr = &Error{Code: CodeSysPerm, Message: "Message is corrupt."} },
			script: script(login, []string{"C: RETR 1", "S: -ERR [SYS/PERM] Message is corrupt.", "C: TOP 1 0", "S: -ERR [SYS/PERM] Message is corrupt."}),
		},
		{
			name:   "a read error in the middle of RETR closes the connection",
			server: func(s *Server) { s.AllowInsecureAuth = true },
			be: func(be *testBackend) {
				be.retrieveBody = ioMultiReader("Subject: x\r\n\r\npartial", errors.New("storage vanished"))
			},
			script: script(login, []string{"C: RETR 1", fmt.Sprintf("S: +OK %d octets", size1), "S: Subject: x", "S: ", "TRUNCATED"}),
			check: func(t *testing.T, be *testBackend, rec *recorder) {
				waitLogout(t, be, 1)
				if _, updates, _ := be.snapshot(); len(updates) != 0 {
					t.Errorf("Update called after a broken transfer: %q", updates)
				}
			},
		},
		{
			name:   "Update error",
			server: func(s *Server) { s.AllowInsecureAuth = true },
			be:     func(be *testBackend) { be.updateErr = errors.New("unlink: read-only file system") },
			script: script(login, []string{"C: DELE 1", "S: +OK Message 1 deleted.", "C: QUIT", "S: -ERR [SYS/TEMP] Some deleted messages were not removed.", "EOF"}),
		},
		{
			name:   "Update *Error",
			server: func(s *Server) { s.AllowInsecureAuth = true },
			be:     func(be *testBackend) { be.updateErr = &Error{Code: CodeSysPerm, Message: "Quota database broken."} },
			script: script(login, []string{"C: QUIT", "S: -ERR [SYS/PERM] Quota database broken.", "EOF"}),
		},
		{
			name:   "a panic in Login through SASL fails the exchange only",
			server: func(s *Server) { s.AllowInsecureAuth = true },
			be:     func(be *testBackend) { be.loginPanic = true },
			script: []string{"C: AUTH PLAIN AGFsaWNlAHMzY3JldCBwYXNz", "S: -ERR " + internalErrorText, "C: CAPA", "S~ \\+OK.*"},
			check: func(t *testing.T, _ *testBackend, rec *recorder) {
				if !slices.ContainsFunc(rec.logLines(), func(l string) bool { return strings.Contains(l, "panic in SASL mechanism") }) {
					t.Errorf("panic not logged; logs: %q", rec.logLines())
				}
			},
		},
		{
			name:   "a panic in Login through PASS closes the connection",
			server: func(s *Server) { s.AllowInsecureAuth = true },
			be:     func(be *testBackend) { be.loginPanic = true },
			script: []string{"C: USER alice", "S: +OK", "C: PASS s3cret pass", "EOF"},
			check: func(t *testing.T, be *testBackend, rec *recorder) {
				waitLogout(t, be, 1)
				if !slices.ContainsFunc(rec.logLines(), func(l string) bool { return strings.Contains(l, "panic serving") }) {
					t.Errorf("panic not logged; logs: %q", rec.logLines())
				}
			},
		},
		{
			name:        "a nil Session is an internal error",
			ownGreeting: true,
			be:          func(be *testBackend) { be.nilSession = true },
			script:      []string{"S: -ERR " + internalErrorText, "EOF"},
		},
		{
			name:        "custom greeting cannot announce APOP",
			ownGreeting: true,
			server:      func(s *Server) { s.Greeting = "Dovecot ready. <123.456@host>\r\nX" },
			script:      []string{"S: +OK Dovecot ready. (123.456@host)  X"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			be := newTestBackend()
			if tt.be != nil {
				tt.be(be)
			}
			rec := &recorder{}
			s := newTestServer(be, rec)
			if tt.server != nil {
				tt.server(s)
			}
			c := dial(t, serve(t, s, nil))
			if !tt.ownGreeting {
				c.expect("+OK mail.example.test POP3 server ready")
			}
			c.run(tt.script)
			if tt.check != nil {
				tt.check(t, be, rec)
			}
		})
	}
}

// ioMultiReader yields s, then fails with err.
func ioMultiReader(s string, err error) *failingReader {
	return &failingReader{data: s, err: err}
}

type failingReader struct {
	data string
	err  error
}

func (r *failingReader) Read(p []byte) (int, error) {
	if r.data == "" {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

func TestDroppedConnectionDeletesNothing(t *testing.T) {
	be := newTestBackend()
	rec := &recorder{}
	s := newTestServer(be, rec)
	s.AllowInsecureAuth = true
	c := dial(t, serve(t, s, nil))
	c.expect("+OK mail.example.test POP3 server ready")
	c.run(script(login, []string{"C: DELE 1", "S: +OK Message 1 deleted.", "C: DELE 2", "S: +OK Message 2 deleted."}))
	c.conn.Close()
	waitLogout(t, be, 1)
	if _, updates, logouts := be.snapshot(); len(updates) != 0 || logouts != 1 {
		t.Errorf("after a dropped connection: Update calls %q, Logout calls %d; want none and 1", updates, logouts)
	}
}

func TestReadTimeoutClosesSilently(t *testing.T) {
	be := newTestBackend()
	rec := &recorder{}
	s := newTestServer(be, rec)
	s.AllowInsecureAuth = true
	s.ReadTimeout = 50 * time.Millisecond
	c := dial(t, serve(t, s, nil))
	c.expect("+OK mail.example.test POP3 server ready")
	c.run(script(login, []string{"C: DELE 1", "S: +OK Message 1 deleted."}))
	// RFC 1939 §3: the autologout timer closes without a response and
	// without entering UPDATE.
	c.expectClosed()
	waitLogout(t, be, 1)
	if _, updates, _ := be.snapshot(); len(updates) != 0 {
		t.Errorf("Update called after autologout: %q", updates)
	}
	if !slices.Contains(rec.traceLines(), "S: <autologout: no command within the read timeout>") {
		t.Errorf("trace lacks the autologout note: %q", rec.traceLines())
	}
}

func TestShutdownWaitsForSessions(t *testing.T) {
	be := newTestBackend()
	rec := &recorder{}
	s := newTestServer(be, rec)
	s.AllowInsecureAuth = true
	addr := serve(t, s, nil)
	c := dial(t, addr)
	c.expect("+OK mail.example.test POP3 server ready")
	c.run(script(login, []string{"C: DELE 1", "S: +OK Message 1 deleted."}))

	ctx, cancel := context.WithTimeout(context.Background(), clientDeadline)
	defer cancel()
	result := make(chan error, 1)
	go func() { result <- s.Shutdown(ctx) }()

	// The open session is still served, and Shutdown cannot have returned
	// while it is open.
	c.run([]string{"C: NOOP", "S: +OK"})
	select {
	case err := <-result:
		t.Fatalf("Shutdown returned %v while a session was open", err)
	default:
	}
	c.run([]string{"C: QUIT", "S: +OK Logging out (2 messages left).", "EOF"})
	if err := <-result; err != nil {
		t.Fatalf("Shutdown = %v, want nil", err)
	}
	if _, updates, logouts := be.snapshot(); len(updates) != 1 || logouts != 1 {
		t.Errorf("Update calls %q, Logout calls %d; want 1 and 1", updates, logouts)
	}
	if err := s.Shutdown(ctx); err != nil {
		t.Errorf("second Shutdown = %v, want nil", err)
	}
}

func TestShutdownContextExpires(t *testing.T) {
	be := newTestBackend()
	s := newTestServer(be, &recorder{})
	c := dial(t, serve(t, s, nil))
	c.expect("+OK mail.example.test POP3 server ready")

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Shutdown(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Shutdown(cancelled) = %v, want context.Canceled", err)
	}
	// The session survived Shutdown; Close ends it.
	c.run([]string{"C: CAPA", "S~ \\+OK.*"})
	if err := s.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	waitLogout(t, be, 1)
}

func TestCloseEndsSessions(t *testing.T) {
	be := newTestBackend()
	s := newTestServer(be, &recorder{})
	s.AllowInsecureAuth = true
	addr := serve(t, s, nil)
	c := dial(t, addr)
	c.expect("+OK mail.example.test POP3 server ready")
	c.run(script(login, []string{"C: DELE 1", "S: +OK Message 1 deleted."}))

	if err := s.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	// Close waited for the session: Logout has already run.
	if _, updates, logouts := be.snapshot(); len(updates) != 0 || logouts != 1 {
		t.Errorf("after Close: Update calls %q, Logout calls %d; want none and 1", updates, logouts)
	}
	c.expectClosed()
	if err := s.Close(); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}
	if err := s.ServeConn(c.conn); !errors.Is(err, ErrServerClosed) {
		t.Errorf("ServeConn after Close = %v, want ErrServerClosed", err)
	}
}

func TestServeConnResults(t *testing.T) {
	tests := []struct {
		name   string
		server func(s *Server)
		client func(c *testClient)
		want   error
	}{
		{"quit", nil, func(c *testClient) { c.run([]string{"C: QUIT", "S: +OK Logging out."}) }, nil},
		{"client leaves", nil, func(c *testClient) { c.conn.Close() }, nil},
		{"line too long", nil, func(c *testClient) { c.send(strings.Repeat("A", 300)) }, ErrLineTooLong},
		{"too many bad commands", func(s *Server) { s.MaxBadCommands = 1 }, func(c *testClient) { c.send("XXXX") }, ErrTooManyBadCommands},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestServer(newTestBackend(), &recorder{})
			if tt.server != nil {
				tt.server(s)
			}
			ln, err := listenLoopback()
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			result := make(chan error, 1)
			go func() {
				nc, err := ln.Accept()
				if err != nil {
					result <- err
					return
				}
				result <- s.ServeConn(nc)
			}()
			c := dial(t, ln.Addr().String())
			c.expect("+OK mail.example.test POP3 server ready")
			tt.client(c)
			if err := <-result; !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Errorf("ServeConn = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestServeAfterClose(t *testing.T) {
	s := newTestServer(newTestBackend(), &recorder{})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	ln, err := listenLoopback()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Serve(ln); !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve after Close = %v, want ErrServerClosed", err)
	}
}

func TestServeConnWithoutBackend(t *testing.T) {
	a, b := netPipe()
	defer b.Close()
	if err := (&Server{}).ServeConn(a); err == nil {
		t.Error("ServeConn without a Backend = nil, want an error")
	}
}

// TestConnAccessors checks what a backend can learn about its connection,
// before and after STLS.
func TestConnAccessors(t *testing.T) {
	p := getPKI(t)
	type seen struct {
		server        *Server
		local, remote string
		tlsOK         bool
		conn          bool
		session       bool
	}
	seenc := make(chan seen, 2)
	look := func(c *Conn) seen {
		_, ok := c.TLSConnectionState()
		return seen{c.Server(), c.LocalAddr().String(), c.RemoteAddr().String(), ok, c.Conn() != nil, c.Session() != nil}
	}
	be := newTestBackend()
	s := newTestServer(BackendFunc(func(c *Conn) (Session, error) {
		seenc <- look(c)
		sess, err := be.NewSession(c)
		return &loginHook{Session: sess, hook: func() { seenc <- look(c) }}, err
	}), &recorder{})
	s.TLSConfig = p.serverConfig()
	c := dial(t, serve(t, s, nil))
	c.expect("+OK mail.example.test POP3 server ready")
	c.run([]string{"C: STLS", "S: +OK Begin TLS negotiation"})
	c.startTLS(p.clientConfig())
	c.run(login)

	atConnect, atLogin := <-seenc, <-seenc
	if atConnect.server != s || atConnect.local != c.conn.RemoteAddr().String() || atConnect.remote != c.conn.LocalAddr().String() {
		t.Errorf("at NewSession: server %p (want %p), local %s, remote %s; client is %s -> %s",
			atConnect.server, s, atConnect.local, atConnect.remote, c.conn.LocalAddr(), c.conn.RemoteAddr())
	}
	if atConnect.tlsOK || atConnect.session || !atConnect.conn {
		t.Errorf("at NewSession: TLS %v, session set %v, conn set %v; want false, false, true", atConnect.tlsOK, atConnect.session, atConnect.conn)
	}
	if !atLogin.tlsOK || !atLogin.session {
		t.Errorf("at Login after STLS: TLS %v, session set %v; want true, true", atLogin.tlsOK, atLogin.session)
	}
}

// loginHook runs hook at every Login.
type loginHook struct {
	Session
	hook func()
}

func (l *loginHook) Login(username, password string) error {
	l.hook()
	return l.Session.Login(username, password)
}
