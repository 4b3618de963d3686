// Package serve is maillab's control plane: one long-running process that
// hosts any number of labs, each a full provider on its own ports, created,
// steered and destroyed over a JSON HTTP API (/api/v1), with the labs
// wanted kept in an embedded SQLite database so that a restart brings them
// back with the same ids, ports, CA, accounts and mail.
//
//	srv, err := serve.New(serve.Options{DataDir: dir})
//	if err != nil { ... }
//	defer srv.Close()
//	http.ListenAndServe("127.0.0.1:8025", srv.Handler())
package serve

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/maillab/maillab/scenarios"
)

// Options configures New. The zero value is not usable: DataDir is
// required.
type Options struct {
	// DataDir holds the database, the token and one directory per lab
	// (CA, lab.log, Maildir).
	DataDir string
	// MaxLabs bounds the labs running at once; 0 means 500.
	MaxLabs int
	// LabAddress is the IP every lab binds; default 127.0.0.1.
	LabAddress string
	// AllowNonLoopback must be set for a LabAddress that is not loopback.
	AllowNonLoopback bool
	// Advertise is the address labs write into settings (lab.Options).
	Advertise string
	// MaxBody bounds a request body; 0 means 1 MiB.
	MaxBody int64
	// EventBuffer is each SSE subscriber's buffer (events beyond it are
	// dropped and counted); 0 means 1024.
	EventBuffer int
	// KeepEvents is how many recent events each lab keeps for
	// /transcript and SSE resume; 0 means 10000.
	KeepEvents int
	// CloseGrace and HandshakeTimeout are passed to each lab; 0 means
	// 500ms and the lab default.
	CloseGrace       time.Duration
	HandshakeTimeout time.Duration
	// DiagnoseTimeout bounds a diagnose call; 0 means 2 minutes.
	DiagnoseTimeout time.Duration
	// Logger receives the server's diagnostics; nil discards them.
	Logger *slog.Logger
}

// Server hosts the labs. Create it with New; Handler serves the API.
type Server struct {
	opts    Options
	logger  *slog.Logger
	store   *Store
	token   string
	metrics *metrics

	mu     sync.Mutex
	labs   map[string]*managedLab
	closed bool

	eventsDropped atomic.Uint64

	// cls holds the classes of trainees (classes.go).
	cls classState
}

