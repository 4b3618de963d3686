package serve

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

var (
	docOnce   sync.Once
	docRouter routers.Router
	docModel  *openapi3.T
	docErr    error
)

// loadDoc parses and validates the embedded OpenAPI document.
func loadDoc(t *testing.T) (*openapi3.T, routers.Router) {
	t.Helper()
	docOnce.Do(func() {
		loader := openapi3.NewLoader()
		docModel, docErr = loader.LoadFromData(openAPIDoc)
		if docErr != nil {
			return
		}
		if docErr = docModel.Validate(context.Background()); docErr != nil {
			return
		}
		docRouter, docErr = gorillamux.NewRouter(docModel)
	})
	if docErr != nil {
		t.Fatalf("openapi.json: %v", docErr)
	}
	return docModel, docRouter
}

// validatingTransport checks each request and response of the tests
// against the document: an undocumented path, status, field or type fails
// the test that sent it.
type validatingTransport struct {
	t *testing.T
}

func (v validatingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	_, router := loadDoc(v.t)
	var reqBody []byte
	if req.Body != nil {
		reqBody, _ = io.ReadAll(req.Body)
		req.Body = io.NopCloser(bytes.NewReader(reqBody))
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	// Validate on a copy whose URL has no host: the document's server is "/".
	vr := req.Clone(context.Background())
	vr.URL.Scheme, vr.URL.Host, vr.Host = "", "", ""
	vr.Body = io.NopCloser(bytes.NewReader(reqBody))
	route, params, err := router.FindRoute(vr)
	if err != nil {
		if resp.StatusCode == http.StatusNotFound {
			return resp, nil // a test asking for what does not exist
		}
		v.t.Errorf("OpenAPI: %s %s is not documented: %v", req.Method, req.URL.Path, err)
		return resp, nil
	}
	opts := &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, MultiError: true}
	in := &openapi3filter.RequestValidationInput{Request: vr, PathParams: params, Route: route, Options: opts}
	// Requests the tests send on purpose broken (unknown fields, bad JSON,
	// over the size limit) are answered with 4xx; only check those the
	// server accepted.
	if resp.StatusCode < 400 {
		if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
			v.t.Errorf("OpenAPI: request %s %s: %v", req.Method, req.URL.Path, err)
		}
	}
	ct := resp.Header.Get("Content-Type")
	respBody, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(respBody))
	ropts := *opts
	if !strings.HasPrefix(ct, "application/json") {
		ropts.ExcludeResponseBody = true
	}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: vr, PathParams: params, Route: route, Options: &ropts},
		Status:                 resp.StatusCode,
		Header:                 resp.Header,
		Body:                   io.NopCloser(bytes.NewReader(respBody)),
		Options:                &ropts,
	}
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		v.t.Errorf("OpenAPI: response %d to %s %s: %v", resp.StatusCode, req.Method, req.URL.Path, err)
	}
	return resp, nil
}

// openAPIClient returns a client whose every exchange is checked against
// the document.
func openAPIClient(t *testing.T) *http.Client {
	return &http.Client{Transport: validatingTransport{t: t}}
}

// TestOpenAPIMatchesRoutes: every handler route is documented and every
// documented operation has a handler.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	doc, _ := loadDoc(t)
	s := &Server{}
	have := map[string]bool{}
	for _, rt := range s.routes() {
		key := rt.Method + " " + rt.Path
		have[key] = true
		item := doc.Paths.Value(rt.Path)
		if item == nil || item.GetOperation(rt.Method) == nil {
			t.Errorf("route %s is not in openapi.json", key)
		}
	}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			if !have[method+" "+path] {
				t.Errorf("openapi.json documents %s %s, which has no handler", method, path)
			}
		}
	}
}

// TestOpenAPIServed: the served document is the embedded one.
func TestOpenAPIServed(t *testing.T) {
	ts := newTestServer(t, Options{})
	data := ts.must(http.StatusOK, "GET", "/api/v1/openapi.json", nil, nil)
	if !bytes.Equal(data, openAPIDoc) {
		t.Errorf("served document differs from the embedded one")
	}
}
