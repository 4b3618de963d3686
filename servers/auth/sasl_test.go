package auth_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/emersion/go-sasl"

	"github.com/maillab/maillab/servers/auth"
)

// checker is a CheckFunc over fixed credentials that records its calls.
type checker struct {
	calls [][2]string
	// refuse, when set, is returned for every call instead.
	refuse error
}

func (c *checker) check(user, secret string) error {
	c.calls = append(c.calls, [2]string{user, secret})
	if c.refuse != nil {
		return c.refuse
	}
	switch {
	case user == "alice" && secret == "S3cret":
		return nil
	case user == "alice" && secret == "ya29.token":
		return nil
	case secret == "ya29.revoked", secret == "ya29.token":
		return &auth.Error{Kind: auth.InvalidToken}
	}
	return &auth.Error{Kind: auth.InvalidCredentials}
}

// step is one Next call and what it must return.
type step struct {
	resp      []byte // nil: the client sent no (initial) response
	challenge string // "" for none or an empty challenge
	json      map[string]string
	done      bool
	kind      auth.Kind // the refusal's kind; 0 for success
	malformed bool      // the error is IsMalformed
	err       error     // the error is errors.Is this
	anyErr    bool      // some error, of the SASL library
}

func (st step) check(t *testing.T, i int, challenge []byte, done bool, err error) {
	t.Helper()
	if st.json != nil {
		var got map[string]string
		if jerr := json.Unmarshal(challenge, &got); jerr != nil || !reflect.DeepEqual(got, st.json) {
			t.Errorf("step %d: Next(%q) challenge = %s, want JSON %v", i, st.resp, challenge, st.json)
		}
	} else if string(challenge) != st.challenge {
		t.Errorf("step %d: Next(%q) challenge = %q, want %q", i, st.resp, challenge, st.challenge)
	}
	if done != st.done {
		t.Errorf("step %d: Next(%q) done = %v, want %v", i, st.resp, done, st.done)
	}
	switch {
	case st.anyErr:
		if err == nil {
			t.Errorf("step %d: Next(%q) error = nil, want an error", i, st.resp)
		}
	case st.malformed:
		if !auth.IsMalformed(err) {
			t.Errorf("step %d: Next(%q) error = %v, want a malformed-response error", i, st.resp, err)
		}
	case st.err != nil:
		if !errors.Is(err, st.err) {
			t.Errorf("step %d: Next(%q) error = %v, want %v", i, st.resp, err, st.err)
		}
	case st.kind != 0:
		if auth.KindOf(err) != st.kind {
			t.Errorf("step %d: Next(%q) error = %v, want kind %v", i, st.resp, err, st.kind)
		}
	case err != nil:
		t.Errorf("step %d: Next(%q) error = %v, want nil", i, st.resp, err)
	}
}

var (
	xoauth2Failure     = map[string]string{"status": "401", "schemes": "bearer", "scope": "https://mail.example.test/"}
	oauthBearerFailure = map[string]string{"status": "invalid_token", "scope": "mail", "openid-configuration": "https://example.test/.well-known/openid-configuration"}
)

func b(s string) []byte { return []byte(s) }

