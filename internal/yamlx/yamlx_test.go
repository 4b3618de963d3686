package yamlx_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/maillab/maillab/internal/yamlx"
)

// The test types look like the scenario files' types: nested structs, an
// inline struct, lists, a map of structs, durations, a raw node.

type message struct {
	Attachment string `yaml:"attachment"`
	Size       int    `yaml:"size"`
}

type client struct {
	MaxTLS    string   `yaml:"max_tls"`
	AuthMechs []string `yaml:"auth_mechs"`
	Message   *message `yaml:"message"`
}

type dnsNames struct {
	Names []string `yaml:"names"`
}

type fault struct {
	dnsNames `yaml:",inline"`
	Type     string        `yaml:"type"`
	Delay    time.Duration `yaml:"delay"`
	OneIn    uint16        `yaml:"one_in"`
}

type override struct {
	Host string `yaml:"host"`
	Port int    `yaml:"port"`
}

type scenario struct {
	Name     string              `yaml:"name"`
	Enabled  bool                `yaml:"enabled"`
	Ratio    float64             `yaml:"ratio"`
	Timeout  time.Duration       `yaml:"timeout"`
	Services []string            `yaml:"services"`
	Faults   []fault             `yaml:"faults"`
	Override map[string]override `yaml:"override"`
	Client   client              `yaml:"client"`
	Extra    any                 `yaml:"extra"`
	Ignored  string              `yaml:"-"`
	NoTag    string
	//lint:ignore U1000 present to check that an unexported field is not decodable
	internal string
}

func decode(t *testing.T, src string, out any) error {
	t.Helper()
	root, err := yamlx.Parse("sc.yaml", []byte(src))
	if err != nil {
		return err
	}
	return yamlx.Decode("sc.yaml", root, "", out)
}

const fullScenario = `# maillab scenario: dns-poisoned
name: dns-poisoned
enabled: true
ratio: 0.5
timeout: 1m30s
services: [submission, imaps]
faults:
  - type: dns-poison
    names: [mail.example.test]
    delay: 250ms
  - type: throttle
    one_in: 3
override:
  imap: {host: imap.example.test, port: 1143}
  smtp:
    port: 2525
client:
  max_tls: "1.0"
  auth_mechs: [PLAIN, LOGIN]
  message: {attachment: report.pdf, size: 2048}
extra: {a: [1, two]}
notag: plain field
`

func TestDecodeScenario(t *testing.T) {
	var got scenario
	if err := decode(t, fullScenario, &got); err != nil {
		t.Fatalf("Decode(full scenario) = %v", err)
	}
	want := scenario{
		Name: "dns-poisoned", Enabled: true, Ratio: 0.5, Timeout: 90 * time.Second,
		Services: []string{"submission", "imaps"},
		Faults: []fault{
			{dnsNames: dnsNames{Names: []string{"mail.example.test"}}, Type: "dns-poison", Delay: 250 * time.Millisecond},
			{Type: "throttle", OneIn: 3},
		},
		Override: map[string]override{"imap": {Host: "imap.example.test", Port: 1143}, "smtp": {Port: 2525}},
		Client:   client{MaxTLS: "1.0", AuthMechs: []string{"PLAIN", "LOGIN"}, Message: &message{Attachment: "report.pdf", Size: 2048}},
		Extra:    map[string]any{"a": []any{1, "two"}},
		NoTag:    "plain field",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Decode(full scenario) =\n%+v\nwant\n%+v", got, want)
	}
}

