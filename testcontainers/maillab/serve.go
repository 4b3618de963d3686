package maillab

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"

	"github.com/maillab/maillab/settings"
)

// ServeContainer is a running `maillab serve`: one container hosting any
// number of labs, created and deleted through its API (docs/serve.md).
// It runs on the host's network, as the compose serve service does: labs
// take their ports at run time, which Docker cannot publish after a
// container started, and dns-poisoned and imap-generic-host need a second
// loopback address of their own. So it needs a Linux Docker engine on the
// machine that runs the test (not Docker Desktop's VM).
type ServeContainer struct {
	testcontainers.Container
	*ServeClient
}

// loopback is where RunServe listens.
var loopback = netip.MustParseAddr("127.0.0.1")

// ContainerServeDataDir is serve's data directory inside the container.
const ContainerServeDataDir = ContainerLabDir + "/serve"

// RunServe starts `maillab serve` from img on 127.0.0.1 of the host's
// network, on a free port, and waits until its API answers.
func RunServe(ctx context.Context, img string, opts ...testcontainers.ContainerCustomizer) (*ServeContainer, error) {
	port, err := freeHostPort(loopback)
	if err != nil {
		return nil, err
	}
	listen := fmt.Sprintf("127.0.0.1:%d", port)
	req := testcontainers.GenericContainerRequest{
		ContainerRequest: testcontainers.ContainerRequest{
			Image: img,
			Cmd:   []string{"serve", "--listen", listen, "--data", ContainerServeDataDir},
			// The printed URL carries the token; the API answers then.
			WaitingFor: wait.ForLog("?token=").WithStartupTimeout(30 * time.Second),
		},
		Started: true,
	}
	customizers := append([]testcontainers.ContainerCustomizer{
		testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) { hc.NetworkMode = "host" }),
	}, opts...)
	for _, c := range customizers {
		if err := c.Customize(&req); err != nil {
			return nil, fmt.Errorf("maillab customize: %w", err)
		}
	}
	ctr, err := testcontainers.GenericContainer(ctx, req)
	var sc *ServeContainer
	if ctr != nil {
		sc = &ServeContainer{Container: ctr}
	}
	if err != nil {
		return sc, fmt.Errorf("maillab serve container: %w", err)
	}
	rc, err := ctr.CopyFileFromContainer(ctx, ContainerServeDataDir+"/token")
	if err != nil {
		return sc, fmt.Errorf("maillab serve token: %w", err)
	}
	defer rc.Close()
	tok, err := io.ReadAll(rc)
	if err != nil {
		return sc, fmt.Errorf("maillab serve token: %w", err)
	}
	sc.ServeClient = NewServeClient("http://"+listen, strings.TrimSpace(string(tok)))
	return sc, nil
}

// ServeClient calls the API of a `maillab serve` (in a container or not).
type ServeClient struct {
	// URL is the server's base URL, e.g. http://127.0.0.1:8025.
	URL   string
	token string
	http  *http.Client
	dir   string // host copies of the labs' CA files
}

// NewServeClient returns a client for the serve at url with the token.
func NewServeClient(url, token string) *ServeClient {
	return &ServeClient{URL: strings.TrimSuffix(url, "/"), token: token, http: &http.Client{Timeout: 2 * time.Minute}}
}

// APIError is an error answer of the API.
type APIError struct {
	Status int
	Msg    string `json:"error"`
	Field  string `json:"field"`
}

func (e *APIError) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("maillab serve: %d %s (field %s)", e.Status, e.Msg, e.Field)
	}
	return fmt.Sprintf("maillab serve: %d %s", e.Status, e.Msg)
}

// call sends a request and decodes a JSON answer into out (if not nil).
func (c *ServeClient) call(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.URL+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("maillab serve %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("maillab serve %s %s: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		ae := &APIError{Status: resp.StatusCode}
		if json.Unmarshal(data, ae) != nil {
			ae.Msg = strings.TrimSpace(string(data))
		}
		return ae
	}
	if out == nil {
		return nil
	}
	if b, ok := out.(*[]byte); ok {
		*b = data
		return nil
	}
	return json.Unmarshal(data, out)
}

// ServeLab is a lab of a serve.
type ServeLab struct {
	ID                string         `json:"id"`
	Scenario          string         `json:"scenario"`
	ExpectedRootCause string         `json:"expected_root_cause"`
	Ports             map[string]int `json:"ports"`
	// Settings are the customer's settings, with CAFile a copy of the
	// lab CA on this machine.
	Settings *settings.Settings `json:"settings"`
	// Lab are the lab's correct settings (every service and account).
	Lab *settings.Settings `json:"lab"`
}

