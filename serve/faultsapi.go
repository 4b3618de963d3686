package serve

import (
	"context"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/maillab/maillab/faults"
)

// faultTypeJSON describes a fault type (what `maillab scenario faults`
// prints).
type faultTypeJSON struct {
	Name    string         `json:"name"`
	Summary string         `json:"summary"`
	Layer   string         `json:"layer"`
	Knobs   []string       `json:"knobs"`
	Params  map[string]any `json:"params,omitempty"`
}

func (s *Server) listFaultTypes(w http.ResponseWriter, r *http.Request) error {
	out := []faultTypeJSON{}
	for _, d := range faults.Definitions() {
		out = append(out, faultTypeOf(d))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func faultTypeOf(d *faults.Definition) faultTypeJSON {
	ft := faultTypeJSON{Name: d.Name, Summary: d.Summary, Layer: string(d.Layer), Knobs: []string{}}
	if !d.NoServices {
		ft.Knobs = append(ft.Knobs, "services")
	}
	if d.PerConnection {
		ft.Knobs = append(ft.Knobs, "after_connections", "one_in")
	}
	if d.Params != nil {
		// The defaults, by their YAML names (the names a request uses).
		p := d.Params()
		if data, err := yaml.Marshal(p); err == nil {
			var m map[string]any
			if yaml.Unmarshal(data, &m) == nil {
				ft.Params = m
			}
		}
		// Durations marshal as nanoseconds; show them as requests write them.
		v := reflect.ValueOf(p).Elem()
		durations(v, ft.Params)
	}
	return ft
}

// durations rewrites time.Duration defaults as "10s".
func durations(v reflect.Value, m map[string]any) {
	for i := 0; i < v.NumField(); i++ {
		f := v.Type().Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if opts == "inline" {
			durations(v.Field(i), m)
			continue
		}
		if f.Type.String() == "time.Duration" && name != "" {
			m[name] = v.Field(i).Interface().(interface{ String() string }).String()
		}
	}
}

func (s *Server) listFaults(w http.ResponseWriter, r *http.Request) error {
	m, err := s.labOf(r)
	if err != nil {
		return err
	}
	m.mu.Lock()
	out := slices.Clone(m.rec.Faults)
	m.mu.Unlock()
	if out == nil {
		out = []FaultSpec{}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// faultChange is the answer to adding or removing a fault: no fault can
// change the sockets, certificates and handlers of a served lab in place,
// so the lab restarts on the same ports with the same CA, accounts and
// mail, and says so.
type faultChange struct {
	Fault     *FaultSpec  `json:"fault,omitempty"`
	Faults    []FaultSpec `json:"faults"`
	Restarted bool        `json:"restarted"`
	// Services lists the services that restarted (all of them, and dns).
	Services []string `json:"services"`
	// PortsChanged is true when a port was taken meanwhile and the lab
	// came back on free ports (read settings.json again).
	PortsChanged bool `json:"ports_changed"`
}

func (s *Server) addFault(w http.ResponseWriter, r *http.Request) error {
	m, err := s.labOf(r)
	if err != nil {
		return err
	}
	var spec FaultSpec
	if err := decodeBody(r, &spec); err != nil {
		return err
	}
	if spec.ID != "" || spec.Origin != "" {
		field := "id"
		if spec.ID == "" {
			field = "origin"
		}
		return errorf(http.StatusBadRequest, field, "%s is set by the server", field)
	}
	if spec.Type == "" {
		return errorf(http.StatusBadRequest, "type", "missing type; valid: %s", strings.Join(faults.Names(), ", "))
	}
	if _, err := spec.build(); err != nil {
		return yamlError("", err)
	}
	spec.Origin = "api"
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.deleted {
		return errorf(http.StatusNotFound, "id", "no lab %q", m.rec.ID)
	}
	spec.ID = "f" + strconv.Itoa(m.rec.NextFault)
	old := m.rec.Faults
	m.rec.NextFault++
	m.rec.Faults = append(slices.Clone(old), spec)
	return s.applyFaults(w, m, old, &spec, http.StatusCreated)
}

func (s *Server) removeFault(w http.ResponseWriter, r *http.Request) error {
	m, err := s.labOf(r)
	if err != nil {
		return err
	}
	fid := r.PathValue("fid")
	m.mu.Lock()
	defer m.mu.Unlock()
	i := slices.IndexFunc(m.rec.Faults, func(f FaultSpec) bool { return f.ID == fid })
	if i < 0 || m.deleted {
		return errorf(http.StatusNotFound, "fid", "lab %s has no fault %q", m.rec.ID, fid)
	}
	old := m.rec.Faults
	m.rec.Faults = slices.Delete(slices.Clone(old), i, i+1)
	return s.applyFaults(w, m, old, nil, http.StatusOK)
}

// applyFaults rebuilds the lab with m.rec.Faults; if that fails, it puts
// the old faults back. m.mu is held.
func (s *Server) applyFaults(w http.ResponseWriter, m *managedLab, old []FaultSpec, added *FaultSpec, status int) error {
	changed, err := s.rebuild(m)
	if err != nil {
		m.rec.Faults = old
		if _, rerr := s.rebuild(m); rerr != nil {
			s.logger.Error("lab down after a failed fault change", "lab", m.rec.ID, "err", rerr)
		}
		return startError(err)
	}
	if err := s.store.updateLab(context.Background(), m.rec); err != nil {
		return err
	}
	fs := slices.Clone(m.rec.Faults)
	if fs == nil {
		fs = []FaultSpec{}
	}
	writeJSON(w, status, faultChange{Fault: added, Faults: fs, Restarted: true, Services: restartedServices(m.rec.Ports), PortsChanged: changed})
	return nil
}