func TestSASLServers(t *testing.T) {
	tests := []struct {
		name  string
		mech  string
		steps []step
		calls [][2]string // what the CheckFunc saw
	}{
		// RFC 4616.
		{name: "PLAIN initial response", mech: "PLAIN",
			steps: []step{{resp: b("\x00alice\x00S3cret"), done: true}},
			calls: [][2]string{{"alice", "S3cret"}}},
		{name: "PLAIN after empty challenge", mech: "plain",
			steps: []step{{resp: nil}, {resp: b("\x00alice\x00S3cret"), done: true}},
			calls: [][2]string{{"alice", "S3cret"}}},
		{name: "PLAIN authzid equal to user", mech: "PLAIN",
			steps: []step{{resp: b("ALICE\x00alice\x00S3cret"), done: true}},
			calls: [][2]string{{"alice", "S3cret"}}},
		{name: "PLAIN other authzid refused", mech: "PLAIN",
			steps: []step{{resp: b("bob\x00alice\x00S3cret"), done: true, kind: auth.InvalidCredentials}}},
		{name: "PLAIN wrong password", mech: "PLAIN",
			steps: []step{{resp: b("\x00alice\x00wrong"), done: true, kind: auth.InvalidCredentials}},
			calls: [][2]string{{"alice", "wrong"}}},
		// go-sasl's error; the protocol servers end the exchange on
		// any error, done or not.
		{name: "PLAIN without separators", mech: "PLAIN",
			steps: []step{{resp: b("alice S3cret"), anyErr: true}}},

		// draft-murchison-sasl-login.
		{name: "LOGIN challenges", mech: "LOGIN",
			steps: []step{
				{resp: nil, challenge: "Username:"},
				{resp: b("alice"), challenge: "Password:"},
				{resp: b("S3cret"), done: true},
			},
			calls: [][2]string{{"alice", "S3cret"}}},
		{name: "LOGIN initial response is the user", mech: "LOGIN",
			steps: []step{
				{resp: b("alice"), challenge: "Password:"},
				{resp: b("S3cret"), done: true},
			},
			calls: [][2]string{{"alice", "S3cret"}}},
		{name: "LOGIN wrong password", mech: "LOGIN",
			steps: []step{
				{resp: nil, challenge: "Username:"},
				{resp: b("alice"), challenge: "Password:"},
				{resp: b("s3cret"), done: true, kind: auth.InvalidCredentials},
			},
			calls: [][2]string{{"alice", "s3cret"}}},
		{name: "LOGIN response after done", mech: "LOGIN",
			steps: []step{
				{resp: b("alice"), challenge: "Password:"},
				{resp: b("S3cret"), done: true},
				{resp: b("more"), done: true, err: sasl.ErrUnexpectedClientResponse},
			},
			calls: [][2]string{{"alice", "S3cret"}}},

		// Google's XOAUTH2.
		{name: "XOAUTH2 initial response", mech: "XOAUTH2",
			steps: []step{{resp: b("user=alice\x01auth=Bearer ya29.token\x01\x01"), done: true}},
			calls: [][2]string{{"alice", "ya29.token"}}},
		{name: "XOAUTH2 after empty challenge", mech: "xoauth2",
			steps: []step{{resp: nil}, {resp: b("user=alice\x01auth=Bearer ya29.token\x01\x01"), done: true}},
			calls: [][2]string{{"alice", "ya29.token"}}},
		{name: "XOAUTH2 bad token: JSON challenge, then the error", mech: "XOAUTH2",
			steps: []step{
				{resp: b("user=alice\x01auth=Bearer ya29.revoked\x01\x01"), json: xoauth2Failure},
				{resp: b(""), done: true, kind: auth.InvalidToken},
			},
			calls: [][2]string{{"alice", "ya29.revoked"}}},
		{name: "XOAUTH2 other refusal: no challenge", mech: "XOAUTH2",
			steps: []step{{resp: b("user=bob\x01auth=Bearer x\x01\x01"), done: true, kind: auth.InvalidCredentials}},
			calls: [][2]string{{"bob", "x"}}},
		{name: "XOAUTH2 basic credentials", mech: "XOAUTH2",
			steps: []step{{resp: b("user=alice\x01auth=Basic YWxpY2U6UzNjcmV0\x01\x01"), done: true, malformed: true}}},
		{name: "XOAUTH2 without user", mech: "XOAUTH2",
			steps: []step{{resp: b("auth=Bearer ya29.token\x01\x01"), done: true, malformed: true}}},
		{name: "XOAUTH2 without token", mech: "XOAUTH2",
			steps: []step{{resp: b("user=alice\x01auth=Bearer \x01\x01"), done: true, malformed: true}}},
		{name: "XOAUTH2 empty", mech: "XOAUTH2",
			steps: []step{{resp: b(""), done: true, malformed: true}}},
		{name: "XOAUTH2 response after failure", mech: "XOAUTH2",
			steps: []step{
				{resp: b("user=alice\x01auth=Bearer ya29.revoked\x01\x01"), json: xoauth2Failure},
				{resp: b(""), done: true, kind: auth.InvalidToken},
				{resp: b(""), done: true, err: sasl.ErrUnexpectedClientResponse},
			},
			calls: [][2]string{{"alice", "ya29.revoked"}}},

		// RFC 7628.
		{name: "OAUTHBEARER initial response", mech: "OAUTHBEARER",
			steps: []step{{resp: b("n,a=alice,\x01host=mail.example.test\x01port=993\x01auth=Bearer ya29.token\x01\x01"), done: true}},
			calls: [][2]string{{"alice", "ya29.token"}}},
		{name: "OAUTHBEARER escaped user", mech: "OAUTHBEARER",
			steps: []step{
				{resp: b("n,a=al=2Cice=3D,\x01auth=Bearer ya29.token\x01\x01"), json: oauthBearerFailure},
				{resp: b("\x01"), done: true, kind: auth.InvalidToken},
			},
			calls: [][2]string{{"al,ice=", "ya29.token"}}},
		{name: "OAUTHBEARER without authzid", mech: "OAUTHBEARER",
			steps: []step{
				{resp: b("n,,\x01auth=Bearer ya29.token\x01\x01"), json: oauthBearerFailure},
				{resp: b("\x01"), done: true, kind: auth.InvalidToken},
			},
			calls: [][2]string{{"", "ya29.token"}}},
		// RFC 7628 §3.2.3: the client acknowledges the error with a
		// single %x01; an empty response is accepted too.
		{name: "OAUTHBEARER bad token: JSON challenge, then the error", mech: "OAUTHBEARER",
			steps: []step{
				{resp: b("n,a=alice,\x01auth=Bearer ya29.revoked\x01\x01"), json: oauthBearerFailure},
				{resp: b("\x01"), done: true, kind: auth.InvalidToken},
			},
			calls: [][2]string{{"alice", "ya29.revoked"}}},
		{name: "OAUTHBEARER empty acknowledgement", mech: "OAUTHBEARER",
			steps: []step{
				{resp: nil},
				{resp: b("n,a=alice,\x01auth=Bearer ya29.revoked\x01\x01"), json: oauthBearerFailure},
				{resp: b(""), done: true, kind: auth.InvalidToken},
			},
			calls: [][2]string{{"alice", "ya29.revoked"}}},
		{name: "OAUTHBEARER without token", mech: "OAUTHBEARER",
			steps: []step{{resp: b("n,a=alice,\x01host=mail.example.test\x01\x01"), done: true, malformed: true}}},
		{name: "OAUTHBEARER empty", mech: "OAUTHBEARER",
			steps: []step{{resp: b(""), done: true, malformed: true}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &checker{}
			srv := auth.NewSASLServer(tt.mech, c.check)
			if srv == nil {
				t.Fatalf("NewSASLServer(%q) = nil", tt.mech)
			}
			for i, st := range tt.steps {
				challenge, done, err := srv.Next(st.resp)
				st.check(t, i, challenge, done, err)
			}
			if !reflect.DeepEqual(c.calls, tt.calls) {
				t.Errorf("CheckFunc calls = %q, want %q", c.calls, tt.calls)
			}
		})
	}
}

