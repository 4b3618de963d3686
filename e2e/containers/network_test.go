//go:build e2e

package containers

import (
	"bytes"
	"context"
	"encoding/json"
	"math/rand/v2"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	dockernetwork "github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	tclog "github.com/testcontainers/testcontainers-go/log"
	"github.com/testcontainers/testcontainers-go/network"
	"github.com/testcontainers/testcontainers-go/wait"

	"github.com/maillab/maillab/rootcause"
	"github.com/maillab/maillab/testcontainers/maillab"
)

// labNetwork is a user-defined Docker network with a subnet of its own,
// so that lab containers can have fixed addresses (which they advertise).
type labNetwork struct {
	name   string
	subnet netip.Prefix
}

// addr returns the i-th address of the subnet.
func (n labNetwork) addr(i int) string {
	a := n.subnet.Addr().As4()
	a[3] = byte(i)
	return netip.AddrFrom4(a).String()
}

// newLabNetwork creates a network on a /24 of 10.213.0.0/16 that no other
// Docker network and no host interface uses; the test removes it.
func newLabNetwork(ctx context.Context, t *testing.T) labNetwork {
	t.Helper()
	used, err := usedPrefixes(ctx)
	if err != nil {
		t.Fatalf("list networks: %v", err)
	}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		subnet := freeSubnet(used)
		if !subnet.IsValid() {
			t.Fatalf("no free /24 in 10.213.0.0/16")
		}
		used = append(used, subnet)
		gw := netip.AddrFrom4([4]byte{subnet.Addr().As4()[0], subnet.Addr().As4()[1], subnet.Addr().As4()[2], 1})
		nw, err := network.New(ctx, network.WithIPAM(&dockernetwork.IPAM{
			Driver: "default",
			Config: []dockernetwork.IPAMConfig{{Subnet: subnet, Gateway: gw}},
		}))
		if err != nil {
			// Another engine user may have taken the subnet meanwhile.
			lastErr = err
			continue
		}
		testcontainers.CleanupNetwork(t, nw)
		return labNetwork{name: nw.Name, subnet: subnet}
	}
	t.Fatalf("create network: %v", lastErr)
	return labNetwork{}
}

// usedPrefixes lists the subnets of Docker's networks and of the host's
// interfaces.
func usedPrefixes(ctx context.Context) ([]netip.Prefix, error) {
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return nil, err
	}
	defer cli.Close()
	list, err := cli.NetworkList(ctx, client.NetworkListOptions{})
	if err != nil {
		return nil, err
	}
	var used []netip.Prefix
	for _, n := range list.Items {
		for _, c := range n.IPAM.Config {
			if c.Subnet.IsValid() {
				used = append(used, c.Subnet)
			}
		}
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, err
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok {
			if p, err := netip.ParsePrefix(ipn.String()); err == nil {
				used = append(used, p.Masked())
			}
		}
	}
	return used, nil
}

func freeSubnet(used []netip.Prefix) netip.Prefix {
	start := rand.IntN(250)
	for i := 0; i < 250; i++ {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 213, byte(1 + (start+i)%250), 0}), 24)
		free := true
		for _, u := range used {
			if u.Overlaps(p) {
				free = false
				break
			}
		}
		if free {
			return p
		}
	}
	return netip.Prefix{}
}

// TestClientContainerUsesLabDNS puts a client container (the same image,
// running `maillab diagnose`) on a user-defined network whose resolver is
// the lab container's DNS (docker run --dns). The client's settings name
// no resolver, so the diagnoser asks the system's: /etc/resolv.conf, where
// Docker puts its embedded DNS (127.0.0.11), which forwards to the lab.
// A DNS fault reaches the client the way it reaches a laptop behind a
// home router, and network faults hit the container's own address, with
// no port publishing in between.
func TestClientContainerUsesLabDNS(t *testing.T) {
	requireDocker(t)
	netCtx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	labNet := newLabNetwork(netCtx, t)
	for i, name := range []string{"healthy", "dns-outage", "firewall-drop"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			want := catalogCode(t, name)
			labIP := labNet.addr(20 + i)
			ctr := startScenario(ctx, t, name, maillab.WithNetworkIP(labNet.name, labIP))
			got, exit := diagnoseInClient(ctx, t, ctr, labNet, labIP)
			if got.RootCause != want {
				t.Errorf("client container: Diagnose(%s) = %s, want %s\nsummary: %s", name, got.RootCause, want, got.Summary)
			}
			if wantExit := exitFor(want); exit != wantExit {
				t.Errorf("client container: maillab diagnose exit status %d, want %d", exit, wantExit)
			}
		})
	}
}

