package scenarios

import (
	"embed"
	"fmt"
	"io/fs"
	"net"
	"net/mail"
	"os"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"gopkg.in/yaml.v3"

	"github.com/maillab/maillab/faults"
	"github.com/maillab/maillab/internal/yamlx"
	"github.com/maillab/maillab/rootcause"
	"github.com/maillab/maillab/settings"
)

//go:embed catalog/*.yaml
var catalogFS embed.FS

var (
	catalogOnce sync.Once
	catalog     []*Scenario
	catalogErr  error
)

// Catalog returns the embedded scenarios, sorted by name. The catalog is
// validated by the tests; an error here means a broken build.
func Catalog() ([]*Scenario, error) {
	catalogOnce.Do(func() {
		entries, err := fs.ReadDir(catalogFS, "catalog")
		if err != nil {
			catalogErr = err
			return
		}
		for _, e := range entries {
			data, err := catalogFS.ReadFile("catalog/" + e.Name())
			if err != nil {
				catalogErr = err
				return
			}
			sc, err := Parse("catalog/"+e.Name(), data)
			if err != nil {
				catalogErr = err
				return
			}
			catalog = append(catalog, sc)
		}
		sort.Slice(catalog, func(i, j int) bool { return catalog[i].Name < catalog[j].Name })
		for i := 1; i < len(catalog); i++ {
			if catalog[i].Name == catalog[i-1].Name {
				catalogErr = fmt.Errorf("%s: scenario %q also defined in %s", catalog[i].File, catalog[i].Name, catalog[i-1].File)
			}
		}
	})
	return catalog, catalogErr
}

// Names returns the names of the catalog's scenarios.
func Names() []string {
	cat, _ := Catalog()
	names := make([]string, len(cat))
	for i, sc := range cat {
		names[i] = sc.Name
	}
	return names
}

// Lookup returns the catalog scenario called name. For an unknown name
// the error suggests the closest names.
func Lookup(name string) (*Scenario, error) {
	cat, err := Catalog()
	if err != nil {
		return nil, err
	}
	for _, sc := range cat {
		if sc.Name == name {
			return sc, nil
		}
	}
	msg := fmt.Sprintf("unknown scenario %q", name)
	if near := faults.Closest(name, Names(), 3); len(near) > 0 {
		msg += "; did you mean " + strings.Join(near, ", ") + "?"
	}
	return nil, &UnknownError{Name: name, Msg: msg + " (maillab scenario list shows all)"}
}

// UnknownError is returned by Lookup for a name not in the catalog.
type UnknownError struct {
	Name string
	Msg  string
}

func (e *UnknownError) Error() string { return e.Msg }

// LoadFile reads a custom scenario file.
func LoadFile(file string) (*Scenario, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	return Parse(file, data)
}

// fileFields is the top level of a scenario file.
var fileFields = []string{"name", "title", "section", "root_cause", "story", "cause", "symptoms", "fix", "faults", "customer"}

// Parse reads and validates a scenario. Errors name the file, the line and
// the field, and list the valid choices.
func Parse(file string, data []byte) (*Scenario, error) {
	root, err := yamlx.Parse(file, data)
	if err != nil {
		return nil, err
	}
	if root.Kind != yaml.MappingNode {
		return nil, yamlx.Errorf(file, root, "", "a scenario file is a mapping with the keys %s", strings.Join(fileFields, ", "))
	}
	sc := &Scenario{File: file}
	var faultsNode *yaml.Node
	rest := &yaml.Node{Kind: yaml.MappingNode, Line: root.Line}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if k.Value == "faults" {
			faultsNode = v
			continue
		}
		rest.Content = append(rest.Content, k, v)
	}
	if err := yamlx.Decode(file, rest, "", sc); err != nil {
		return nil, err
	}
	need := func(field, value string) error {
		if strings.TrimSpace(value) == "" {
			return yamlx.Errorf(file, root, field, "missing %s (every scenario needs %s)", field, strings.Join([]string{"name", "title", "root_cause", "story", "fix"}, ", "))
		}
		return nil
	}
	for _, f := range []struct{ name, value string }{
		{"name", sc.Name}, {"title", sc.Title}, {"root_cause", sc.RootCause}, {"story", sc.Story}, {"fix", sc.Fix},
	} {
		if err := need(f.name, f.value); err != nil {
			return nil, err
		}
	}
	if !validName(sc.Name) {
		return nil, yamlx.Errorf(file, valueNode(root, "name"), "name", "%q: use lower-case letters, digits and hyphens", sc.Name)
	}
	if !rootcause.Valid(sc.RootCause) {
		msg := fmt.Sprintf("unknown root cause %q", sc.RootCause)
		if near := faults.Closest(sc.RootCause, rootcause.Names(), 3); len(near) > 0 {
			msg += " (did you mean " + strings.Join(near, ", ") + "?)"
		}
		return nil, yamlx.Errorf(file, valueNode(root, "root_cause"), "root_cause", "%s; valid: %s", msg, strings.Join(rootcause.Names(), ", "))
	}
	if faultsNode != nil {
		specs, err := parseFaults(file, faultsNode)
		if err != nil {
			return nil, err
		}
		sc.Faults = specs
	}
	if err := sc.validateCustomer(valueNode(root, "customer")); err != nil {
		return nil, err
	}
	// Building each fault validates its parameters.
	for _, spec := range sc.Faults {
		if _, err := faults.New(spec); err != nil {
			return nil, err
		}
	}
	return sc, nil
}

