package imapd

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"

	"github.com/maillab/maillab/servers/auth"
	"github.com/maillab/maillab/servers/mailstore"
)

func TestAuthError(t *testing.T) {
	tests := []struct {
		name string
		err  error
		code imap.ResponseCode
		text string
	}{
		{"invalid credentials", &auth.Error{Kind: auth.InvalidCredentials}, "AUTHENTICATIONFAILED", "Authentication failed"},
		{"password expired", &auth.Error{Kind: auth.PasswordExpired}, "EXPIRED", "Password expired; change it in the web portal"},
		{"account disabled", &auth.Error{Kind: auth.AccountDisabled}, "CONTACTADMIN", "Account disabled; contact your administrator"},
		{"temporarily locked", &auth.Error{Kind: auth.TemporarilyLocked}, "UNAVAILABLE",
			"Account temporarily locked after too many failed logins; try again later"},
		{"temporarily locked with detail", &auth.Error{Kind: auth.TemporarilyLocked, Detail: "retry in 15 minutes"}, "UNAVAILABLE",
			"Account temporarily locked after too many failed logins; try again later (retry in 15 minutes)"},
		{"detail with line breaks", &auth.Error{Kind: auth.TemporarilyLocked, Detail: "retry\r\n* BYE"}, "UNAVAILABLE",
			"Account temporarily locked after too many failed logins; try again later (retry  * BYE)"},
		{"basic auth disabled", &auth.Error{Kind: auth.BasicAuthDisabled}, "ALERT",
			"Application-specific password required: basic authentication is disabled, sign in with OAuth2 (XOAUTH2/OAUTHBEARER)"},
		{"invalid token", &auth.Error{Kind: auth.InvalidToken}, "AUTHENTICATIONFAILED", "Invalid credentials (Failure)"},
		{"temporary failure", &auth.Error{Kind: auth.TemporaryFailure}, "UNAVAILABLE", "Temporary authentication failure"},
		{"wrapped refusal", fmt.Errorf("policy: %w", &auth.Error{Kind: auth.PasswordExpired}), "EXPIRED", "Password expired; change it in the web portal"},
		{"unknown kind", &auth.Error{Kind: 99}, "SERVERBUG", "Internal server error"},
		{"lab failure", errors.New("ldap: connection refused"), "SERVERBUG", "Internal server error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := AuthError(tt.err)
			if got == nil || got.Type != imap.StatusResponseTypeNo || got.Code != tt.code || got.Text != tt.text {
				t.Errorf("AuthError(%v) = %+v, want NO [%s] %s", tt.err, got, tt.code, tt.text)
			}
		})
	}
	if got := AuthError(nil); got != nil {
		t.Errorf("AuthError(nil) = %+v, want nil", got)
	}
}

// refusing returns an authenticator that refuses every login with err.
func refusing(err error) func(*Config) {
	return func(c *Config) {
		c.Auth = auth.Func(func(context.Context, *auth.Request) (*mailstore.User, error) { return nil, err })
	}
}

func TestLoginRefusalOnTheWire(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"invalid credentials", &auth.Error{Kind: auth.InvalidCredentials}, "NO [AUTHENTICATIONFAILED] Authentication failed"},
		{"password expired", &auth.Error{Kind: auth.PasswordExpired}, "NO [EXPIRED] Password expired; change it in the web portal"},
		{"account disabled", &auth.Error{Kind: auth.AccountDisabled}, "NO [CONTACTADMIN] Account disabled; contact your administrator"},
		{"temporarily locked", &auth.Error{Kind: auth.TemporarilyLocked, Detail: "3 failed logins"},
			"NO [UNAVAILABLE] Account temporarily locked after too many failed logins; try again later (3 failed logins)"},
		{"basic auth disabled", &auth.Error{Kind: auth.BasicAuthDisabled},
			"NO [ALERT] Application-specific password required: basic authentication is disabled, sign in with OAuth2 (XOAUTH2/OAUTHBEARER)"},
		{"invalid token", &auth.Error{Kind: auth.InvalidToken}, "NO [AUTHENTICATIONFAILED] Invalid credentials (Failure)"},
		{"temporary failure", &auth.Error{Kind: auth.TemporaryFailure}, "NO [UNAVAILABLE] Temporary authentication failure"},
		{"lab failure", errors.New("directory down"), "NO [SERVERBUG] Internal server error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := startLab(t, withConfig(refusing(tt.err)))
			l.wantErrorLogs = auth.KindOf(tt.err) == 0
			r, _ := dialRaw(t, l.addr)
			for _, command := range []string{
				`LOGIN alice@example.test "alice-secret"`,
				"AUTHENTICATE PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00alice@example.test\x00alice-secret")),
			} {
				if _, done := r.cmd(command); done != tt.want {
					t.Errorf("%s: got %q, want %q", strings.Fields(command)[0], done, tt.want)
				}
			}
			if errs := l.log.errorRecords(); (len(errs) > 0) != l.wantErrorLogs {
				t.Errorf("error records = %q, want some: %v", errs, l.wantErrorLogs)
			}
		})
	}
}

