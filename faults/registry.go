// Package faults holds the lab's fault types, in the spirit of Toxiproxy's
// toxics: one file per fault, registered by name, with the knobs every
// fault shares (which services, only after N connections, one connection in
// K) handled here rather than in each fault. A fault changes a built lab
// before it starts: its sockets and connections, its TLS certificates and
// versions, its protocol handlers, its DNS data, or its authentication and
// SMTP policies. Every fault is observable by any real client; none is a
// flag that only maillab's own diagnoser reads.
package faults

import (
	"fmt"
	"net"
	"slices"
	"sort"
	"strings"
	"sync/atomic"

	"gopkg.in/yaml.v3"

	"github.com/maillab/maillab/internal/editdist"
	"github.com/maillab/maillab/internal/yamlx"
	"github.com/maillab/maillab/lab"
	"github.com/maillab/maillab/servers/transcript"
	"github.com/maillab/maillab/settings"
)

// Layer is what a fault acts on.
type Layer string

// Layers.
const (
	LayerNetwork  Layer = "network"  // sockets and connections
	LayerTLS      Layer = "tls"      // certificates and TLS versions
	LayerProtocol Layer = "protocol" // SMTP/IMAP/POP3 replies and capabilities
	LayerAuth     Layer = "auth"     // login policies, shared by every protocol
	LayerPolicy   Layer = "policy"   // SMTP acceptance policies
	LayerDNS      Layer = "dns"      // zone data and resolver behaviour
)

// Definition describes a fault type.
type Definition struct {
	// Name is the registry key used in scenario files.
	Name string
	// Summary says in one line what the fault does, for `maillab faults`.
	Summary string
	Layer   Layer
	// Protocols restricts the services the fault can act on; nil means any.
	Protocols []string
	// TLSOnly restricts the fault to services that speak TLS (implicit or
	// STARTTLS); PlainOnly to services that start in plaintext.
	TLSOnly, PlainOnly bool
	// PerConnection faults accept the after_connections and one_in knobs.
	PerConnection bool
	// NoServices faults act on the whole lab (DNS, accounts) and take no
	// services knob.
	NoServices bool
	// Params returns a pointer to the fault's parameters with their
	// defaults set; nil means the fault has no parameters.
	Params func() any
	// Apply changes the lab. sel holds the chosen services and the
	// connection gate; params is what Params returned, decoded.
	Apply func(l *lab.Lab, sel *Selection, params any) error
}

var registry = map[string]*Definition{}

// Register adds a fault type. It panics on a duplicate name: two faults
// silently sharing a name would make scenario files ambiguous.
func Register(d Definition) {
	if _, dup := registry[d.Name]; dup {
		panic("faults: duplicate fault " + d.Name)
	}
	if d.Apply == nil {
		panic("faults: fault " + d.Name + " has no Apply")
	}
	registry[d.Name] = &d
}

// Lookup returns the definition of a fault type.
func Lookup(name string) (*Definition, bool) {
	d, ok := registry[name]
	return d, ok
}

