package serve

import (
	_ "embed"
	"net/http"
)

// openAPIDoc is the OpenAPI 3 description of the API; tests check every
// request and response of the test suite against it.
//
//go:embed openapi.json
var openAPIDoc []byte

func (s *Server) openAPI(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Content-Type", "application/json")
	w.Write(openAPIDoc)
	return nil
}
