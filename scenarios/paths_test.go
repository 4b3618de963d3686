package scenarios_test

import (
	"strings"
	"testing"

	"github.com/maillab/maillab/scenarios"
)

// TestPaths: which catalog scenarios the matrix runs on several incoming
// paths, and on which.
func TestPaths(t *testing.T) {
	tests := []struct {
		name string
		want string
	}{
		{"expired-cert", "imap,imaps,pop3,pop3s"},   // TLS fault on every TLS service
		{"wrong-password", "imap,imaps,pop3,pop3s"}, // account fault: every path
		{"starttls-stripped", "imap,pop3"},          // STARTTLS paths only
		{"port25-blocked", ""},                      // fault on smtp only
		{"pop3-on-imap-port", ""},                   // the incoming settings are the failure
		{"plain-on-993", ""},                        // idem
		{"relay-denied", ""},                        // settings only
		{"expired-cert-wrong-password", "imap,imaps,pop3,pop3s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc, err := scenarios.Lookup(tt.name)
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(sc.Paths(), ","); got != tt.want {
				t.Errorf("Paths() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestOnPath(t *testing.T) {
	sc, err := scenarios.Lookup("starttls-stripped") // services [submission, imap]
	if err != nil {
		t.Fatal(err)
	}
	p := sc.OnPath("pop3")
	if got := strings.Join(p.Customer.Services, ","); got != "submission,pop3" {
		t.Errorf("OnPath(pop3) services = %s, want submission,pop3", got)
	}
	if got := strings.Join(sc.Customer.Services, ","); got != "submission,imap" {
		t.Errorf("OnPath changed the scenario: %s", got)
	}
	def, err := scenarios.Lookup("expired-cert") // default services
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(def.OnPath("pop3s").Customer.Services, ","); got != "submission,pop3s" {
		t.Errorf("OnPath(pop3s) of the default services = %s", got)
	}
}
