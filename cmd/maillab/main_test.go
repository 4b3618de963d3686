package main

import (
	"os"
	"testing"
)

// TestMain lets tests run this binary as the maillab command: with
// MAILLAB_TEST_MAIN=1 the test binary is maillab.
func TestMain(m *testing.M) {
	if os.Getenv("MAILLAB_TEST_MAIN") == "1" {
		os.Exit(run(os.Args, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}