// CreateLab starts a catalog scenario ("" for a healthy lab).
func (c *ServeClient) CreateLab(ctx context.Context, scenario string) (*ServeLab, error) {
	body := map[string]string{}
	if scenario != "" {
		body["scenario"] = scenario
	}
	return c.createLab(ctx, body)
}

// CreateCustomLab starts a custom scenario (the YAML of a scenario file).
func (c *ServeClient) CreateCustomLab(ctx context.Context, scenarioYAML string) (*ServeLab, error) {
	return c.createLab(ctx, map[string]string{"scenario_yaml": scenarioYAML})
}

func (c *ServeClient) createLab(ctx context.Context, body any) (*ServeLab, error) {
	var l ServeLab
	if err := c.call(ctx, "POST", "/api/v1/labs", body, &l); err != nil {
		return nil, err
	}
	if err := c.localCA(ctx, &l); err != nil {
		return &l, err
	}
	return &l, nil
}

// localCA fetches the lab CA and points both settings at a copy on this
// machine (the settings name the file inside serve's data directory).
func (c *ServeClient) localCA(ctx context.Context, l *ServeLab) error {
	var pem []byte
	if err := c.call(ctx, "GET", "/api/v1/labs/"+l.ID+"/ca.pem", nil, &pem); err != nil {
		return err
	}
	if c.dir == "" {
		dir, err := os.MkdirTemp("", "maillab-serve-client-*")
		if err != nil {
			return err
		}
		c.dir = dir
	}
	file := filepath.Join(c.dir, l.ID+"-ca.pem")
	if err := os.WriteFile(file, pem, 0o644); err != nil {
		return err
	}
	for _, s := range []*settings.Settings{l.Settings, l.Lab} {
		if s != nil {
			s.CAFile = file
		}
	}
	return nil
}

// Labs lists the running labs.
func (c *ServeClient) Labs(ctx context.Context) ([]ServeLab, error) {
	var out []ServeLab
	return out, c.call(ctx, "GET", "/api/v1/labs", nil, &out)
}

// DeleteLab stops a lab; its ports are free when it returns.
func (c *ServeClient) DeleteLab(ctx context.Context, id string) error {
	return c.call(ctx, "DELETE", "/api/v1/labs/"+id, nil, nil)
}

// FaultChange is the answer to AddFault and RemoveFault.
type FaultChange struct {
	Fault *struct {
		ID   string `json:"id"`
		Type string `json:"type"`
	} `json:"fault"`
	Restarted bool     `json:"restarted"`
	Services  []string `json:"services"`
}

// AddFault adds a fault to a running lab: typ as in `maillab scenario
// faults`, params its own parameters (nil for the defaults). The lab
// restarts on the same ports.
func (c *ServeClient) AddFault(ctx context.Context, id, typ string, params map[string]any) (*FaultChange, error) {
	var out FaultChange
	body := map[string]any{"type": typ}
	if params != nil {
		body["params"] = params
	}
	return &out, c.call(ctx, "POST", "/api/v1/labs/"+id+"/faults", body, &out)
}

// RemoveFault removes a fault by its id ("f1", ...).
func (c *ServeClient) RemoveFault(ctx context.Context, id, fid string) (*FaultChange, error) {
	var out FaultChange
	return &out, c.call(ctx, "DELETE", "/api/v1/labs/"+id+"/faults/"+fid, nil, &out)
}

// Diagnose runs the bundled diagnoser on the lab's customer settings and
// returns its JSON report.
func (c *ServeClient) Diagnose(ctx context.Context, id string) (json.RawMessage, error) {
	var out []byte
	return out, c.call(ctx, "POST", "/api/v1/labs/"+id+"/diagnose", map[string]any{}, &out)
}

// Close removes the client's CA copies.
func (c *ServeClient) Close() error {
	if c.dir == "" {
		return nil
	}
	return os.RemoveAll(c.dir)
}

// Terminate stops the container and removes the client's files.
func (c *ServeContainer) Terminate(ctx context.Context, opts ...testcontainers.TerminateOption) error {
	if c.ServeClient != nil {
		c.ServeClient.Close()
	}
	return c.Container.Terminate(ctx, opts...)
}