// Names returns every registered fault type, sorted.
func Names() []string {
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Definitions returns every registered fault type, sorted by name.
func Definitions() []*Definition {
	var out []*Definition
	for _, n := range Names() {
		out = append(out, registry[n])
	}
	return out
}

// Spec is a fault as written in a scenario file: the type, the shared
// knobs, and the fault's own parameters.
type Spec struct {
	Type string
	// Services limits the fault to these services; empty means every
	// service the fault can act on.
	Services []string
	// AfterConnections leaves the first N connections to each service
	// alone.
	AfterConnections int
	// OneIn applies the fault to one connection in K (the first, then every
	// K-th after it); 0 or 1 means every connection.
	OneIn int
	// Params is the mapping of the fault's own parameters (may be nil).
	Params *yaml.Node
	// File, Line and Field (e.g. "faults[2]") locate the spec, for
	// errors.
	File  string
	Line  int
	Field string
}

// Knobs are the keys every fault spec may have besides its parameters.
var Knobs = []string{"type", "services", "after_connections", "one_in"}

// Selection is the resolved knobs of a fault.
type Selection struct {
	// Services are the chosen services of the primary provider.
	Services []*lab.Service
	after    int
	oneIn    int
	counters map[string]*atomic.Int64
}

// Pick reports whether the next connection to svc gets the fault, and
// counts it. Faults that are not per-connection never call it.
func (s *Selection) Pick(svc *lab.Service) bool {
	n := int(s.counters[svc.Name].Add(1))
	if n <= s.after {
		return false
	}
	i := n - s.after
	return s.oneIn <= 1 || (i-1)%s.oneIn == 0
}

// Has reports whether svc is selected.
func (s *Selection) Has(name string) bool {
	return slices.ContainsFunc(s.Services, func(x *lab.Service) bool { return x.Name == name })
}

// New validates spec and returns the fault it describes. Errors name the
// file, line and field and list the valid choices.
func New(spec Spec) (lab.Fault, error) {
	errAt := func(field, format string, args ...any) error {
		if spec.Field != "" {
			field = strings.TrimSuffix(spec.Field+"."+field, ".")
		}
		return &yamlx.Error{File: spec.File, Line: spec.Line, Field: field, Msg: fmt.Sprintf(format, args...)}
	}
	d, ok := registry[spec.Type]
	if !ok {
		msg := fmt.Sprintf("unknown fault %q", spec.Type)
		if near := Closest(spec.Type, Names(), 3); len(near) > 0 {
			msg += fmt.Sprintf(" (did you mean %s?)", strings.Join(near, ", "))
		}
		return nil, errAt("type", "%s; valid: %s", msg, strings.Join(Names(), ", "))
	}
	if d.NoServices && len(spec.Services) > 0 {
		return nil, errAt("services", "fault %s acts on the whole lab and takes no services", d.Name)
	}
	valid := d.validServices()
	for _, s := range spec.Services {
		if !slices.Contains(valid, s) {
			return nil, errAt("services", "fault %s cannot act on service %q; valid: %s", d.Name, s, strings.Join(valid, ", "))
		}
	}
	if !d.PerConnection && (spec.AfterConnections != 0 || spec.OneIn != 0) {
		return nil, errAt("after_connections", "fault %s acts on the whole service, not per connection; after_connections and one_in do not apply", d.Name)
	}
	if spec.AfterConnections < 0 || spec.OneIn < 0 {
		return nil, errAt("after_connections", "after_connections and one_in must not be negative")
	}
	var params any
	if d.Params != nil {
		params = d.Params()
		if spec.Params != nil {
			if err := yamlx.Decode(spec.File, spec.Params, spec.Field, params); err != nil {
				return nil, err
			}
		}
		if v, ok := params.(interface{ validate() error }); ok {
			if err := v.validate(); err != nil {
				return nil, errAt("", "fault %s: %v", d.Name, err)
			}
		}
	} else if spec.Params != nil && len(spec.Params.Content) > 0 {
		return nil, &yamlx.Error{File: spec.File, Line: spec.Params.Content[0].Line, Field: strings.TrimPrefix(spec.Field+"."+spec.Params.Content[0].Value, "."),
			Msg: fmt.Sprintf("fault %s has no parameters; valid keys: %s", d.Name, strings.Join(Knobs, ", "))}
	}
	names := spec.Services
	if len(names) == 0 && !d.NoServices {
		names = valid
	}
	return lab.FaultFunc(func(l *lab.Lab) error {
		sel := &Selection{after: spec.AfterConnections, oneIn: spec.OneIn, counters: map[string]*atomic.Int64{}}
		for _, n := range names {
			svc := l.Service(n)
			if svc == nil {
				return fmt.Errorf("fault %s: no service %s", d.Name, n)
			}
			sel.Services = append(sel.Services, svc)
			sel.counters[n] = &atomic.Int64{}
		}
		if err := d.Apply(l, sel, params); err != nil {
			return fmt.Errorf("fault %s: %w", d.Name, err)
		}
		return nil
	}), nil
}

// Services lists the services the fault may act on; nil for a fault that
// acts on the whole lab (NoServices).
func (d *Definition) Services() []string {
	if d.NoServices {
		return nil
	}
	return d.validServices()
}

// validServices lists the services the fault may act on.
func (d *Definition) validServices() []string {
	var out []string
	for _, info := range settings.Services {
		if d.Protocols != nil && !slices.Contains(d.Protocols, info.Protocol) {
			continue
		}
		if d.TLSOnly && info.Security == settings.SecurityNone && info.Name != "smtp" {
			continue
		}
		if d.PlainOnly && info.Security == settings.SecurityTLS {
			continue
		}
		out = append(out, info.Name)
	}
	return out
}

// Closest returns up to n candidates nearest to s by edit distance (only
// plausible typos: distance at most half of s's length, at least 2).
func Closest(s string, candidates []string, n int) []string {
	type scored struct {
		name string
		d    int
	}
	var list []scored
	limit := max(2, len(s)/4)
	for _, c := range candidates {
		d := editdist.Levenshtein(strings.ToLower(s), strings.ToLower(c))
		if strings.Contains(c, s) || strings.Contains(s, c) {
			d = min(d, 1)
		}
		if d <= limit {
			list = append(list, scored{c, d})
		}
	}
	sort.SliceStable(list, func(i, j int) bool { return list[i].d < list[j].d })
	var out []string
	for i := 0; i < len(list) && i < n; i++ {
		out = append(out, list[i].name)
	}
	return out
}

// wrapSelected installs w on the selected services for the connections the
// knobs pick.
func wrapSelected(sel *Selection, w func(svc *lab.Service) lab.ConnWrapper) {
	for _, svc := range sel.Services {
		inner := w(svc)
		svc.ConnWrappers = append(svc.ConnWrappers, func(c net.Conn, ts *transcript.Session) net.Conn {
			if !sel.Pick(svc) {
				return c
			}
			return inner(c, ts)
		})
	}
}