func validName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return true
}

// valueNode returns the value of key in a mapping, or the mapping.
func valueNode(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return m
}

// parseFaults reads the faults list: each item has a type, the shared
// knobs, and the fault's own parameters.
func parseFaults(file string, n *yaml.Node) ([]faults.Spec, error) {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil, nil
	}
	if n.Kind != yaml.SequenceNode {
		return nil, yamlx.Errorf(file, n, "faults", "expected a list of faults, each with a type")
	}
	var out []faults.Spec
	for i, item := range n.Content {
		field := fmt.Sprintf("faults[%d]", i)
		if item.Kind == yaml.ScalarNode {
			// "- drop" is short for "- type: drop".
			out = append(out, faults.Spec{Type: item.Value, File: file, Line: item.Line, Field: field})
			continue
		}
		if item.Kind != yaml.MappingNode {
			return nil, yamlx.Errorf(file, item, field, "expected a fault: a mapping with a type")
		}
		spec := faults.Spec{File: file, Line: item.Line, Field: field}
		params := &yaml.Node{Kind: yaml.MappingNode, Line: item.Line}
		for j := 0; j+1 < len(item.Content); j += 2 {
			k, v := item.Content[j], item.Content[j+1]
			var err error
			switch k.Value {
			case "type":
				err = yamlx.Decode(file, v, field+".type", &spec.Type)
			case "services":
				err = yamlx.Decode(file, v, field+".services", &spec.Services)
			case "after_connections":
				err = yamlx.Decode(file, v, field+".after_connections", &spec.AfterConnections)
			case "one_in":
				err = yamlx.Decode(file, v, field+".one_in", &spec.OneIn)
			default:
				params.Content = append(params.Content, k, v)
			}
			if err != nil {
				return nil, err
			}
		}
		if spec.Type == "" {
			return nil, yamlx.Errorf(file, item, field+".type", "missing type; valid: %s", strings.Join(faults.Names(), ", "))
		}
		if len(params.Content) > 0 {
			spec.Params = params
		}
		out = append(out, spec)
	}
	return out, nil
}

func (sc *Scenario) validateCustomer(n *yaml.Node) error {
	c := &sc.Customer
	errAt := func(field, format string, args ...any) error {
		return yamlx.Errorf(sc.File, n, "customer."+field, format, args...)
	}
	names := settings.ServiceNames()
	for _, s := range c.Services {
		if !slices.Contains(names, s) {
			return errAt("services", "unknown service %q; valid: %s", s, validServiceNames())
		}
	}
	services := c.Services
	if len(services) == 0 {
		services = DefaultServices
	}
	for name, o := range c.Override {
		if !slices.Contains(services, name) {
			return errAt("override."+name, "service %q is not among the customer's services %v", name, services)
		}
		if o.PortOf != "" && !slices.Contains(names, o.PortOf) {
			return errAt("override."+name+".port_of", "unknown service %q; valid: %s", o.PortOf, validServiceNames())
		}
		if o.Security != "" && !slices.Contains(settings.SecurityModes, o.Security) {
			return errAt("override."+name+".security", "unknown security %q; valid: %s", o.Security, strings.Join(settings.SecurityModes, ", "))
		}
		if o.Port < 0 || o.Port > 65535 {
			return errAt("override."+name+".port", "port %d out of range", o.Port)
		}
	}
	if c.Email != "" {
		if a, err := mail.ParseAddress(c.Email); err != nil || a.Address != c.Email || !strings.Contains(c.Email, "@") {
			return errAt("email", "%q is not an email address (local@domain)", c.Email)
		}
	}
	if c.Resolver != "" && c.Resolver != "unreachable" {
		if _, _, err := net.SplitHostPort(c.Resolver); err != nil {
			return errAt("resolver", "%q: want \"unreachable\" or host:port", c.Resolver)
		}
	}
	if c.Client.MaxTLS != "" && !slices.Contains(settings.TLSVersions, c.Client.MaxTLS) {
		return errAt("client.max_tls", "unknown TLS version %q; valid: %s", c.Client.MaxTLS, strings.Join(settings.TLSVersions, ", "))
	}
	if m := c.Client.Message; m != nil && m.Size < 0 {
		return errAt("client.message.size", "size must not be negative")
	}
	if c.Client.Message != nil && path.Base(c.Client.Message.Attachment) != c.Client.Message.Attachment && c.Client.Message.Attachment != "" {
		return errAt("client.message.attachment", "%q: give a file name, not a path", c.Client.Message.Attachment)
	}
	return nil
}

// ByteSize is a size in octets, written as a number or with a unit
// (KB, KiB, MB, MiB).
type ByteSize int64

// UnmarshalYAML implements yaml.Unmarshaler.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	s := strings.TrimSpace(n.Value)
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"KB", 1000}, {"MB", 1000 * 1000}, {"B", 1}}
	mult := int64(1)
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v < 0 {
		return fmt.Errorf("%q is not a size (examples: 5000, 300KB, 2MiB)", n.Value)
	}
	*b = ByteSize(v * float64(mult))
	return nil
}
