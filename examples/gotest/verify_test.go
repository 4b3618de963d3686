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

	"github.com/maillab/maillab/diagnose"
	"github.com/maillab/maillab/settings"
	"github.com/maillab/maillab/verify"
)

// myDiagnose stands for the function under test: settings in, root-cause
// code out.
func myDiagnose(ctx context.Context, s *settings.Settings) (string, error) {
	cfg, err := diagnose.FromSettings(s)
	if err != nil {
		return "", err
	}
	cfg.ConnectTimeout, cfg.ReplyTimeout = time.Second, time.Second
	rep, err := diagnose.Run(ctx, cfg)
	if err != nil {
		return "", err
	}
	return string(rep.RootCause), nil
}

func TestMyDiagnoserAgainstCatalog(t *testing.T) {
	verify.Test(t, myDiagnose)
}