// A yaml.Node field keeps its part of the document undecoded, for the
// caller to decode once it knows the type (a fault's parameters).
func TestDecodeRawNode(t *testing.T) {
	var got struct {
		Type   string    `yaml:"type"`
		Params yaml.Node `yaml:"params"`
	}
	err := decode(t, "type: throttle\nparams:\n  bytes_per_second: 8192\n", &got)
	if err != nil {
		t.Fatalf("Decode into a yaml.Node field: %v", err)
	}
	p := got.Params
	if p.Kind != yaml.MappingNode || p.Line != 3 || len(p.Content) != 2 || p.Content[1].Value != "8192" {
		t.Errorf("Decode kept params as %+v, want the raw mapping node of line 3", p)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		line int
		msg  string
	}{
		{"empty", "", 0, "empty file"},
		{"comments only", "# nothing here\n\n", 0, "empty file"},
		// yaml.v3 v3.0.1 reports a parser error at the 0-based line of its
		// context (decode.go, parser.fail): one line early.
		{"unclosed list", "name: x\nservices: [imap, smtp\n", 1, "invalid YAML: did not find expected ',' or ']'"},
		{"tab indentation", "client:\n\tmax_tls: 1.2\n", 2, "invalid YAML: found character that cannot start any token"},
		{"bad indentation", "name: x\n  title: y\n", 2, "invalid YAML: "},
		// yaml.v3 gives no line for some scanner errors.
		{"mapping in a plain scalar", "name: a: b\n", 0, "invalid YAML: mapping values are not allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root, err := yamlx.Parse("sc.yaml", []byte(tt.in))
			var ye *yamlx.Error
			if !errors.As(err, &ye) {
				t.Fatalf("Parse(%q) = %v, %v, want a *yamlx.Error", tt.in, root, err)
			}
			if ye.File != "sc.yaml" || ye.Line != tt.line || !strings.HasPrefix(ye.Msg, tt.msg) {
				t.Errorf("Parse(%q) = %+v, want line %d, message starting %q", tt.in, ye, tt.line, tt.msg)
			}
		})
	}
	if root, err := yamlx.Parse("sc.yaml", []byte("name: x\n")); err != nil || root.Kind != yaml.MappingNode {
		t.Errorf("Parse(name: x) = %v, %v, want the root mapping", root, err)
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		line  int
		field string
		msg   []string
		bug   string
	}{
		{name: "unknown key", in: "name: x\nnmae: y\n", line: 2, field: "nmae",
			msg: []string{`unknown field "nmae"`, "valid: client, enabled, extra, faults, name, notag, override, ratio, services, timeout"}},
		{name: "unknown key lists inline fields", in: "faults:\n  - type: x\n    nmes: [a]\n", line: 3, field: "faults[0].nmes",
			msg: []string{"valid: delay, names, one_in, type"}},
		{name: "ignored field is unknown", in: "Ignored: x\n", line: 1, field: "Ignored", msg: []string{"unknown field"}},
		{name: "unexported field is unknown", in: "internal: x\n", line: 1, field: "internal", msg: []string{"unknown field"}},
		{name: "key given twice", in: "name: a\ntimeout: 1s\nname: b\n", line: 3, field: "name", msg: []string{"field given twice"}},
		{name: "not an integer", in: "override:\n  imap:\n    port: imap\n", line: 3, field: "override.imap.port", msg: []string{`"imap" is not a valid integer`}},
		{name: "integer out of range", in: "faults:\n  - one_in: 70000\n", line: 2, field: "faults[0].one_in", msg: []string{"not a valid integer"}},
		{name: "negative unsigned", in: "faults:\n  - one_in: -1\n", line: 2, field: "faults[0].one_in", msg: []string{"not a valid integer"}},
		{name: "not a boolean", in: "enabled: maybe\n", line: 1, field: "enabled", msg: []string{"boolean (true or false)"}},
		{name: "not a number", in: "ratio: half\n", line: 1, field: "ratio", msg: []string{"not a valid number"}},
		{name: "duration without unit", in: "timeout: 30\n", line: 1, field: "timeout", msg: []string{`"30" is not a duration`, "500ms, 30s, 2m"}},
		{name: "duration as a mapping", in: "timeout: {s: 30}\n", line: 1, field: "timeout", msg: []string{"expected a duration"}},
		{name: "struct given a scalar", in: "client: modern\n", line: 1, field: "client", msg: []string{"expected a mapping of auth_mechs, max_tls, message"}},
		{name: "struct given a list", in: "client:\n  - a\n", line: 2, field: "client", msg: []string{"expected a mapping"}},
		{name: "pointer to struct given a scalar", in: "client:\n  message: big\n", line: 2, field: "client.message", msg: []string{"expected a mapping of attachment, size"}},
		{name: "string given a list", in: "name: [a, b]\n", line: 1, field: "name", msg: []string{"expected a single string value"}},
		{name: "list item of the wrong kind", in: "services:\n  - imap\n  - {port: 1}\n", line: 3, field: "services[1]", msg: []string{"expected a single string value"}},
		{name: "map given a list", in: "override: [imap]\n", line: 1, field: "override", msg: []string{"expected a mapping"}},
		{name: "unknown key in a map value", in: "override:\n  imap: {hots: x}\n", line: 2, field: "override.imap.hots", msg: []string{`unknown field "hots"`, "valid: host, port"}},
		{name: "second list item", in: "faults:\n  - type: a\n  - type: b\n    delay: soon\n", line: 4, field: "faults[1].delay", msg: []string{"not a duration"}},
		{name: "document is a list", in: "- name: x\n", line: 1, field: "", msg: []string{"expected a mapping of"}},
		{name: "key given twice in a map", in: "override:\n  imap: {port: 1}\n  imap: {port: 2}\n", line: 3, field: "override.imap", msg: []string{"given twice"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.bug != "" {
				t.Skip("bug: " + tt.bug)
			}
			var sc scenario
			err := decode(t, tt.in, &sc)
			var ye *yamlx.Error
			if !errors.As(err, &ye) {
				t.Fatalf("Decode(%q) = %v, want a *yamlx.Error", tt.in, err)
			}
			if ye.File != "sc.yaml" || ye.Line != tt.line || ye.Field != tt.field {
				t.Errorf("Decode(%q) error at %s:%d field %q, want sc.yaml:%d field %q (%v)", tt.in, ye.File, ye.Line, ye.Field, tt.line, tt.field, err)
			}
			for _, m := range tt.msg {
				if !strings.Contains(ye.Msg, m) {
					t.Errorf("Decode(%q) error message %q, want it to contain %q", tt.in, ye.Msg, m)
				}
			}
		})
	}
}

