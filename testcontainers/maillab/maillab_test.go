package maillab

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	tcexec "github.com/testcontainers/testcontainers-go/exec"

	"github.com/maillab/maillab/internal/golden"
	"github.com/maillab/maillab/settings"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// labSettings reads a settings file the lab wrote inside a container
// (testdata/*.lab.json, recorded from maillab:dev).
func labSettings(t *testing.T, name string) *settings.Settings {
	t.Helper()
	s, err := settings.Load(filepath.Join("testdata", name+".lab.json"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// hostView is the view of a container published on 127.0.0.1 with the
// host ports of published.
func hostView() view {
	return view{
		addr: netip.MustParseAddr("127.0.0.1"),
		ports: map[int]int{
			25: 32801, 587: 32802, 465: 32803, 143: 32804, 993: 32805, 110: 32806, 995: 32807,
		},
		dnsPort: 32853,
		files: map[string]string{
			"/lab/ca.pem":               "/tmp/maillab-container-1/ca.pem",
			"/lab/customer-message.eml": "/tmp/maillab-container-1/customer-message.eml",
		},
	}
}

// TestTranslateGolden translates real settings files of the lab in a
// container into the host's view and compares with golden files.
func TestTranslateGolden(t *testing.T) {
	for _, name := range []string{"lab", "expired-cert", "dns-wrong-server", "pop3-on-imap-port", "message-too-large"} {
		t.Run(name, func(t *testing.T) {
			got, err := translate(labSettings(t, name), netip.MustParseAddr("127.0.0.1"), hostView())
			if err != nil {
				t.Fatalf("translate: %v", err)
			}
			data, err := got.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			golden.Check(t, filepath.Join("testdata", name+".host.json"), data, *update)
		})
	}
}

func TestTranslateResolver(t *testing.T) {
	advertised := netip.MustParseAddr("127.0.0.1")
	v := hostView()
	for _, tc := range []struct {
		name, in, want string
	}{
		{"lab DNS bound on every address", "[::]:53", "127.0.0.1:32853"},
		{"lab DNS on the advertised address", "127.0.0.1:53", "127.0.0.1:32853"},
		{"lab DNS bound on 0.0.0.0", "0.0.0.0:53", "127.0.0.1:32853"},
		{"dead resolver of dns-wrong-server", "0.0.0.0:40811", "127.0.0.1:40811"},
		{"another loopback address", "127.0.0.2:53", "127.0.0.1:32853"},
		{"a resolver elsewhere", "192.0.2.53:53", "192.0.2.53:53"},
		{"a resolver by name", "dns.example.test:53", "dns.example.test:53"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := translateResolver(tc.in, advertised, v)
			if err != nil {
				t.Fatalf("translateResolver(%q): %v", tc.in, err)
			}
			if got != tc.want {
				t.Errorf("translateResolver(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestTranslateNetworkView(t *testing.T) {
	ip := netip.MustParseAddr("10.213.7.10")
	s := labSettings(t, "lab")
	s.Resolver = "[::]:53"
	for name, svc := range s.Services {
		svc.Address = ip.String()
		s.Services[name] = svc
	}
	v := view{addr: ip, ports: map[int]int{}, dnsPort: containerDNSPort, files: map[string]string{"/lab/ca.pem": "/host/ca.pem"}}
	got, err := translate(s, ip, v)
	if err != nil {
		t.Fatal(err)
	}
	if got.Resolver != "10.213.7.10:53" {
		t.Errorf("Resolver = %q, want 10.213.7.10:53", got.Resolver)
	}
	for name, svc := range got.Services {
		if svc.Port != s.Services[name].Port || svc.Address != ip.String() {
			t.Errorf("service %s = %+v, want the container's port %d on %s", name, svc, s.Services[name].Port, ip)
		}
	}
}

func TestTranslateErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*settings.Settings)
	}{
		{"CA file not copied", func(s *settings.Settings) { s.CAFile = "/lab/other-ca.pem" }},
		{"message file not copied", func(s *settings.Settings) {
			s.Client = &settings.Client{MessageFile: "/lab/big.eml"}
		}},
		{"resolver without port", func(s *settings.Settings) { s.Resolver = "127.0.0.1" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := labSettings(t, "lab")
			tc.change(s)
			if got, err := translate(s, netip.MustParseAddr("127.0.0.1"), hostView()); err == nil {
				t.Errorf("translate = %+v, want an error", got)
			}
		})
	}
}

func TestTranslateDoesNotChangeInput(t *testing.T) {
	s := labSettings(t, "expired-cert")
	before, _ := s.Marshal()
	if _, err := translate(s, netip.MustParseAddr("127.0.0.1"), hostView()); err != nil {
		t.Fatal(err)
	}
	after, _ := s.Marshal()
	if !bytes.Equal(before, after) {
		t.Errorf("translate changed its input:\n%s", after)
	}
}

func TestOptions(t *testing.T) {
	for _, tc := range []struct {
		name    string
		opt     Option
		wantErr bool
		check   func(options) bool
	}{
		{"scenario", WithScenario("expired-cert"), false, func(o options) bool { return o.scenario == "expired-cert" }},
		{"scenario with spaces trimmed", WithScenario(" healthy "), false, func(o options) bool { return o.scenario == "healthy" }},
		{"empty scenario", WithScenario(""), true, nil},
		{"scenario that is a flag", WithScenario("--help"), true, nil},
		{"scenario that is a path", WithScenario("../x"), true, nil},
		{"publish on all interfaces", WithPublishAddress("0.0.0.0"), false, func(o options) bool { return o.publish.IsUnspecified() }},
		{"publish on IPv6", WithPublishAddress("::1"), true, nil},
		{"publish on a name", WithPublishAddress("localhost"), true, nil},
		{"network address", WithNetworkIP("labnet", "10.213.7.10"), false, func(o options) bool {
			return o.network == "labnet" && o.networkIP == netip.MustParseAddr("10.213.7.10")
		}},
		{"network address on the default bridge", WithNetworkIP("bridge", "172.17.0.9"), true, nil},
		{"network address without network", WithNetworkIP("", "10.213.7.10"), true, nil},
		{"loopback network address", WithNetworkIP("labnet", "127.0.0.1"), true, nil},
		{"startup timeout", WithStartupTimeout(5 * time.Second), false, func(o options) bool { return o.startupTimeout == 5*time.Second }},
		{"zero startup timeout", WithStartupTimeout(0), true, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := defaultOptions()
			err := tc.opt(&o)
			if (err != nil) != tc.wantErr {
				t.Fatalf("option error = %v, want error %v", err, tc.wantErr)
			}
			if err == nil && !tc.check(o) {
				t.Errorf("options = %+v", o)
			}
		})
	}
}

func TestCommand(t *testing.T) {
	lab := defaultOptions()
	scenario := defaultOptions()
	scenario.scenario = "dns-outage"
	ip := netip.MustParseAddr("127.0.0.1")
	for _, tc := range []struct {
		name string
		o    options
		want string
	}{
		{"plain lab", lab, "lab --address 0.0.0.0 --expose --advertise 127.0.0.1 --standard-ports --dir /lab --settings-out /lab/settings.json"},
		{"scenario", scenario, "scenario dns-outage --address 0.0.0.0 --expose --advertise 127.0.0.1 --standard-ports --dir /lab --settings-out /lab/settings.json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := strings.Join(command(tc.o, ip), " "); got != tc.want {
				t.Errorf("command = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestPortBindings(t *testing.T) {
	publish := netip.MustParseAddr("127.0.0.1")
	pm := portBindings(publish, 40053)
	if len(pm) != len(settings.Services)+2 {
		t.Errorf("%d bindings, want one per service and DNS over UDP and TCP", len(pm))
	}
	for port, bindings := range pm {
		if len(bindings) != 1 || bindings[0].HostIP != publish {
			t.Errorf("%s published as %+v, want on %s only", port, bindings, publish)
			continue
		}
		want := ""
		if port.Num() == containerDNSPort {
			want = "40053"
		}
		if bindings[0].HostPort != want {
			t.Errorf("%s host port %q, want %q", port, bindings[0].HostPort, want)
		}
	}
	for _, p := range []string{"53/udp", "53/tcp", "993/tcp", "25/tcp"} {
		if _, ok := pm[network.MustParsePort(p)]; !ok {
			t.Errorf("%s not published", p)
		}
	}
}

func TestFreeHostPort(t *testing.T) {
	ip := netip.MustParseAddr("127.0.0.1")
	port, err := freeHostPort(ip)
	if err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort(ip.String(), strconv.Itoa(port))
	ln, err := net.Listen("tcp4", addr)
	if err != nil {
		t.Fatalf("port %d is not free for TCP: %v", port, err)
	}
	ln.Close()
	pc, err := net.ListenPacket("udp4", addr)
	if err != nil {
		t.Fatalf("port %d is not free for UDP: %v", port, err)
	}
	pc.Close()
}

func TestContainerPort(t *testing.T) {
	for _, tc := range []struct {
		service string
		want    int
		ok      bool
	}{
		{"submission", 587, true},
		{"imaps", 993, true},
		{"pop3s", 995, true},
		{ServiceDNS, 53, true},
		{"http", 0, false},
	} {
		t.Run(tc.service, func(t *testing.T) {
			got, ok := ContainerPort(tc.service)
			if got != tc.want || ok != tc.ok {
				t.Errorf("ContainerPort(%q) = %d, %v; want %d, %v", tc.service, got, ok, tc.want, tc.ok)
			}
		})
	}
}

// fakeTarget is a container as a wait strategy sees it.
type fakeTarget struct {
	states []container.State // one per State call; the last repeats
	files  map[string][]byte // what CopyFileFromContainer finds
	appear int               // the files exist from this State call on
	logs   string
	calls  int
}

func (f *fakeTarget) State(context.Context) (*container.State, error) {
	i := min(f.calls, len(f.states)-1)
	f.calls++
	s := f.states[i]
	return &s, nil
}

func (f *fakeTarget) CopyFileFromContainer(_ context.Context, path string) (io.ReadCloser, error) {
	data, ok := f.files[path]
	if !ok || f.calls <= f.appear {
		return nil, errdefs.ErrNotFound.WithMessage("no such file " + path)
	}
	return io.NopCloser(bytes.NewReader(data)), nil
}

func (f *fakeTarget) Logs(context.Context) (io.ReadCloser, error) {
	return io.NopCloser(strings.NewReader(f.logs)), nil
}

func (f *fakeTarget) Host(context.Context) (string, error) { return "localhost", nil }
func (f *fakeTarget) Inspect(context.Context) (*container.InspectResponse, error) {
	return &container.InspectResponse{}, nil
}
func (f *fakeTarget) Ports(context.Context) (network.PortMap, error) { return nil, nil }
func (f *fakeTarget) MappedPort(context.Context, string) (network.Port, error) {
	return network.Port{}, errors.New("not published")
}
func (f *fakeTarget) Exec(context.Context, []string, ...tcexec.ProcessOption) (int, io.Reader, error) {
	return 0, nil, errors.New("no exec in a scratch image")
}

func TestReadiness(t *testing.T) {
	valid, err := os.ReadFile(filepath.Join("testdata", "expired-cert.lab.json"))
	if err != nil {
		t.Fatal(err)
	}
	running := container.State{Running: true, Status: container.StateRunning}
	exited := container.State{Status: container.StateExited, ExitCode: 2}
	for _, tc := range []struct {
		name     string
		target   *fakeTarget
		wantErr  bool
		wantExit int // -1: not a StartError
	}{
		{"settings written at once", &fakeTarget{states: []container.State{running}, files: map[string][]byte{ContainerSettingsFile: valid}}, false, -1},
		{"settings written later", &fakeTarget{states: []container.State{running}, files: map[string][]byte{ContainerSettingsFile: valid}, appear: 3}, false, -1},
		{"lab exits", &fakeTarget{states: []container.State{running, exited}, logs: "maillab: unknown scenario \"x\"\n"}, true, 2},
		{"settings invalid", &fakeTarget{states: []container.State{running}, files: map[string][]byte{ContainerSettingsFile: []byte(`{"services":{}}`)}}, true, -1},
		{"never ready", &fakeTarget{states: []container.State{running}}, true, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &readiness{path: ContainerSettingsFile, timeout: 200 * time.Millisecond, poll: time.Millisecond}
			err := r.WaitUntilReady(context.Background(), tc.target)
			if (err != nil) != tc.wantErr {
				t.Fatalf("WaitUntilReady = %v, want error %v", err, tc.wantErr)
			}
			var se *StartError
			isStart := errors.As(err, &se)
			if tc.wantExit >= 0 {
				if !isStart || se.ExitCode != tc.wantExit || !strings.Contains(se.Output, "unknown scenario") {
					t.Errorf("WaitUntilReady = %v, want a StartError with code %d and the lab's output", err, tc.wantExit)
				}
			} else if isStart {
				t.Errorf("WaitUntilReady = %v, want no StartError", err)
			}
		})
	}
}

func TestLogTailKeepsTheEnd(t *testing.T) {
	var b strings.Builder
	for i := 0; i < 500; i++ {
		b.WriteString("line " + strconv.Itoa(i) + "\n")
	}
	got := logTail(context.Background(), &fakeTarget{logs: b.String()})
	if !strings.HasSuffix(got, "line 499") || strings.Contains(got, "line 0\n") || len(got) > 2048 {
		t.Errorf("logTail kept %d bytes ending %q", len(got), got[max(0, len(got)-20):])
	}
	if !strings.HasPrefix(got, "line ") {
		t.Errorf("logTail starts mid-line: %q", got[:20])
	}
}

// FuzzTranslate feeds settings files to the translation a settings file
// read from a container goes through: whatever parses must translate
// without panicking, and what translates must still be valid settings.
func FuzzTranslate(f *testing.F) {
	for _, name := range []string{"lab", "expired-cert", "dns-wrong-server", "pop3-on-imap-port", "message-too-large"} {
		data, err := os.ReadFile(filepath.Join("testdata", name+".lab.json"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`{"domain":"x","resolver":"[::1]:53","services":{"imaps":{"host":"h","port":993,"security":"tls"}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := settings.Parse("fuzz.json", data)
		if err != nil {
			return
		}
		v := hostView()
		out, err := translate(s, netip.MustParseAddr("127.0.0.1"), v)
		if err != nil {
			return
		}
		if err := out.Validate(); err != nil {
			t.Fatalf("translated settings invalid: %v", err)
		}
		for name, svc := range out.Services {
			if p, ok := v.ports[s.Services[name].Port]; ok && svc.Port != p {
				t.Fatalf("service %s: port %d, want the published %d", name, svc.Port, p)
			}
		}
		if out.CAFile != "" && !slices.Contains([]string{"/tmp/maillab-container-1/ca.pem", "/tmp/maillab-container-1/customer-message.eml"}, out.CAFile) {
			t.Fatalf("CA file %q is not a host copy", out.CAFile)
		}
	})
}