func TestLoginSuccess(t *testing.T) {
	l := startLab(t, withConfig(func(c *Config) { c.Service = "imap-test" }))
	r, greeting := dialRaw(t, l.addr)
	if !strings.HasPrefix(greeting, "* OK [CAPABILITY IMAP4rev1 ") {
		t.Errorf("greeting = %q", greeting)
	}
	_, done := r.cmd(`LOGIN "ALICE@example.test" alice-secret`)
	if !strings.HasPrefix(done, "OK [CAPABILITY ") || !strings.HasSuffix(done, "] Logged in") {
		t.Errorf("LOGIN = %q, want OK [CAPABILITY ...] Logged in", done)
	}
	for _, c := range []string{"NAMESPACE", "UIDPLUS", "MOVE", "IDLE", "BINARY", "CHILDREN", "UNSELECT"} {
		if !strings.Contains(done, " "+c) {
			t.Errorf("capabilities after login %q lack %s", done, c)
		}
	}
	req := l.lastRequest()
	if req.Protocol != "imap" || req.Service != "imap-test" || req.Mechanism != "LOGIN" ||
		req.Username != "ALICE@example.test" || req.Password != alicePass || req.TLS || req.Remote == nil {
		t.Errorf("auth.Request = %+v", req)
	}
	r.expectOK("SELECT INBOX")
	r.cmd("LOGOUT")
}

func TestLoginDisabledBeforeTLS(t *testing.T) {
	l := startLab(t, withConfig(func(c *Config) { c.AllowInsecureAuth = false }))
	r, greeting := dialRaw(t, l.addr)
	for _, want := range []string{" STARTTLS", " LOGINDISABLED"} {
		if !strings.Contains(greeting, want) {
			t.Errorf("greeting %q lacks %s", greeting, want)
		}
	}
	if strings.Contains(greeting, "AUTH=") {
		t.Errorf("greeting %q offers AUTH= before TLS", greeting)
	}
	caps, _ := r.cmd("CAPABILITY")
	if len(caps) != 1 || !strings.Contains(caps[0], " LOGINDISABLED") {
		t.Errorf("CAPABILITY = %q, want LOGINDISABLED", caps)
	}
	if _, done := r.cmd("LOGIN alice@example.test alice-secret"); done != "NO [PRIVACYREQUIRED] TLS is required to authenticate" {
		t.Errorf("LOGIN before TLS = %q", done)
	}
	if _, done := r.cmd("AUTHENTICATE PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00alice@example.test\x00alice-secret"))); !strings.HasPrefix(done, "NO [PRIVACYREQUIRED]") {
		t.Errorf("AUTHENTICATE before TLS = %q", done)
	}

	r.startTLS(l.clientTLS)
	caps, _ = r.cmd("CAPABILITY")
	if len(caps) != 1 || strings.Contains(caps[0], "LOGINDISABLED") || strings.Contains(caps[0], "STARTTLS") || !strings.Contains(caps[0], "AUTH=PLAIN") {
		t.Errorf("CAPABILITY after STARTTLS = %q", caps)
	}
	r.expectOK("LOGIN alice@example.test alice-secret")
	if req := l.lastRequest(); !req.TLS {
		t.Errorf("auth.Request.TLS = false after STARTTLS")
	}
}

