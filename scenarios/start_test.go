package scenarios_test

import (
	"testing"

	"github.com/maillab/maillab/lab"
	"github.com/maillab/maillab/scenarios"
	"github.com/maillab/maillab/settings"
)

// TestEveryScenarioStarts starts each catalog scenario and checks the
// customer's settings it hands out.
func TestEveryScenarioStarts(t *testing.T) {
	cat, err := scenarios.Catalog()
	if err != nil {
		t.Fatal(err)
	}
	for _, sc := range cat {
		t.Run(sc.Name, func(t *testing.T) {
			t.Parallel()
			r, err := sc.Start(lab.Options{})
			if err != nil {
				t.Fatalf("Start(%s): %v", sc.Name, err)
			}
			defer r.Close()
			c := r.Customer
			if c.ExpectedRootCause != sc.RootCause || c.Scenario != sc.Name {
				t.Errorf("customer settings carry %q/%q, want %q/%q", c.ExpectedRootCause, c.Scenario, sc.RootCause, sc.Name)
			}
			if err := c.Validate(); err != nil {
				t.Errorf("customer settings invalid: %v", err)
			}
			data, err := c.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := settings.Parse("customer.json", data); err != nil {
				t.Errorf("customer settings do not parse back: %v", err)
			}
		})
	}
}
