package diagnose

import (
	"crypto/hmac"
	"crypto/md5" //nolint:gosec // CRAM-MD5 is defined with HMAC-MD5 (RFC 2195).
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
)

// saslClient is the client side of one SASL exchange: the initial response
// (nil for none) and the answer to each server challenge.
type saslClient interface {
	name() string
	initial() []byte
	next(challenge []byte) ([]byte, error)
}

// plainClient is RFC 4616 PLAIN: authzid NUL authcid NUL password.
type plainClient struct{ user, pass string }

func (plainClient) name() string { return "PLAIN" }
func (c plainClient) initial() []byte {
	return []byte("\x00" + c.user + "\x00" + c.pass)
}
func (c plainClient) next([]byte) ([]byte, error) {
	return nil, fmt.Errorf("PLAIN: unexpected challenge")
}

// loginClient is the LOGIN mechanism (draft-murchison-sasl-login): user
// name, then password, each after a challenge.
type loginClient struct {
	user, pass string
	step       int
}

func (*loginClient) name() string    { return "LOGIN" }
func (*loginClient) initial() []byte { return nil }
func (c *loginClient) next([]byte) ([]byte, error) {
	c.step++
	switch c.step {
	case 1:
		return []byte(c.user), nil
	case 2:
		return []byte(c.pass), nil
	}
	return nil, fmt.Errorf("LOGIN: unexpected third challenge")
}

// cramClient is RFC 2195 CRAM-MD5: the answer is the user name, a space and
// the hex HMAC-MD5 of the challenge keyed with the password.
type cramClient struct {
	user, pass string
	done       bool
}

func (*cramClient) name() string    { return "CRAM-MD5" }
func (*cramClient) initial() []byte { return nil }
func (c *cramClient) next(challenge []byte) ([]byte, error) {
	if c.done {
		return nil, fmt.Errorf("CRAM-MD5: unexpected second challenge")
	}
	c.done = true
	return []byte(c.user + " " + cramDigest(c.pass, challenge)), nil
}

func cramDigest(pass string, challenge []byte) string {
	m := hmac.New(md5.New, []byte(pass))
	m.Write(challenge)
	return hex.EncodeToString(m.Sum(nil))
}

func newSASL(mech, user, pass string) saslClient {
	switch mech {
	case "PLAIN":
		return plainClient{user, pass}
	case "LOGIN":
		return &loginClient{user: user, pass: pass}
	case "CRAM-MD5":
		return &cramClient{user: user, pass: pass}
	}
	return nil
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// decodeChallenge decodes a base64 server challenge; RFC 4954 §4 allows an
// empty one.
func decodeChallenge(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("challenge %q is not base64", s)
	}
	return b, nil
}

// oauthMechs are token mechanisms; a server that offers only these has
// password login disabled.
var oauthMechs = []string{"XOAUTH2", "OAUTHBEARER", "XOAUTH"}

// passwordMechs are the SASL mechanisms that carry a password.
var passwordMechs = []string{"PLAIN", "LOGIN", "CRAM-MD5", "DIGEST-MD5", "SCRAM-SHA-1", "SCRAM-SHA-256", "NTLM", "GSSAPI"}

// onlyOAuth reports whether mechs lists token mechanisms and no password
// mechanism.
func onlyOAuth(mechs []string) bool {
	hasOAuth := false
	for _, m := range mechs {
		if slices.Contains(oauthMechs, m) {
			hasOAuth = true
		}
		if slices.Contains(passwordMechs, m) {
			return false
		}
	}
	return hasOAuth
}

// chooseMech picks the mechanism to use: the first of the client's allowed
// mechanisms (in the client's order) that the server offers and the
// diagnoser speaks. With no client restriction, PLAIN, then LOGIN, then
// CRAM-MD5.
func chooseMech(server, client []string) string {
	prefs := client
	if len(prefs) == 0 {
		prefs = supportedMechs
	}
	for _, m := range prefs {
		if slices.Contains(server, m) && slices.Contains(supportedMechs, m) {
			return m
		}
	}
	return ""
}

// clientAllowsCleartext reports whether the client may send the password
// itself (IMAP LOGIN, POP3 USER/PASS): it may unless restricted to
// mechanisms without PLAIN or LOGIN.
func clientAllowsCleartext(client []string) bool {
	return len(client) == 0 || slices.Contains(client, "PLAIN") || slices.Contains(client, "LOGIN")
}

var (
	_ saslClient = plainClient{}
	_ saslClient = (*loginClient)(nil)
	_ saslClient = (*cramClient)(nil)
)