func TestNoSTARTTLSWithoutTLSConfig(t *testing.T) {
	l := startLab(t, withConfig(func(c *Config) { c.TLSConfig = nil; c.AllowInsecureAuth = false }))
	r, greeting := dialRaw(t, l.addr)
	if strings.Contains(greeting, "STARTTLS") || !strings.Contains(greeting, "LOGINDISABLED") {
		t.Errorf("greeting = %q, want LOGINDISABLED and no STARTTLS", greeting)
	}
	if _, done := r.cmd("STARTTLS"); !strings.HasPrefix(done, "NO ") {
		t.Errorf("STARTTLS = %q, want NO", done)
	}
}

func TestImplicitTLS(t *testing.T) {
	for _, mode := range []struct {
		name string
		m    listenMode
	}{{"handshake by the server", lazyTLSListener}, {"handshake done by the listener", handshakenTLSListen}} {
		t.Run(mode.name, func(t *testing.T) {
			l := startLab(t, withListener(mode.m), withConfig(func(c *Config) {
				c.AllowInsecureAuth = false
				c.Service = "imaps"
			}))
			c, err := imapclient.DialTLS(l.addr, &imapclient.Options{TLSConfig: l.clientTLS})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if caps := c.Caps(); caps.Has(imap.CapStartTLS) || caps.Has(imap.CapLoginDisabled) || !caps.Has("AUTH=PLAIN") {
				t.Errorf("capabilities on implicit TLS = %v", caps)
			}
			if err := c.Login(alice, alicePass).Wait(); err != nil {
				t.Fatalf("Login = %v", err)
			}
			if req := l.lastRequest(); !req.TLS || req.Service != "imaps" {
				t.Errorf("auth.Request = %+v, want TLS on imaps", req)
			}
			if _, err := c.Select("INBOX", nil).Wait(); err != nil {
				t.Fatalf("Select = %v", err)
			}
			if err := c.Logout().Wait(); err != nil {
				t.Errorf("Logout = %v", err)
			}
		})
	}
}

func TestTLSHandshakeFailureEndsQuietly(t *testing.T) {
	l := startLab(t, withListener(lazyTLSListener))
	r, _ := dialRawNoGreeting(t, l.addr)
	r.send("a1 CAPABILITY") // plaintext to a TLS port
	if _, err := r.r.ReadString('\n'); err == nil {
		t.Errorf("plaintext on an implicit-TLS port got an IMAP line")
	}
}

func TestAuthenticatePlain(t *testing.T) {
	l := startLab(t)
	tests := []struct {
		name, user, pass string
		wantCode         imap.ResponseCode
	}{
		{"right password", alice, alicePass, ""},
		{"wrong password", alice, "old-password", imap.ResponseCodeAuthenticationFailed},
		{"unknown user", "carol@example.test", "x", imap.ResponseCodeAuthenticationFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := l.client("", "", nil)
			err := c.Authenticate(sasl.NewPlainClient("", tt.user, tt.pass))
			var ie *imap.Error
			switch {
			case tt.wantCode == "" && err != nil:
				t.Fatalf("Authenticate = %v", err)
			case tt.wantCode != "" && (!errors.As(err, &ie) || ie.Code != tt.wantCode):
				t.Fatalf("Authenticate = %v, want NO [%s]", err, tt.wantCode)
			}
			if req := l.lastRequest(); req.Mechanism != "PLAIN" || req.Username != tt.user {
				t.Errorf("auth.Request = %+v", req)
			}
		})
	}
}