func TestDecodeConveniences(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		check func(scenario) bool
	}{
		{"a scalar where a list is expected is a list of one", "services: imap\n",
			func(s scenario) bool { return reflect.DeepEqual(s.Services, []string{"imap"}) }},
		{"a mapping where a list of structs is expected is a list of one", "faults: {type: reset}\n",
			func(s scenario) bool { return len(s.Faults) == 1 && s.Faults[0].Type == "reset" }},
		{"null list stays nil", "services: ~\n", func(s scenario) bool { return s.Services == nil }},
		{"empty list", "services: []\n", func(s scenario) bool { return s.Services != nil && len(s.Services) == 0 }},
		{"missing fields keep zero values", "name: x\n", func(s scenario) bool { return s.Client.Message == nil && s.Timeout == 0 }},
		{"pointer allocated", "client: {message: {size: 7}}\n", func(s scenario) bool { return s.Client.Message != nil && s.Client.Message.Size == 7 }},
		{"anchors and aliases", "services: &svc [imap, pop3]\nclient:\n  auth_mechs: *svc\n",
			func(s scenario) bool { return reflect.DeepEqual(s.Client.AuthMechs, []string{"imap", "pop3"}) }},
		{"alias of a mapping", "override:\n  imap: &o {port: 143}\n  imaps: *o\n",
			func(s scenario) bool { return s.Override["imaps"].Port == 143 }},
		{"negative duration", "timeout: -5s\n", func(s scenario) bool { return s.Timeout == -5*time.Second }},
		{"quoted number as string", "client: {max_tls: \"1.0\"}\n", func(s scenario) bool { return s.Client.MaxTLS == "1.0" }},
		{"unquoted number as string", "client: {max_tls: 1.2}\n", func(s scenario) bool { return s.Client.MaxTLS == "1.2" }},
		{"null any stays nil", "extra: ~\n", func(s scenario) bool { return s.Extra == nil }},
		{"hex integer", "override: {imap: {port: 0x8f}}\n", func(s scenario) bool { return s.Override["imap"].Port == 143 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var sc scenario
			if err := decode(t, tt.in, &sc); err != nil {
				t.Fatalf("Decode(%q) = %v", tt.in, err)
			}
			if !tt.check(sc) {
				t.Errorf("Decode(%q) = %+v", tt.in, sc)
			}
		})
	}
}

func TestDecodeTarget(t *testing.T) {
	root, err := yamlx.Parse("sc.yaml", []byte("name: x\n"))
	if err != nil {
		t.Fatal(err)
	}
	var nilPtr *scenario
	for _, out := range []any{scenario{}, nilPtr, nil} {
		if err := yamlx.Decode("sc.yaml", root, "", out); err == nil {
			t.Errorf("Decode(into %T) = nil, want an error", out)
		}
	}
	// A field path given by the caller prefixes every error.
	var f fault
	item, _ := yamlx.Parse("sc.yaml", []byte("tyep: x\n"))
	err = yamlx.Decode("sc.yaml", item, "faults[2]", &f)
	var ye *yamlx.Error
	if !errors.As(err, &ye) || ye.Field != "faults[2].tyep" {
		t.Errorf("Decode(field faults[2]) = %v, want field faults[2].tyep", err)
	}
	// Decoding into a pointer to a pointer allocates.
	var pp *message
	m, _ := yamlx.Parse("sc.yaml", []byte("size: 3\n"))
	if err := yamlx.Decode("sc.yaml", m, "", &pp); err != nil || pp == nil || pp.Size != 3 {
		t.Errorf("Decode(into **message) = %v, %+v, want size 3", err, pp)
	}
}

func TestErrorString(t *testing.T) {
	n := &yaml.Node{Line: 7}
	tests := []struct {
		name string
		err  *yamlx.Error
		want string
	}{
		{"everything", yamlx.Errorf("sc.yaml", n, "faults[0].type", "unknown fault %q", "x"), `sc.yaml:7: faults[0].type: unknown fault "x"`},
		{"no node", yamlx.Errorf("sc.yaml", nil, "name", "missing"), "sc.yaml: name: missing"},
		{"no field", yamlx.Errorf("sc.yaml", n, "", "empty"), "sc.yaml:7: empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestFieldNames(t *testing.T) {
	tests := []struct {
		v    any
		want []string
	}{
		{fault{}, []string{"delay", "names", "one_in", "type"}},
		{&client{}, []string{"auth_mechs", "max_tls", "message"}},
		{scenario{}, []string{"client", "enabled", "extra", "faults", "name", "notag", "override", "ratio", "services", "timeout"}},
	}
	for _, tt := range tests {
		if got := yamlx.FieldNames(tt.v); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("FieldNames(%T) = %v, want %v", tt.v, got, tt.want)
		}
	}
}
