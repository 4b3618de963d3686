package maillab_test

import (
	"context"
	"fmt"
	"log"

	"github.com/testcontainers/testcontainers-go"

	"github.com/maillab/maillab/diagnose"
	"github.com/maillab/maillab/testcontainers/maillab"
)

// Start the expired-cert scenario (image built by scripts/build-image.sh)
// and diagnose it through the host-mapped ports. Not run by go test: it
// needs a Docker engine (e2e/containers runs the same against one).
func ExampleRun() {
	ctx := context.Background()
	ctr, err := maillab.Run(ctx, maillab.DefaultImage, maillab.WithScenario("expired-cert"))
	defer func() {
		if err := testcontainers.TerminateContainer(ctr); err != nil {
			log.Printf("terminate: %v", err)
		}
	}()
	if err != nil {
		log.Printf("start maillab: %v", err)
		return
	}
	s, err := ctr.Settings(ctx) // published ports, lab DNS, CA file on the host
	if err != nil {
		log.Printf("settings: %v", err)
		return
	}
	cfg, err := diagnose.FromSettings(s)
	if err != nil {
		log.Printf("settings: %v", err)
		return
	}
	report, err := diagnose.Run(ctx, cfg)
	if err != nil {
		log.Printf("diagnose: %v", err)
		return
	}
	fmt.Println(report.RootCause, "expected", s.ExpectedRootCause)
}

// A client of your own (here: the address to dial for IMAPS) and the CA
// it must trust.
func ExampleContainer_ServiceEndpoint() {
	ctx := context.Background()
	ctr, err := maillab.Run(ctx, maillab.DefaultImage)
	defer testcontainers.TerminateContainer(ctr)
	if err != nil {
		log.Printf("start maillab: %v", err)
		return
	}
	imaps, err := ctr.ServiceEndpoint(ctx, "imaps") // "127.0.0.1:49154"
	if err != nil {
		log.Printf("endpoint: %v", err)
		return
	}
	caPEM, err := ctr.CACertPEM(ctx) // add to tls.Config.RootCAs
	if err != nil {
		log.Printf("CA: %v", err)
		return
	}
	fmt.Println(imaps, len(caPEM) > 0)
}
