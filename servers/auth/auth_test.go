package auth_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/maillab/maillab/servers/auth"
	"github.com/maillab/maillab/servers/mailstore"
)

// newStore returns a mailstore with alice (password "S3cret") and bob.
func newStore(t *testing.T) *mailstore.Store {
	t.Helper()
	s, err := mailstore.Open(mailstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range [][3]string{
		{"alice@example.test", "Alice", "S3cret"},
		{"bob@example.test", "bob@example.test", "hunter2"},
	} {
		if _, err := s.AddUser(u[0], u[1], u[2]); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func TestStoreAuthenticate(t *testing.T) {
	a := &auth.Store{Store: newStore(t), Tokens: map[string]string{"alice": "ya29.alice-token", "bob@example.test": "ya29.bob"}}
	tests := []struct {
		name     string
		req      auth.Request
		wantUser string
		wantKind auth.Kind
	}{
		{"password", auth.Request{Mechanism: "PLAIN", Username: "Alice", Password: "S3cret"}, "Alice", 0},
		{"user name in other case", auth.Request{Mechanism: "LOGIN", Username: "ALICE", Password: "S3cret"}, "Alice", 0},
		{"email as user name", auth.Request{Mechanism: "USER", Username: "Bob@Example.Test", Password: "hunter2"}, "bob@example.test", 0},
		{"password case matters", auth.Request{Mechanism: "PLAIN", Username: "alice", Password: "s3cret"}, "", auth.InvalidCredentials},
		{"password prefix", auth.Request{Mechanism: "PLAIN", Username: "alice", Password: "S3cre"}, "", auth.InvalidCredentials},
		{"password with trailing space", auth.Request{Mechanism: "PLAIN", Username: "alice", Password: "S3cret "}, "", auth.InvalidCredentials},
		{"empty password", auth.Request{Mechanism: "PLAIN", Username: "alice"}, "", auth.InvalidCredentials},
		{"unknown user", auth.Request{Mechanism: "PLAIN", Username: "carol", Password: "S3cret"}, "", auth.InvalidCredentials},
		{"token", auth.Request{Mechanism: "XOAUTH2", Username: "alice", Password: "ya29.alice-token"}, "Alice", 0},
		{"token, user name in other case", auth.Request{Mechanism: "OAUTHBEARER", Username: "BOB@example.test", Password: "ya29.bob"}, "bob@example.test", 0},
		{"wrong token", auth.Request{Mechanism: "XOAUTH2", Username: "alice", Password: "ya29.bob"}, "", auth.InvalidToken},
		{"password is not a token", auth.Request{Mechanism: "OAUTHBEARER", Username: "alice", Password: "S3cret"}, "", auth.InvalidToken},
		{"token is not a password", auth.Request{Mechanism: "PLAIN", Username: "alice", Password: "ya29.alice-token"}, "", auth.InvalidCredentials},
		{"token of unknown user", auth.Request{Mechanism: "XOAUTH2", Username: "carol", Password: "ya29.alice-token"}, "", auth.InvalidToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := a.Authenticate(context.Background(), &tt.req)
			if got := auth.KindOf(err); got != tt.wantKind {
				t.Fatalf("Authenticate(%+v) = %v, want kind %v", tt.req, err, tt.wantKind)
			}
			if tt.wantKind != 0 {
				if u != nil {
					t.Errorf("Authenticate(%+v) = %v with a refusal, want no user", tt.req, u.Username)
				}
				return
			}
			if u == nil || u.Username != tt.wantUser {
				t.Errorf("Authenticate(%+v) = %v, want user %s", tt.req, u, tt.wantUser)
			}
		})
	}

	noTokens := &auth.Store{Store: newStore(t)}
	req := &auth.Request{Mechanism: "XOAUTH2", Username: "alice", Password: ""}
	if _, err := noTokens.Authenticate(context.Background(), req); auth.KindOf(err) != auth.InvalidToken {
		t.Errorf("Authenticate(%+v) with nil Tokens = %v, want InvalidToken (nil accepts none)", req, err)
	}
}

func TestChain(t *testing.T) {
	var order []string
	record := func(name string, refuse auth.Kind) auth.Middleware {
		return func(next auth.Authenticator) auth.Authenticator {
			return auth.Func(func(ctx context.Context, req *auth.Request) (*mailstore.User, error) {
				order = append(order, name)
				if refuse != 0 {
					return nil, &auth.Error{Kind: refuse, Detail: name}
				}
				return next.Authenticate(ctx, req)
			})
		}
	}
	base := auth.Func(func(context.Context, *auth.Request) (*mailstore.User, error) {
		order = append(order, "base")
		return &mailstore.User{Username: "alice"}, nil
	})
	tests := []struct {
		name      string
		mws       []auth.Middleware
		wantOrder []string
		wantKind  auth.Kind
	}{
		{"no middleware", nil, []string{"base"}, 0},
		{"first listed runs first", []auth.Middleware{record("lockout", 0), record("expired", 0)}, []string{"lockout", "expired", "base"}, 0},
		{"a refusal stops the chain", []auth.Middleware{record("lockout", auth.TemporarilyLocked), record("expired", 0)}, []string{"lockout"}, auth.TemporarilyLocked},
		{"a later refusal", []auth.Middleware{record("a", 0), record("b", auth.PasswordExpired), record("c", 0)}, []string{"a", "b"}, auth.PasswordExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			order = nil
			_, err := auth.Chain(base, tt.mws...).Authenticate(context.Background(), &auth.Request{})
			if !slices.Equal(order, tt.wantOrder) || auth.KindOf(err) != tt.wantKind {
				t.Errorf("Chain(...).Authenticate = order %v, %v, want %v, kind %v", order, err, tt.wantOrder, tt.wantKind)
			}
		})
	}
}

func TestErrorKinds(t *testing.T) {
	locked := &auth.Error{Kind: auth.TemporarilyLocked, Detail: "try again in 15 minutes"}
	wrapped := fmt.Errorf("imap login: %w", locked)
	tests := []struct {
		name string
		got  any
		want any
	}{
		{"Error with detail", locked.Error(), "account temporarily locked: try again in 15 minutes"},
		{"Error without detail", (&auth.Error{Kind: auth.InvalidToken}).Error(), "invalid token"},
		{"unknown kind", auth.Kind(99).String(), "kind(99)"},
		{"KindOf wrapped", auth.KindOf(wrapped), auth.TemporarilyLocked},
		{"KindOf other error", auth.KindOf(errors.New("disk full")), auth.Kind(0)},
		{"KindOf nil", auth.KindOf(nil), auth.Kind(0)},
		{"Is same kind, other detail", errors.Is(wrapped, &auth.Error{Kind: auth.TemporarilyLocked}), true},
		{"Is other kind", errors.Is(wrapped, &auth.Error{Kind: auth.AccountDisabled}), false},
		{"Is non-auth target", errors.Is(locked, context.Canceled), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("%s = %v, want %v", tt.name, tt.got, tt.want)
			}
		})
	}
	// Every kind has a name.
	for k := auth.InvalidCredentials; k <= auth.TemporaryFailure; k++ {
		if s := k.String(); s == fmt.Sprintf("kind(%d)", int(k)) {
			t.Errorf("Kind(%d).String() = %q, want a name", int(k), s)
		}
	}
}

func TestIsOAuth(t *testing.T) {
	for mech, want := range map[string]bool{"XOAUTH2": true, "OAUTHBEARER": true, "PLAIN": false, "LOGIN": false, "USER": false, "": false} {
		if got := (&auth.Request{Mechanism: mech}).IsOAuth(); got != want {
			t.Errorf("(&Request{Mechanism: %q}).IsOAuth() = %v, want %v", mech, got, want)
		}
	}
}
