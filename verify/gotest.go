package verify

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/maillab/maillab/lab"
	"github.com/maillab/maillab/scenarios"
	"github.com/maillab/maillab/settings"
)

// Test verifies a diagnose function of another project against the whole
// catalog inside go test, one parallel subtest per scenario:
//
//	func TestMyDiagnoser(t *testing.T) {
//		verify.Test(t, func(ctx context.Context, s *settings.Settings) (string, error) {
//			return mytool.Diagnose(ctx, s) // returns a root-cause code
//		})
//	}
//
// Each subtest starts the scenario's lab, passes the customer's settings
// and fails with "Diagnose(expired-cert) = X, want Y".
func Test(t *testing.T, diagnose func(ctx context.Context, s *settings.Settings) (string, error)) {
	t.Helper()
	cat, err := scenarios.Catalog()
	if err != nil {
		t.Fatal(err)
	}
	for _, sc := range cat {
		t.Run(sc.Name, func(t *testing.T) {
			t.Parallel()
			r, err := sc.Start(lab.Options{CloseGrace: 100 * time.Millisecond})
			if err != nil {
				t.Fatalf("start %s: %v", sc.Name, err)
			}
			defer r.Close()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := r.Customer.Write(filepath.Join(r.Lab.Dir, "customer-settings.json")); err != nil {
				t.Fatal(err)
			}
			got, err := diagnose(ctx, r.Customer)
			if err != nil {
				t.Fatalf("Diagnose(%s): %v", sc.Name, err)
			}
			if got != sc.RootCause {
				t.Errorf("Diagnose(%s) = %s, want %s\nstory: %s", sc.Name, got, sc.RootCause, sc.Story)
			}
		})
	}
}