// New opens the data directory (creating it), the database and the token,
// and starts every lab the database lists. A lab that cannot come back is
// logged and skipped, never fatal: its record stays for the next start.
func New(opts Options) (*Server, error) {
	if opts.DataDir == "" {
		return nil, errors.New("serve: no data directory")
	}
	if opts.MaxLabs == 0 {
		opts.MaxLabs = 500
	}
	if opts.LabAddress == "" {
		opts.LabAddress = "127.0.0.1"
	}
	if opts.MaxBody == 0 {
		opts.MaxBody = 1 << 20
	}
	if opts.EventBuffer == 0 {
		opts.EventBuffer = 1024
	}
	if opts.KeepEvents == 0 {
		opts.KeepEvents = 10000
	}
	if opts.CloseGrace == 0 {
		opts.CloseGrace = 500 * time.Millisecond
	}
	if opts.DiagnoseTimeout == 0 {
		opts.DiagnoseTimeout = 2 * time.Minute
	}
	s := &Server{opts: opts, logger: opts.Logger, labs: map[string]*managedLab{}}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(filepath.Join(opts.DataDir, "labs"), 0o700); err != nil {
		return nil, fmt.Errorf("data directory %s: %w", opts.DataDir, err)
	}
	tok, err := loadOrMakeToken(filepath.Join(opts.DataDir, "token"))
	if err != nil {
		return nil, err
	}
	s.token = tok
	s.metrics = newMetrics(s)
	if s.store, err = OpenStore(opts.DataDir); err != nil {
		return nil, err
	}
	if err := s.restore(); err != nil {
		s.store.Close()
		return nil, err
	}
	if err := s.restoreClasses(); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Token returns the access token (also in DataDir/token).
func (s *Server) Token() string { return s.token }

// Store returns the database.
func (s *Server) Store() *Store { return s.store }

// loadOrMakeToken reads the token file, or writes a new random token with
// mode 0600, so a restart keeps the printed URL valid.
func loadOrMakeToken(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err == nil {
		if tok := strings.TrimSpace(string(data)); len(tok) >= 16 {
			return tok, nil
		}
		return "", fmt.Errorf("token file %s: too short (delete it to make a new token)", path)
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("token file: %w", err)
	}
	b := make([]byte, 24)
	rand.Read(b)
	tok := hex.EncodeToString(b)
	if err := os.WriteFile(path, []byte(tok+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("token file: %w", err)
	}
	return tok, nil
}

// restore starts the labs of the database with their ids, ports and CA.
func (s *Server) restore() error {
	recs, err := s.store.labs(context.Background())
	if err != nil {
		return err
	}
	for _, rec := range recs {
		sc, err := scenarioOf(rec)
		if err != nil {
			s.logger.Warn("lab not restored", "lab", rec.ID, "err", err)
			continue
		}
		m, err := s.newManaged(rec, sc)
		if err != nil {
			s.logger.Warn("lab not restored", "lab", rec.ID, "err", err)
			continue
		}
		m.mu.Lock()
		_, err = s.rebuildLocked(m, true)
		m.mu.Unlock()
		if err != nil {
			m.hub.close()
			s.logger.Warn("lab not restored", "lab", rec.ID, "err", err)
			continue
		}
		s.labs[rec.ID] = m
		s.metrics.labs.Inc()
	}
	return nil
}

func scenarioOf(rec *labRecord) (*scenarios.Scenario, error) {
	switch {
	case rec.ScenarioYAML != "":
		return scenarios.Parse("scenario_yaml", []byte(rec.ScenarioYAML))
	case rec.Scenario != "":
		return scenarios.Lookup(rec.Scenario)
	}
	return nil, nil
}

func (s *Server) newManaged(rec *labRecord, sc *scenarios.Scenario) (*managedLab, error) {
	dir := filepath.Join(s.opts.DataDir, "labs", rec.ID)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("lab directory: %w", err)
	}
	ca, err := loadOrMakeCA(dir)
	if err != nil {
		return nil, err
	}
	m := &managedLab{rec: rec, sc: sc, ca: ca, dir: dir}
	m.hub = newHub(s.opts.KeepEvents, &s.eventsDropped, func(ev Event) {
		s.metrics.observe(ev)
		s.labEvent(m, ev)
	})
	return m, nil
}

// rebuildLocked starts (first) or restarts the lab; m.mu is held.
func (s *Server) rebuildLocked(m *managedLab, first bool) (bool, error) {
	if first {
		want := m.rec.Ports
		if len(want) == 0 {
			want = nil
		}
		err := s.start(m, want)
		changed := false
		if err != nil && want != nil && errors.Is(err, errAddrInUse) {
			err = s.start(m, nil)
			changed = err == nil
		}
		if err != nil {
			return false, err
		}
		m.hub.publish(Event{Kind: EventLab, Text: "lab started"})
		return changed, s.store.updateLab(context.Background(), m.rec)
	}
	return s.rebuild(m)
}

// lab returns the lab with id.
func (s *Server) lab(id string) (*managedLab, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.labs[id]
	return m, ok
}

// list returns the labs sorted by creation.
func (s *Server) list() []*managedLab {
	s.mu.Lock()
	out := make([]*managedLab, 0, len(s.labs))
	for _, m := range s.labs {
		out = append(out, m)
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if !out[i].rec.Created.Equal(out[j].rec.Created) {
			return out[i].rec.Created.Before(out[j].rec.Created)
		}
		return out[i].rec.ID < out[j].rec.ID
	})
	return out
}

// Close stops every lab (they stay in the database for the next start)
// and closes the database.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	labs := s.labs
	s.labs = map[string]*managedLab{}
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, m := range labs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.mu.Lock()
			m.stop()
			m.deleted = true
			m.mu.Unlock()
			m.hub.close()
		}()
	}
	wg.Wait()
	s.closeClasses()
	return s.store.Close()
}

// Labs returns how many labs run.
func (s *Server) Labs() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.labs)
}