// exitFor is maillab diagnose's exit status for a root cause (0 healthy,
// 1 a finding).
func exitFor(code rootcause.Code) int {
	if code == rootcause.Healthy {
		return 0
	}
	return 1
}

// clientReport is the part of `maillab diagnose --json` the test reads.
type clientReport struct {
	RootCause rootcause.Code `json:"root_cause"`
	Summary   string         `json:"summary"`
}

// diagnoseInClient runs `maillab diagnose --settings` in a container on
// the lab's network with the lab's DNS as its resolver, and returns the
// report and the exit status.
func diagnoseInClient(ctx context.Context, t *testing.T, lab *maillab.Container, labNet labNetwork, dnsIP string) (clientReport, int) {
	t.Helper()
	s, err := lab.LabSettings(ctx)
	if err != nil {
		t.Fatalf("LabSettings: %v", err)
	}
	ca, err := lab.CACertPEM(ctx)
	if err != nil {
		t.Fatalf("CACertPEM: %v", err)
	}
	// What the customer typed, with the system's resolver: the client
	// finds the lab's DNS only through its resolv.conf.
	s.Resolver = ""
	s.CAFile = "/tmp/ca.pem"
	if s.Client != nil && s.Client.MessageFile != "" {
		t.Fatalf("scenario has a message file; copy it into the client too")
	}
	data, err := s.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	dns := netip.MustParseAddr(dnsIP)
	client, err := testcontainers.GenericContainer(ctx, testcontainers.GenericContainerRequest{
		ContainerRequest: testcontainers.ContainerRequest{
			Image:    image,
			Cmd:      []string{"diagnose", "--settings", "/tmp/settings.json", "--json", "--timeout", probeTimeout.String()},
			Networks: []string{labNet.name},
			Files: []testcontainers.ContainerFile{
				{Reader: bytes.NewReader(data), ContainerFilePath: "/tmp/settings.json", FileMode: 0o644},
				{Reader: bytes.NewReader(ca), ContainerFilePath: "/tmp/ca.pem", FileMode: 0o644},
			},
			HostConfigModifier: func(hc *container.HostConfig) { hc.DNS = []netip.Addr{dns} },
			WaitingFor:         wait.ForExit().WithExitTimeout(time.Minute),
		},
		Started: true,
		Logger:  tclog.TestLogger(t),
	})
	testcontainers.CleanupContainer(t, client)
	if err != nil {
		t.Fatalf("client container: %v", err)
	}
	state, err := client.State(ctx)
	if err != nil {
		t.Fatalf("client state: %v", err)
	}
	stdout, stderr := containerOutput(ctx, t, client.GetContainerID())
	var rep clientReport
	if err := json.Unmarshal(stdout, &rep); err != nil {
		t.Fatalf("client report: %v\nstdout: %s\nstderr: %s", err, stdout, stderr)
	}
	return rep, state.ExitCode
}

// containerOutput returns a container's stdout and stderr apart.
func containerOutput(ctx context.Context, t *testing.T, id string) (stdout, stderr []byte) {
	t.Helper()
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		t.Fatalf("docker client: %v", err)
	}
	defer cli.Close()
	logs, err := cli.ContainerLogs(ctx, id, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		t.Fatalf("container logs: %v", err)
	}
	defer logs.Close()
	var out, errOut bytes.Buffer
	if _, err := stdcopy.StdCopy(&out, &errOut, logs); err != nil {
		t.Fatalf("container logs: %v", err)
	}
	return out.Bytes(), errOut.Bytes()
}
