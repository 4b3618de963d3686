//go:build e2e

package realservers

import (
	"crypto/rand"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"sort"
	"strings"
)

// Account is one mail account of the test domain.
type Account struct {
	// Email is the address and the login name, e.g. "alice@realmail.test".
	Email string
	// Password is the account's password.
	Password string
	// PassdbExtra are Dovecot passdb extra fields of the account
	// ("key=value" separated by spaces), e.g. "nologin=y".
	PassdbExtra string
}

// Local returns the part of Email before the @.
func (a Account) Local() string {
	local, _, _ := strings.Cut(a.Email, "@")
	return local
}

// Domain returns the part of Email after the @.
func (a Account) Domain() string {
	_, domain, _ := strings.Cut(a.Email, "@")
	return domain
}

// WritePasswdFile writes Dovecot's passwd-file for accounts
// (user:password:uid:gid:gecos:home:shell:extra_fields, with the
// userdb fields left to the static userdb). Passwords are stored as
// {SSHA512}: base64 of SHA-512(password || salt) followed by the salt.
func WritePasswdFile(path string, accounts []Account) error {
	var b strings.Builder
	for _, a := range accounts {
		if strings.ContainsAny(a.Email, ":\n") {
			return fmt.Errorf("passwd-file: invalid user %q", a.Email)
		}
		if strings.ContainsAny(a.PassdbExtra, ":\n") {
			return fmt.Errorf("passwd-file: invalid extra fields %q of %s", a.PassdbExtra, a.Email)
		}
		hash, err := ssha512(a.Password)
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s:%s::::::%s\n", a.Email, hash, a.PassdbExtra)
	}
	// Dovecot's auth process (user dovecot) reads the file.
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("passwd-file: %w", err)
	}
	return nil
}

func ssha512(password string) (string, error) {
	salt := make([]byte, 8)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	sum := sha512.Sum512(append([]byte(password), salt...))
	return "{SSHA512}" + base64.StdEncoding.EncodeToString(append(sum[:], salt...)), nil
}

// virtualMailboxes returns Postfix's virtual_mailbox_maps table: each
// address and its Maildir relative to virtual_mailbox_base; the trailing
// slash selects Maildir format (virtual(8)).
func virtualMailboxes(accounts []Account) string {
	lines := make([]string, 0, len(accounts))
	for _, a := range accounts {
		lines = append(lines, fmt.Sprintf("%s %s/%s/Maildir/", strings.ToLower(a.Email), a.Domain(), a.Local()))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n") + "\n"
}

// randomToken returns 12 random hex digits, for passwords that differ
// every run.
func randomToken() string {
	b := make([]byte, 6)
	rand.Read(b)
	return hex.EncodeToString(b)
}
