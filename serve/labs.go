package serve

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/maillab/maillab/faults"
	"github.com/maillab/maillab/lab"
	"github.com/maillab/maillab/scenarios"
	"github.com/maillab/maillab/servers/mailstore"
	"github.com/maillab/maillab/servers/pki"
	"github.com/maillab/maillab/settings"
)

// FaultSpec is a fault of a running lab, as the API shows and takes it:
// the fault type, the shared knobs of `maillab scenario faults` and the
// fault's own parameters.
type FaultSpec struct {
	// ID names the fault within its lab ("f1", "f2", ...).
	ID   string `json:"id"`
	Type string `json:"type"`
	// Services limits the fault to these services; empty means every
	// service the fault can act on.
	Services         []string `json:"services,omitempty"`
	AfterConnections int      `json:"after_connections,omitempty"`
	OneIn            int      `json:"one_in,omitempty"`
	// Params are the fault's own parameters (defaults for the rest).
	Params map[string]any `json:"params,omitempty"`
	// Origin is "scenario" for a fault the scenario applied, "api" for one
	// added at runtime.
	Origin string `json:"origin,omitempty"`
}

// build validates the spec and returns the fault.
func (f FaultSpec) build() (lab.Fault, error) {
	spec := faults.Spec{Type: f.Type, Services: f.Services, AfterConnections: f.AfterConnections, OneIn: f.OneIn, File: "request"}
	if len(f.Params) > 0 {
		// JSON is YAML: the registry decodes parameters from a YAML node,
		// exactly as it does for a scenario file.
		data, err := json.Marshal(f.Params)
		if err != nil {
			return nil, &apiError{Status: 400, Field: "params", Msg: err.Error()}
		}
		var doc yaml.Node
		if err := yaml.Unmarshal(data, &doc); err != nil || len(doc.Content) != 1 {
			return nil, &apiError{Status: 400, Field: "params", Msg: "params must be an object"}
		}
		spec.Params = doc.Content[0]
	}
	return faults.New(spec)
}

// specsFromScenario turns a scenario's faults into API specs.
func specsFromScenario(sc *scenarios.Scenario) ([]FaultSpec, error) {
	var out []FaultSpec
	for _, s := range sc.Faults {
		f := FaultSpec{Type: s.Type, Services: s.Services, AfterConnections: s.AfterConnections, OneIn: s.OneIn, Origin: "scenario"}
		if s.Params != nil {
			if err := s.Params.Decode(&f.Params); err != nil {
				return nil, fmt.Errorf("scenario %s: %s: %w", sc.Name, s.Field, err)
			}
		}
		out = append(out, f)
	}
	return out, nil
}

// managedLab is one lab of the server: its record, its events and the
// running lab, which faults added at runtime rebuild.
type managedLab struct {
	rec *labRecord
	sc  *scenarios.Scenario // nil for a healthy lab
	ca  *pki.CA
	dir string
	hub *hub
	// clients tells the lab's real clients from its own (classes.go).
	clients labClients

	mu       sync.Mutex // guards what follows and serialises rebuilds
	l        *lab.Lab
	customer *settings.Settings
	started  time.Time
	unwatch  []func()
	deleted  bool
}

// current returns the running lab and the customer's settings.
func (m *managedLab) current() (*lab.Lab, *settings.Settings, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.l, m.customer, !m.deleted && m.l != nil
}

// newID returns 8 random hex digits.
func newID() string {
	b := make([]byte, 4)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// loadOrMakeCA reads the lab's CA from dir, or makes and saves one.
func loadOrMakeCA(dir string) (*pki.CA, error) {
	keyFile, certFile := filepath.Join(dir, "ca-key.pem"), filepath.Join(dir, "ca.pem")
	keyPEM, kerr := os.ReadFile(keyFile)
	certPEM, cerr := os.ReadFile(certFile)
	if kerr == nil && cerr == nil {
		kb, _ := pem.Decode(keyPEM)
		cb, _ := pem.Decode(certPEM)
		if kb == nil || cb == nil {
			return nil, fmt.Errorf("%s: not PEM", dir)
		}
		key, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", keyFile, err)
		}
		cert, err := x509.ParseCertificate(cb.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", certFile, err)
		}
		signer, ok := key.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("%s: not a signing key", keyFile)
		}
		ca := &pki.CA{Cert: cert, Key: signer}
		return ca, nil
	}
	// Same dates as a fresh lab's CA (lab.makeCA): years older than the
	// certificates it signs, so an "expired" leaf is plausible.
	now := time.Now()
	ca, err := pki.NewCA("maillab "+lab.DefaultDomain+" lab CA", pki.CAOptions{
		Organization: "maillab", NotBefore: now.AddDate(-3, 0, 0), NotAfter: now.AddDate(10, 0, 0),
	})
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(ca.Key)
	if err != nil {
		return nil, fmt.Errorf("save lab CA: %w", err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return nil, fmt.Errorf("save lab CA: %w", err)
	}
	if err := pki.WritePEM(certFile, ca.Cert); err != nil {
		return nil, fmt.Errorf("save lab CA: %w", err)
	}
	return ca, nil
}

