package auth_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/maillab/maillab/servers/auth"
)

// fuzzCheck refuses tokens that start with "bad" as invalid (so the error
// challenge path runs) and accepts everything else.
type fuzzCheck struct{ calls [][2]string }

func (c *fuzzCheck) check(user, token string) error {
	c.calls = append(c.calls, [2]string{user, token})
	if strings.HasPrefix(token, "bad") {
		return &auth.Error{Kind: auth.InvalidToken}
	}
	return nil
}

// exchange runs a client response and, if the server answers with a
// challenge, a dummy acknowledgement. It fails the test on any broken
// promise of the sasl.Server contract.
func exchange(t *testing.T, mech string, resp []byte) *fuzzCheck {
	t.Helper()
	c := &fuzzCheck{}
	srv := auth.NewSASLServer(mech, c.check)
	challenge, done, err := srv.Next(resp)
	if !done {
		if err != nil {
			t.Fatalf("%s Next(%q) = not done with error %v", mech, resp, err)
		}
		if len(c.calls) != 1 || !strings.HasPrefix(c.calls[0][1], "bad") || len(challenge) == 0 {
			t.Fatalf("%s Next(%q) = challenge %q without a refused token (calls %q)", mech, resp, challenge, c.calls)
		}
		_, done, err = srv.Next([]byte{1})
		if !done || auth.KindOf(err) != auth.InvalidToken {
			t.Fatalf("%s Next(ack) after the error challenge = done %v, %v, want done with InvalidToken", mech, done, err)
		}
		return c
	}
	if err == nil && len(c.calls) != 1 {
		t.Fatalf("%s Next(%q) succeeded with %d checks, want 1", mech, resp, len(c.calls))
	}
	if err != nil && !auth.IsMalformed(err) {
		t.Fatalf("%s Next(%q) = %v, want a malformed-response error", mech, resp, err)
	}
	if len(c.calls) > 1 {
		t.Fatalf("%s Next(%q) checked %d times", mech, resp, len(c.calls))
	}
	return c
}

// FuzzXOAuth2 feeds the XOAUTH2 server arbitrary client responses and
// well-formed ones built from a user and a token: it must never panic and
// must hand a well-formed response's user and token to the check.
func FuzzXOAuth2(f *testing.F) {
	for _, s := range []struct{ raw, user, token string }{
		{"user=alice@example.test\x01auth=Bearer ya29.a0AfH6SMBx\x01\x01", "alice@example.test", "ya29.a0AfH6SMBx"},
		{"user=alice\x01auth=Bearer bad-token\x01\x01", "alice", "bad-token"},
		{"user=alice\x01auth=Basic YWxpY2U6cGFzcw==\x01\x01", "a=b", "t t"},
		{"auth=Bearer x\x01user=\x01", "", ""},
		{"", "user", "=Bearer"},
		{"\x01\x01=\x01", "\x00", "\xff"},
	} {
		f.Add([]byte(s.raw), s.user, s.token)
	}
	f.Fuzz(func(t *testing.T, raw []byte, user, token string) {
		c := exchange(t, "XOAUTH2", raw)
		if len(c.calls) == 1 {
			u, tok := c.calls[0][0], c.calls[0][1]
			if u == "" || tok == "" || !bytes.Contains(raw, []byte("user="+u)) || !bytes.Contains(raw, []byte("auth=Bearer "+tok)) {
				t.Fatalf("XOAUTH2 Next(%q) checked %q, %q: not taken from the response", raw, u, tok)
			}
		}

		if user == "" || token == "" || strings.ContainsRune(user+token, 1) {
			return
		}
		resp := []byte("user=" + user + "\x01auth=Bearer " + token + "\x01\x01")
		c = exchange(t, "XOAUTH2", resp)
		if len(c.calls) != 1 || c.calls[0] != [2]string{user, token} {
			t.Fatalf("XOAUTH2 Next(%q) checked %q, want [[%q %q]]", resp, c.calls, user, token)
		}
	})
}

// gs2Escape encodes a saslname (RFC 5801 §5.1).
func gs2Escape(s string) string {
	return strings.NewReplacer("=", "=3D", ",", "=2C").Replace(s)
}

// FuzzOAuthBearer does for OAUTHBEARER (RFC 7628 §3.1) what FuzzXOAuth2
// does for XOAUTH2, including the GS2 escaping of the user name.
func FuzzOAuthBearer(f *testing.F) {
	for _, s := range []struct{ raw, user, token string }{
		{"n,a=alice@example.test,\x01host=mail.example.test\x01port=993\x01auth=Bearer ya29.a0AfH6SMBx\x01\x01", "alice@example.test", "ya29.a0AfH6SMBx"},
		{"n,a=al=2Cice=3D,\x01auth=Bearer bad\x01\x01", "al,ice=", "bad"},
		{"n,,\x01auth=Bearer t\x01\x01", "", "t"},
		{"y,a=x", "=2C", "=3D"},
		{"", "", ""},
		{"\x01auth=Bearer \x01", "a=", " "},
	} {
		f.Add([]byte(s.raw), s.user, s.token)
	}
	f.Fuzz(func(t *testing.T, raw []byte, user, token string) {
		c := exchange(t, "OAUTHBEARER", raw)
		if len(c.calls) == 1 {
			if tok := c.calls[0][1]; tok == "" || !bytes.Contains(raw, []byte("auth=Bearer "+tok)) {
				t.Fatalf("OAUTHBEARER Next(%q) checked token %q: not taken from the response", raw, tok)
			}
		}

		if token == "" || strings.ContainsRune(user+token, 1) {
			return
		}
		authzid := ""
		if user != "" {
			authzid = "a=" + gs2Escape(user)
		}
		resp := []byte("n," + authzid + ",\x01host=mail.example.test\x01port=993\x01auth=Bearer " + token + "\x01\x01")
		c = exchange(t, "OAUTHBEARER", resp)
		if len(c.calls) != 1 || c.calls[0] != [2]string{user, token} {
			t.Fatalf("OAUTHBEARER Next(%q) checked %q, want [[%q %q]]", resp, c.calls, user, token)
		}
	})
}