func TestAuthenticateMechanisms(t *testing.T) {
	l := startLab(t, withConfig(func(c *Config) { c.Mechanisms = []string{"xoauth2", auth.MechOAuthBearer} }))
	_, greeting := dialRaw(t, l.addr)
	if !strings.Contains(greeting, " AUTH=PLAIN AUTH=XOAUTH2 AUTH=OAUTHBEARER") {
		t.Errorf("greeting = %q, want AUTH=PLAIN AUTH=XOAUTH2 AUTH=OAUTHBEARER", greeting)
	}
	r, _ := dialRaw(t, l.addr)
	if _, done := r.cmd("AUTHENTICATE CRAM-MD5"); !strings.HasPrefix(done, "NO ") {
		t.Errorf("AUTHENTICATE CRAM-MD5 = %q, want NO", done)
	}
	if _, done := r.cmd("AUTHENTICATE PLAIN bm90LXBsYWlu"); !strings.HasPrefix(done, "BAD [CLIENTBUG]") {
		t.Errorf("AUTHENTICATE PLAIN with a malformed message = %q, want BAD [CLIENTBUG]", done)
	}
	plain := func(authz, user, pass string) string {
		return base64.StdEncoding.EncodeToString([]byte(authz + "\x00" + user + "\x00" + pass))
	}
	if _, done := r.cmd("AUTHENTICATE PLAIN " + plain(bob, alice, alicePass)); done != "NO [AUTHENTICATIONFAILED] Authentication failed" {
		t.Errorf("AUTHENTICATE PLAIN as another identity = %q", done)
	}

	// Without an initial response the server asks with an empty
	// challenge, "+ " (RFC 3501 §6.2.2).
	r.send("a9 AUTHENTICATE PLAIN")
	if got := r.line(); got != "+ " {
		t.Errorf("challenge = %q, want %q", got, "+ ")
	}
	r.send(plain("", alice, alicePass))
	if got := r.line(); !strings.HasPrefix(got, "a9 OK ") {
		t.Errorf("AUTHENTICATE PLAIN in two steps = %q", got)
	}
}

func xoauth2(user, token string) string {
	return base64.StdEncoding.EncodeToString([]byte("user=" + user + "\x01auth=Bearer " + token + "\x01\x01"))
}

func oauthBearer(user, token string) string {
	return base64.StdEncoding.EncodeToString([]byte("n,a=" + user + ",\x01auth=Bearer " + token + "\x01\x01"))
}

func TestOAuth(t *testing.T) {
	l := startLab(t, withConfig(func(c *Config) { c.Mechanisms = []string{auth.MechXOAuth2, auth.MechOAuthBearer} }))
	tests := []struct {
		mech       string
		response   func(user, token string) string
		ack        string // the client's answer to the error challenge
		wantStatus string
	}{
		{"XOAUTH2", xoauth2, "", "401"},
		{"OAUTHBEARER", oauthBearer, "AQ==", "invalid_token"}, // RFC 7628 §3.2.3: %x01
		{"OAUTHBEARER", oauthBearer, "", "invalid_token"},     // an empty ack must not crash
	}
	for _, tt := range tests {
		t.Run(tt.mech+" bad token ack "+tt.ack, func(t *testing.T) {
			r, _ := dialRaw(t, l.addr)
			r.send("a1 AUTHENTICATE " + tt.mech + " " + tt.response(alice, "expired-token"))
			challenge := r.line()
			b64, ok := strings.CutPrefix(challenge, "+ ")
			if !ok {
				t.Fatalf("got %q, want a continuation with the JSON error", challenge)
			}
			js, err := base64.StdEncoding.DecodeString(b64)
			if err != nil {
				t.Fatalf("challenge %q: %v", b64, err)
			}
			var status struct {
				Status string `json:"status"`
			}
			if err := json.Unmarshal(js, &status); err != nil || status.Status != tt.wantStatus {
				t.Errorf("challenge JSON = %s (%v), want status %s", js, err, tt.wantStatus)
			}
			r.send(tt.ack)
			if done := r.line(); done != "a1 NO [AUTHENTICATIONFAILED] Invalid credentials (Failure)" {
				t.Errorf("completion = %q", done)
			}
			if req := l.lastRequest(); req.Mechanism != tt.mech || req.Username != alice || req.Password != "expired-token" {
				t.Errorf("auth.Request = %+v", req)
			}
		})
		t.Run(tt.mech+" good token", func(t *testing.T) {
			r, _ := dialRaw(t, l.addr)
			if _, done := r.cmd("AUTHENTICATE " + tt.mech + " " + tt.response(alice, goodToken)); !strings.HasPrefix(done, "OK ") {
				t.Errorf("AUTHENTICATE %s = %q", tt.mech, done)
			}
		})
	}
	t.Run("without initial response", func(t *testing.T) {
		r, _ := dialRaw(t, l.addr)
		r.send("a1 AUTHENTICATE XOAUTH2")
		if got := r.line(); got != "+ " && got != "+" {
			t.Fatalf("got %q, want an empty continuation", got)
		}
		r.send(xoauth2(alice, goodToken))
		if got := r.line(); !strings.HasPrefix(got, "a1 OK ") {
			t.Errorf("completion = %q", got)
		}
	})
}
