package auth

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/emersion/go-sasl"
)

// SASL mechanism names.
const (
	MechPlain       = "PLAIN"
	MechLogin       = "LOGIN"
	MechXOAuth2     = "XOAUTH2"
	MechOAuthBearer = "OAUTHBEARER"
)

// CheckFunc verifies a user name and a password or token.
type CheckFunc func(username, secret string) error

// errMalformed is returned for a client response that breaks the
// mechanism's syntax.
var errMalformed = errors.New("malformed SASL response")

// IsMalformed reports whether err means the client's SASL response could
// not be parsed.
func IsMalformed(err error) bool { return errors.Is(err, errMalformed) }

// NewSASLServer returns the server side of mech, or nil if the mechanism is
// unknown. check runs once the credentials are known; its error ends the
// exchange (OAuth mechanisms first send their JSON error challenge).
func NewSASLServer(mech string, check CheckFunc) sasl.Server {
	switch strings.ToUpper(mech) {
	case MechPlain:
		// RFC 4616 §2: authzid, if given, must be the user itself.
		return sasl.NewPlainServer(func(identity, username, password string) error {
			if identity != "" && !strings.EqualFold(identity, username) {
				return &Error{Kind: InvalidCredentials, Detail: "authorization identity differs from user"}
			}
			return check(username, password)
		})
	case MechLogin:
		return &loginServer{check: check}
	case MechXOAuth2:
		return &oauthServer{check: check, parse: parseXOAuth2, failure: xoauth2Failure}
	case MechOAuthBearer:
		return &oauthServer{check: check, parse: parseOAuthBearer, failure: oauthBearerFailure}
	}
	return nil
}

// loginServer implements the obsolete but ubiquitous LOGIN mechanism
// (draft-murchison-sasl-login): two challenges, "Username:" and
// "Password:".
type loginServer struct {
	check    CheckFunc
	step     int
	username string
}

func (s *loginServer) Next(response []byte) ([]byte, bool, error) {
	switch s.step {
	case 0:
		s.step++
		if response != nil {
			// Initial response carries the user name (as Outlook sends it).
			s.username = string(response)
			s.step++
			return []byte("Password:"), false, nil
		}
		return []byte("Username:"), false, nil
	case 1:
		s.username = string(response)
		s.step++
		return []byte("Password:"), false, nil
	case 2:
		s.step++
		return nil, true, s.check(s.username, string(response))
	}
	return nil, true, sasl.ErrUnexpectedClientResponse
}

type oauthServer struct {
	check   CheckFunc
	parse   func([]byte) (user, token string, err error)
	failure func() []byte
	step    int
	err     error
}

func (s *oauthServer) Next(response []byte) ([]byte, bool, error) {
	switch s.step {
	case 0:
		s.step++
		if response == nil {
			// Both mechanisms are client-first; ask for the response.
			return []byte{}, false, nil
		}
		fallthrough
	case 1:
		s.step = 2
		user, token, err := s.parse(response)
		if err != nil {
			return nil, true, err
		}
		if err := s.check(user, token); err != nil {
			if KindOf(err) == InvalidToken {
				// RFC 7628 §3.2.2 / Google's XOAUTH2: send the JSON error
				// as a challenge; the client answers with a dummy
				// response and then the exchange fails.
				s.err = err
				return s.failure(), false, nil
			}
			return nil, true, err
		}
		return nil, true, nil
	case 2:
		s.step++
		return nil, true, s.err
	}
	return nil, true, sasl.ErrUnexpectedClientResponse
}

// parseXOAuth2 reads "user=U^Aauth=Bearer T^A^A".
func parseXOAuth2(b []byte) (string, string, error) {
	var user, token string
	for _, kv := range bytes.Split(b, []byte{1}) {
		k, v, ok := bytes.Cut(kv, []byte("="))
		if !ok {
			continue
		}
		switch string(k) {
		case "user":
			user = string(v)
		case "auth":
			t, ok := strings.CutPrefix(string(v), "Bearer ")
			if !ok {
				return "", "", fmt.Errorf("xoauth2: auth is not a bearer token: %w", errMalformed)
			}
			token = t
		}
	}
	if user == "" || token == "" {
		return "", "", fmt.Errorf("xoauth2: missing user or token: %w", errMalformed)
	}
	return user, token, nil
}

// parseOAuthBearer reads the RFC 7628 §3.1 client response
// "n,a=U,^Aauth=Bearer T^A^A".
func parseOAuthBearer(b []byte) (string, string, error) {
	parts := bytes.Split(b, []byte{1})
	gs2 := string(parts[0])
	var user, token string
	for _, f := range strings.Split(gs2, ",") {
		if a, ok := strings.CutPrefix(f, "a="); ok {
			user = strings.NewReplacer("=2C", ",", "=3D", "=").Replace(a)
		}
	}
	for _, kv := range parts[1:] {
		if t, ok := strings.CutPrefix(string(kv), "auth=Bearer "); ok {
			token = t
		}
	}
	if token == "" {
		return "", "", fmt.Errorf("oauthbearer: missing token: %w", errMalformed)
	}
	return user, token, nil
}

func xoauth2Failure() []byte {
	b, _ := json.Marshal(map[string]string{"status": "401", "schemes": "bearer", "scope": "https://mail.example.test/"})
	return b
}

func oauthBearerFailure() []byte {
	b, _ := json.Marshal(map[string]string{"status": "invalid_token", "scope": "mail", "openid-configuration": "https://example.test/.well-known/openid-configuration"})
	return b
}
