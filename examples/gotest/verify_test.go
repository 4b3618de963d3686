// Package gotest shows how another project verifies its own diagnose
// function against maillab's catalog inside go test: one parallel subtest
// per scenario, each with a lab of its own. Here "your" function is
// maillab's bundled diagnoser, so every subtest passes; replace it with
// yours.
package gotest

import (
	"context"
	"testing"
	"time"

	"github.com/maillab/maillab/settings"
	"github.com/maillab/maillab/verify"
)

// myDiagnose stands for the function under test: settings in, root-cause
// code out. Here it is maillab's bundled diagnoser (its probes and its
// account set-up checks) with short timeouts.
func myDiagnose(ctx context.Context, s *settings.Settings) (string, error) {
	res, err := verify.Bundled{Timeout: time.Second}.Diagnose(ctx, "", s)
	if err != nil {
		return "", err
	}
	return res.RootCause, nil
}

func TestMyDiagnoserAgainstCatalog(t *testing.T) {
	verify.Test(t, myDiagnose)
}