// TestSASLRefusalKinds checks that a refusal other than a bad token ends
// the exchange at once with that refusal, for every mechanism.
func TestSASLRefusalKinds(t *testing.T) {
	responses := map[string][][]byte{
		"PLAIN":       {b("\x00alice\x00S3cret")},
		"LOGIN":       {nil, b("alice"), b("S3cret")},
		"XOAUTH2":     {b("user=alice\x01auth=Bearer ya29.token\x01\x01")},
		"OAUTHBEARER": {b("n,a=alice,\x01auth=Bearer ya29.token\x01\x01")},
	}
	for mech, resps := range responses {
		for _, kind := range []auth.Kind{auth.PasswordExpired, auth.AccountDisabled, auth.TemporarilyLocked, auth.BasicAuthDisabled, auth.TemporaryFailure} {
			t.Run(fmt.Sprintf("%s/%v", mech, kind), func(t *testing.T) {
				c := &checker{refuse: fmt.Errorf("policy: %w", &auth.Error{Kind: kind})}
				srv := auth.NewSASLServer(mech, c.check)
				var done bool
				var err error
				for _, r := range resps {
					_, done, err = srv.Next(r)
				}
				if !done || auth.KindOf(err) != kind {
					t.Errorf("%s with a %v refusal: done %v, %v, want done with kind %v", mech, kind, done, err, kind)
				}
			})
		}
	}
}

// TestSASLWithRealClients runs go-sasl's client implementations against
// the servers, as go-smtp and go-imap clients do.
func TestSASLWithRealClients(t *testing.T) {
	tests := []struct {
		name    string
		client  sasl.Client
		wantErr bool
	}{
		{"PLAIN", sasl.NewPlainClient("", "alice", "S3cret"), false},
		{"PLAIN wrong password", sasl.NewPlainClient("", "alice", "nope"), true},
		{"LOGIN", sasl.NewLoginClient("alice", "S3cret"), false},
		{"OAUTHBEARER", sasl.NewOAuthBearerClient(&sasl.OAuthBearerOptions{Username: "alice", Token: "ya29.token", Host: "mail.example.test", Port: 993}), false},
		{"OAUTHBEARER revoked", sasl.NewOAuthBearerClient(&sasl.OAuthBearerOptions{Username: "alice", Token: "ya29.revoked"}), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mech, ir, err := tt.client.Start()
			if err != nil {
				t.Fatal(err)
			}
			srv := auth.NewSASLServer(mech, (&checker{}).check)
			resp := ir
			var serverErr, clientErr error
			for range 5 {
				challenge, done, err := srv.Next(resp)
				if done {
					serverErr = err
					break
				}
				if resp, clientErr = tt.client.Next(challenge); clientErr != nil {
					// The go-sasl OAUTHBEARER client gives up on the
					// error challenge; a real one then sends the
					// acknowledgement (RFC 7628 §3.2.3).
					_, _, serverErr = srv.Next([]byte{1})
					break
				}
			}
			if gotErr := serverErr != nil; gotErr != tt.wantErr {
				t.Errorf("%s exchange: server error %v, client error %v, want failure %v", mech, serverErr, clientErr, tt.wantErr)
			}
		})
	}
}

func TestNewSASLServerUnknown(t *testing.T) {
	for _, mech := range []string{"CRAM-MD5", "SCRAM-SHA-256", "GSSAPI", ""} {
		if srv := auth.NewSASLServer(mech, (&checker{}).check); srv != nil {
			t.Errorf("NewSASLServer(%q) = %T, want nil", mech, srv)
		}
	}
}
