package yamlx_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/maillab/maillab/internal/yamlx"
)

// scenarioFile has the shape of the scenario catalog files (copies of a
// few are under testdata/), with the fault parameters inline.
type scenarioFile struct {
	Name      string      `yaml:"name"`
	Title     string      `yaml:"title"`
	Section   string      `yaml:"section"`
	RootCause string      `yaml:"root_cause"`
	Story     string      `yaml:"story"`
	Cause     string      `yaml:"cause"`
	Symptoms  string      `yaml:"symptoms"`
	Fix       string      `yaml:"fix"`
	Faults    []faultSpec `yaml:"faults"`
	Customer  customer    `yaml:"customer"`
}

type faultSpec struct {
	faultParams      `yaml:",inline"`
	Type             string   `yaml:"type"`
	Services         []string `yaml:"services"`
	AfterConnections int      `yaml:"after_connections"`
	OneIn            int      `yaml:"one_in"`
}

type faultParams struct {
	BytesPerSecond int           `yaml:"bytes_per_second"`
	Delay          time.Duration `yaml:"delay"`
	Window         time.Duration `yaml:"window"`
	Threshold      int           `yaml:"threshold"`
	PriorFailures  int           `yaml:"prior_failures"`
	MaxBytes       int64         `yaml:"max_bytes"`
	Names          []string      `yaml:"names"`
}

type customer struct {
	Services []string                   `yaml:"services"`
	Override map[string]serviceOverride `yaml:"override"`
	Username string                     `yaml:"username"`
	Password string                     `yaml:"password"`
	Resolver string                     `yaml:"resolver"`
	Client   struct {
		MaxTLS    string   `yaml:"max_tls"`
		AuthMechs []string `yaml:"auth_mechs"`
		SendTo    string   `yaml:"send_to"`
		Message   *struct {
			Attachment string `yaml:"attachment"`
			Size       string `yaml:"size"`
		} `yaml:"message"`
	} `yaml:"client"`
}

type serviceOverride struct {
	Host     string `yaml:"host"`
	Port     uint16 `yaml:"port"`
	PortOf   string `yaml:"port_of"`
	Security string `yaml:"security"`
}

func TestCatalogCopies(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.yaml"))
	if len(files) == 0 {
		t.Fatal("no testdata/*.yaml")
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var sc scenarioFile
			if err := decode(t, string(data), &sc); err != nil {
				t.Fatalf("Decode(%s) = %v", file, err)
			}
			if sc.Name+".yaml" != filepath.Base(file) || sc.RootCause == "" {
				t.Errorf("Decode(%s) = name %q, root cause %q", file, sc.Name, sc.RootCause)
			}
		})
	}
}

// FuzzDecode runs Parse and Decode on arbitrary documents. They must not
// panic; every error is a *yamlx.Error placed inside the document; and a
// document that decodes decodes the same way twice.
func FuzzDecode(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.yaml"))
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		"name: x\nfaults:\n  - type: a\n    delay: 5\n",
		"faults: {type: reset, names: mail.example.test}\n",
		"customer:\n  override:\n    imap: &o {port: 143}\n    imaps: *o\n",
		"customer:\n  override:\n    imap: {port: 1}\n    imap: {port: 2}\n",
		"name: a\nname: b\n",
		"a: &a [*a]\n",
		"customer: {client: {message: {size: 2MiB}}}\n",
		"- x\n",
		"---\n",
		"name: [\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		lines := bytes.Count(data, []byte{'\n'}) + 1
		checkErr := func(op string, err error) {
			t.Helper()
			var ye *yamlx.Error
			if !errors.As(err, &ye) {
				t.Fatalf("%s(%q) error = %T %v, want *yamlx.Error", op, data, err, err)
			}
			if ye.File != "fuzz.yaml" || ye.Line < 0 || ye.Line > lines {
				t.Fatalf("%s(%q) error = %v, outside the %d-line document", op, data, err, lines)
			}
		}
		root, err := yamlx.Parse("fuzz.yaml", data)
		if err != nil {
			checkErr("Parse", err)
			return
		}
		var first scenarioFile
		if err := yamlx.Decode("fuzz.yaml", root, "", &first); err != nil {
			checkErr("Decode", err)
			return
		}
		var second scenarioFile
		if err := yamlx.Decode("fuzz.yaml", root, "", &second); err != nil || !reflect.DeepEqual(first, second) {
			t.Fatalf("Decode(%q) twice = %+v, %v, want %+v", data, second, err, first)
		}
	})
}