// start builds and starts the lab with the record's faults on the given
// ports (nil: free ports). Call with m.mu held.
func (s *Server) start(m *managedLab, ports map[string]int) error {
	// A fault's simulated client (the lockout fault's stale phone) logs
	// in while the lab starts: not a trainee's client.
	m.clients.gen.Add(1)
	m.clients.starting.Store(true)
	defer m.clients.starting.Store(false)
	var fs []lab.Fault
	for i, spec := range m.rec.Faults {
		f, err := spec.build()
		if err != nil {
			return fmt.Errorf("fault %s: %w", m.rec.Faults[i].ID, err)
		}
		fs = append(fs, f)
	}
	if m.sc != nil {
		// The scenario without its faults: only the hook that turns the
		// lab's settings into the customer's (the faults are the record's,
		// which the API may have changed).
		customerOnly := *m.sc
		customerOnly.Faults = nil
		cf, err := customerOnly.LabFaults()
		if err != nil {
			return err
		}
		fs = append(fs, cf...)
	}
	opts := lab.Options{
		Dir:              m.dir,
		StoreDir:         filepath.Join(m.dir, "mail"),
		Address:          s.opts.LabAddress,
		AllowNonLoopback: s.opts.AllowNonLoopback,
		Advertise:        s.opts.Advertise,
		Ports:            ports,
		CA:               m.ca,
		Transcript:       m.hub,
		Logger:           s.logger.With("lab", m.rec.ID),
		CloseGrace:       s.opts.CloseGrace,
		HandshakeTimeout: s.opts.HandshakeTimeout,
	}
	l, err := lab.Start(opts, fs...)
	if err != nil {
		return err
	}
	cs, err := l.CustomerSettings()
	if err != nil {
		l.Close()
		return err
	}
	m.l, m.customer, m.started = l, cs, time.Now()
	m.rec.Ports = labPorts(l)
	for _, u := range l.Store.Users() {
		mb, err := u.Mailbox(mailstore.Inbox)
		if err != nil {
			continue
		}
		email := u.Email
		m.unwatch = append(m.unwatch, mb.Watch(func(ev mailstore.Event) {
			if ev.Kind == mailstore.EventAppended {
				s.metrics.delivered.Inc()
				m.hub.publish(Event{Kind: EventDelivery, Text: fmt.Sprintf("message UID %d stored in %s's INBOX", ev.UID, email)})
			}
		}))
	}
	return nil
}

// stop closes the running lab (its ports are free when it returns). Call
// with m.mu held.
func (m *managedLab) stop() error {
	for _, f := range m.unwatch {
		f()
	}
	m.unwatch = nil
	if m.l == nil {
		return nil
	}
	err := m.l.Close()
	m.l = nil
	return err
}

// labPorts lists the primary provider's ports, the DNS port and the
// set-up web ports: everything a rebuild or restart must bind again.
func labPorts(l *lab.Lab) map[string]int {
	ports := map[string]int{}
	for name, svc := range l.Primary.Services {
		ports[name] = svc.Port
	}
	if _, p, err := net.SplitHostPort(l.DNSAddr); err == nil {
		ports["dns"], _ = strconv.Atoi(p)
	}
	if s := l.Primary.Setup; s != nil {
		// The account set-up web ports (autoconfig, Autodiscover).
		ports["http"], ports["https"] = s.HTTPPort, s.HTTPSPort
	}
	return ports
}

// errAddrInUse is how a bind error says the port is taken.
var errAddrInUse = syscall.EADDRINUSE

// restartedServices names every service a rebuild restarts: all of them.
func restartedServices(ports map[string]int) []string {
	var out []string
	for name := range ports {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

// rebuild restarts the lab with the record's faults on the same ports and
// CA, with the same accounts and mail. If another program took one of the
// ports meanwhile, the lab comes back on free ports (portsChanged).
func (s *Server) rebuild(m *managedLab) (portsChanged bool, err error) {
	want := m.rec.Ports
	if err := m.stop(); err != nil {
		s.logger.Warn("close lab", "lab", m.rec.ID, "err", err)
	}
	err = s.start(m, want)
	if err != nil && errors.Is(err, errAddrInUse) {
		err = s.start(m, nil)
		portsChanged = err == nil
	}
	if err != nil {
		return false, err
	}
	m.hub.publish(Event{Kind: EventLab, Text: "lab restarted with faults " + faultList(m.rec.Faults)})
	return portsChanged, s.store.updateLab(context.Background(), m.rec)
}

func faultList(fs []FaultSpec) string {
	if len(fs) == 0 {
		return "(none)"
	}
	out := ""
	for i, f := range fs {
		if i > 0 {
			out += ", "
		}
		out += f.ID + ":" + f.Type
	}
	return out
}
