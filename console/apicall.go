package console

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// apiError is an error response of the API: its status and its
// {"error","field"} body.
type apiError struct {
	Status int
	Msg    string `json:"error"`
	Field  string `json:"field"`
}

func (e *apiError) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%s (field %s)", e.Msg, e.Field)
	}
	return e.Msg
}

// recorder is the ResponseWriter of an in-process API call.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.body.Write(p)
}
func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
}

// auth says whether an API call carries the admin token. Trainee pages
// call the trainee API without it: the key in the path is the credential,
// so a trainee page can never show what the key does not grant.
type auth bool

const (
	asAdmin   auth = true
	asTrainee auth = false
)

// call runs one API request in-process and returns the status and body.
// A status of 400 and over is returned as *apiError.
func (c *Console) call(ctx context.Context, a auth, method, path string, body any) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("encode %s %s: %w", method, path, err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, path, rd)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if rd == nil {
		req.Body = http.NoBody // as a server's request: never nil
	}
	req.RemoteAddr = "127.0.0.1:0"
	req.Host = "console.internal"
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if a == asAdmin {
		req.Header.Set("Authorization", "Bearer "+c.opts.Token)
	}
	rec := &recorder{header: http.Header{}}
	c.api.ServeHTTP(rec, req)
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	if rec.status >= 400 {
		e := &apiError{Status: rec.status}
		if json.Unmarshal(rec.body.Bytes(), e) != nil || e.Msg == "" {
			e.Msg = strings.TrimSpace(rec.body.String())
			if e.Msg == "" {
				e.Msg = http.StatusText(rec.status)
			}
		}
		return nil, e
	}
	return rec.body.Bytes(), nil
}

// getJSON calls GET path and decodes the body into v.
func (c *Console) getJSON(ctx context.Context, a auth, path string, v any) error {
	return c.doJSON(ctx, a, http.MethodGet, path, nil, v)
}

func (c *Console) doJSON(ctx context.Context, a auth, method, path string, body, v any) error {
	data, err := c.call(ctx, a, method, path, body)
	if err != nil {
		return err
	}
	if v == nil || len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%s %s: decode: %w", method, path, err)
	}
	return nil
}
