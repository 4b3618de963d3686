// Package maillab is a testcontainers-go module for maillab: it starts
// the maillab image (a working mail provider for example.test, or one
// scenario of maillab's failure catalog) in a container and hands the test
// the settings a mail client needs, with the ports Docker published on the
// host.
//
//	ctr, err := maillab.Run(ctx, maillab.DefaultImage, maillab.WithScenario("expired-cert"))
//	testcontainers.CleanupContainer(t, ctr)
//	if err != nil { ... }
//	s, err := ctr.Settings(ctx) // host, published ports, lab resolver, CA file
//
// The image is built from the maillab repository by scripts/build-image.sh
// (tag DefaultImage); no registry is needed. Run(ctx, "",
// testcontainers.WithDockerfile(...)) builds one instead, following
// testcontainers-go's conventions.
//
// Inside the container the lab binds the container's interface on the
// standard ports (25, 587, 465, 143, 993, 110, 995 and DNS on 53, UDP and
// TCP); Docker publishes each on 127.0.0.1 only, the DNS on one host port
// for UDP and TCP alike. The certificate and the DNS answers name the
// advertised address, 127.0.0.1 by default.
//
// What a client on the host does not see through Docker's publishing:
// Docker's userland proxy accepts a connection to a port published on
// 127.0.0.1 itself and only then dials the container, so a fault that drops
// SYNs inside the container (firewall-drop, port25-blocked) looks like a
// server that accepts and then stays silent. Use WithNetworkIP to reach
// the container's own address for those. Scenarios that add a second mail
// provider on another loopback address (dns-poisoned, imap-generic-host)
// cannot start in a container: their second provider cannot bind while
// the first binds every address; Run reports that as a *StartError.
//
// RunServe starts `maillab serve` instead, on the host's network, and its
// ServeClient creates, steers and deletes any number of labs (every
// scenario, those two included) through the API:
//
//	srv, err := maillab.RunServe(ctx, maillab.DefaultImage)
//	testcontainers.CleanupContainer(t, srv)
//	l, err := srv.CreateLab(ctx, "expired-cert") // l.Settings: customer's settings, CA copied here
package maillab

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/testcontainers/testcontainers-go"

	"github.com/maillab/maillab/settings"
)

// DefaultImage is the tag scripts/build-image.sh gives the image.
const DefaultImage = "maillab:dev"

// Paths inside the container.
const (
	// ContainerLabDir is the lab directory (the image's volume).
	ContainerLabDir = "/lab"
	// ContainerSettingsFile is where the lab writes its settings JSON.
	ContainerSettingsFile = ContainerLabDir + "/settings.json"
	// ContainerCAFile is the lab CA's certificate (PEM).
	ContainerCAFile = ContainerLabDir + "/ca.pem"
)

// containerDNSPort is the lab DNS's port inside the container.
const containerDNSPort = 53

// ServiceDNS names the lab's DNS server for ServiceEndpoint and
// ContainerPort, beside the service names of package settings.
const ServiceDNS = "dns"

// ContainerPort returns the port a service (a settings service name such
// as "imaps", or ServiceDNS) listens on inside the container: its IANA
// port. ok is false for an unknown name.
func ContainerPort(service string) (port int, ok bool) {
	if service == ServiceDNS {
		return containerDNSPort, true
	}
	info, ok := settings.LookupService(service)
	return info.StandardPort, ok
}

// Container is a running maillab container.
type Container struct {
	testcontainers.Container

	scenario   string
	advertised netip.Addr
	lab        *settings.Settings // as the lab wrote it, inside the container
	client     *settings.Settings // as Settings returns it
	endpoints  map[string]string  // service → host:port for the client
	caPEM      []byte
	dir        string // host copies of the lab's files
	removeOnce sync.Once
}

// Run starts the maillab image img (DefaultImage if built by
// scripts/build-image.sh; "" with testcontainers.WithDockerfile to build
// one) and waits until the lab serves. On an error after the container
// was created the container is returned too, so that the caller can
// terminate it (testcontainers.CleanupContainer does).
func Run(ctx context.Context, img string, opts ...testcontainers.ContainerCustomizer) (*Container, error) {
	o := defaultOptions()
	for _, opt := range opts {
		if mo, ok := opt.(Option); ok {
			if err := mo(&o); err != nil {
				return nil, fmt.Errorf("maillab option: %w", err)
			}
		}
	}
	advertised, err := advertisedAddr(ctx, o)
	if err != nil {
		return nil, err
	}
	dnsHostPort, err := freeHostPort(o.publish)
	if err != nil {
		return nil, err
	}
	req := testcontainers.GenericContainerRequest{
		ContainerRequest: testcontainers.ContainerRequest{
			Image:        img,
			ExposedPorts: exposedPorts(),
			Cmd:          command(o, advertised),
			WaitingFor:   &readiness{path: ContainerSettingsFile, timeout: o.startupTimeout, poll: 100 * time.Millisecond},
		},
		Started: true,
	}
	customizers := []testcontainers.ContainerCustomizer{
		testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) {
			hc.PortBindings = portBindings(o.publish, dnsHostPort)
		}),
	}
	if o.network != "" {
		customizers = append(customizers, attachWithAddress(o.network, o.networkIP))
	}
	customizers = append(customizers, opts...)
	for _, c := range customizers {
		if err := c.Customize(&req); err != nil {
			return nil, fmt.Errorf("maillab customize: %w", err)
		}
	}
	ctr, err := testcontainers.GenericContainer(ctx, req)
	var c *Container
	if ctr != nil {
		c = &Container{Container: ctr, scenario: o.scenario, advertised: advertised}
	}
	if err != nil {
		return c, fmt.Errorf("maillab container: %w", err)
	}
	if err := c.load(ctx, o); err != nil {
		return c, err
	}
	return c, nil
}

// command is the lab's command line: bind every address of the container
// (the explicit --expose: Docker's publishing decides who reaches it),
// advertise the address clients use, standard ports, settings file.
func command(o options, advertised netip.Addr) []string {
	args := []string{"lab"}
	if o.scenario != "" {
		args = []string{"scenario", o.scenario}
	}
	return append(args,
		"--address", "0.0.0.0", "--expose",
		"--advertise", advertised.String(),
		"--standard-ports",
		"--dir", ContainerLabDir,
		"--settings-out", ContainerSettingsFile,
	)
}

// advertisedAddr is the address the lab names in its settings, DNS
// answers and certificate: the network address, else the publish
// address, else (published on every interface) the Docker host's.
func advertisedAddr(ctx context.Context, o options) (netip.Addr, error) {
	switch {
	case o.networkIP.IsValid():
		return o.networkIP, nil
	case !o.publish.IsUnspecified():
		return o.publish, nil
	}
	p, err := testcontainers.NewDockerProvider()
	if err != nil {
		return netip.Addr{}, fmt.Errorf("docker provider: %w", err)
	}
	defer p.Close()
	host, err := p.DaemonHost(ctx)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("docker host: %w", err)
	}
	return hostAddr(ctx, host)
}

// hostAddr resolves the Docker host's name to an IPv4 address.
func hostAddr(ctx context.Context, host string) (netip.Addr, error) {
	if host == "localhost" {
		return netip.MustParseAddr("127.0.0.1"), nil
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return a.Unmap(), nil
	}
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip4", host)
	if err != nil || len(addrs) == 0 {
		return netip.Addr{}, fmt.Errorf("resolve docker host %s: %w", host, err)
	}
	return addrs[0].Unmap(), nil
}

func exposedPorts() []string {
	var ports []string
	for _, info := range settings.Services {
		ports = append(ports, fmt.Sprintf("%d/tcp", info.StandardPort))
	}
	return append(ports, fmt.Sprintf("%d/tcp", containerDNSPort), fmt.Sprintf("%d/udp", containerDNSPort))
}

// portBindings publishes every exposed port on the publish address, each
// on a port Docker picks, except the DNS, which gets dnsHostPort for UDP
// and TCP alike: a resolver address is one host:port, and a client falls
// back from UDP to TCP on the same one (RFC 7766 §5).
func portBindings(publish netip.Addr, dnsHostPort int) network.PortMap {
	pm := network.PortMap{}
	for _, p := range exposedPorts() {
		port := network.MustParsePort(p)
		hostPort := ""
		if port.Num() == containerDNSPort {
			hostPort = strconv.Itoa(dnsHostPort)
		}
		pm[port] = []network.PortBinding{{HostIP: publish, HostPort: hostPort}}
	}
	return pm
}

// freeHostPort finds a port on ip that is free for TCP and UDP. Docker
// binds it a moment later; another process taking it in between makes the
// container fail to start with "port is already allocated".
func freeHostPort(ip netip.Addr) (int, error) {
	var lastErr error
	for attempt := 0; attempt < 20; attempt++ {
		ln, err := net.Listen("tcp4", net.JoinHostPort(ip.String(), "0"))
		if err != nil {
			return 0, fmt.Errorf("find a free port on %s: %w", ip, err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		pc, err := net.ListenPacket("udp4", net.JoinHostPort(ip.String(), strconv.Itoa(port)))
		ln.Close()
		if err == nil {
			pc.Close()
			return port, nil
		}
		lastErr = err
	}
	return 0, fmt.Errorf("find a port on %s free for TCP and UDP: %w", ip, lastErr)
}

// attachWithAddress attaches the container to a user-defined network with
// a fixed IPv4 address.
func attachWithAddress(networkName string, ip netip.Addr) testcontainers.CustomizeRequestOption {
	return func(req *testcontainers.GenericContainerRequest) error {
		req.Networks = append([]string{networkName}, req.Networks...)
		return testcontainers.WithEndpointSettingsModifier(func(eps map[string]*network.EndpointSettings) {
			ep := eps[networkName]
			if ep == nil {
				ep = &network.EndpointSettings{}
				eps[networkName] = ep
			}
			ep.IPAMConfig = &network.EndpointIPAMConfig{IPv4Address: ip}
		})(req)
	}
}

// load reads the lab's settings and CA, copies the files a client needs
// to the host and prepares the client's view.
func (c *Container) load(ctx context.Context, o options) error {
	data, err := c.readFile(ctx, ContainerSettingsFile)
	if err != nil {
		return err
	}
	c.lab, err = settings.Parse(ContainerSettingsFile, data)
	if err != nil {
		return err
	}
	if c.caPEM, err = c.readFile(ctx, ContainerCAFile); err != nil {
		return err
	}
	c.dir, err = os.MkdirTemp("", "maillab-container-*")
	if err != nil {
		return fmt.Errorf("host directory for the lab's files: %w", err)
	}
	v := view{addr: c.advertised, ports: map[int]int{}, dnsPort: containerDNSPort, files: map[string]string{}}
	if o.networkIP.IsValid() {
		for _, info := range settings.Services {
			v.ports[info.StandardPort] = info.StandardPort
		}
	} else {
		if err := c.publishedView(ctx, &v); err != nil {
			return err
		}
	}
	for _, path := range []string{c.lab.CAFile, messageFile(c.lab)} {
		if path == "" {
			continue
		}
		local, err := c.copyOut(ctx, path)
		if err != nil {
			return err
		}
		v.files[path] = local
	}
	if c.client, err = translate(c.lab, c.advertised, v); err != nil {
		return err
	}
	c.endpoints = map[string]string{ServiceDNS: net.JoinHostPort(v.addr.String(), strconv.Itoa(v.dnsPort))}
	for _, info := range settings.Services {
		port := info.StandardPort
		if p, ok := v.ports[port]; ok {
			port = p
		}
		c.endpoints[info.Name] = net.JoinHostPort(v.addr.String(), strconv.Itoa(port))
	}
	return nil
}

// publishedView fills v with the host side of Docker's port publishing.
func (c *Container) publishedView(ctx context.Context, v *view) error {
	inspect, err := c.Inspect(ctx)
	if err != nil {
		return fmt.Errorf("inspect maillab container: %w", err)
	}
	for port, bindings := range inspect.NetworkSettings.Ports {
		if len(bindings) == 0 {
			continue
		}
		host, err := strconv.Atoi(bindings[0].HostPort)
		if err != nil {
			return fmt.Errorf("published port %s: host port %q: %w", port, bindings[0].HostPort, err)
		}
		switch {
		case port.Num() == containerDNSPort && port.Proto() == network.UDP:
			v.dnsPort = host
		case port.Proto() == network.TCP && port.Num() != containerDNSPort:
			v.ports[int(port.Num())] = host
		}
	}
	if v.dnsPort == containerDNSPort {
		return fmt.Errorf("the lab DNS (53/udp) was not published")
	}
	return nil
}

func messageFile(s *settings.Settings) string {
	if s.Client == nil {
		return ""
	}
	return s.Client.MessageFile
}

// readFile returns a file of the container.
func (c *Container) readFile(ctx context.Context, path string) ([]byte, error) {
	rc, err := c.CopyFileFromContainer(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("copy %s from the maillab container: %w", path, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		return nil, fmt.Errorf("copy %s from the maillab container: %w", path, err)
	}
	return data, nil
}

// copyOut copies a file of the container into the host directory.
func (c *Container) copyOut(ctx context.Context, path string) (string, error) {
	data, err := c.readFile(ctx, path)
	if err != nil {
		return "", err
	}
	local := filepath.Join(c.dir, filepath.Base(path))
	if err := os.WriteFile(local, data, 0o600); err != nil {
		return "", fmt.Errorf("write %s: %w", local, err)
	}
	return local, nil
}

// Scenario returns the scenario the container runs, or "" for the plain
// lab.
func (c *Container) Scenario() string { return c.scenario }

// Settings returns what a mail client on the Docker host uses: the lab's
// host names and accounts, the published host ports, the lab's DNS as
// resolver (127.0.0.1 and its published port), and host copies of the CA
// file and of the customer's message. For a scenario these are the
// customer's (possibly wrong) settings, with ExpectedRootCause set; a
// resolver the scenario left dead on purpose (dns-wrong-server) keeps its
// port on the host's address, where nothing answers either. With
// WithNetworkIP they are the network's view instead: the container's
// address and its own ports. Each call returns a new copy.
func (c *Container) Settings(ctx context.Context) (*settings.Settings, error) {
	if c.client == nil {
		return nil, fmt.Errorf("maillab container not started")
	}
	return c.client.Clone(), nil
}

// LabSettings returns the settings file as the lab wrote it inside the
// container: the advertised address, the container's ports and paths.
// It is what a client in another container needs once its paths are
// there too.
func (c *Container) LabSettings(ctx context.Context) (*settings.Settings, error) {
	if c.lab == nil {
		return nil, fmt.Errorf("maillab container not started")
	}
	return c.lab.Clone(), nil
}

// CACertPEM returns the PEM certificate of the lab's CA, which signed the
// lab's (good) server certificates.
func (c *Container) CACertPEM(ctx context.Context) ([]byte, error) {
	if c.caPEM == nil {
		return nil, fmt.Errorf("maillab container not started")
	}
	return append([]byte(nil), c.caPEM...), nil
}

// CAFile returns the host path of a copy of the lab CA's certificate (the
// CAFile of Settings). Terminate removes it.
func (c *Container) CAFile(ctx context.Context) (string, error) {
	if c.client == nil {
		return "", fmt.Errorf("maillab container not started")
	}
	return c.client.CAFile, nil
}

// ServiceEndpoint returns "host:port" where a client of Settings reaches
// service: a settings service name (smtp, submission, submissions, imap,
// imaps, pop3, pop3s) or ServiceDNS. It is not testcontainers'
// Endpoint(ctx, proto), which names the lowest exposed port.
func (c *Container) ServiceEndpoint(ctx context.Context, service string) (string, error) {
	ep, ok := c.endpoints[service]
	if !ok {
		if _, known := ContainerPort(service); known {
			return "", fmt.Errorf("maillab container not started")
		}
		return "", fmt.Errorf("unknown service %q", service)
	}
	return ep, nil
}

// Terminate removes the host copies of the lab's files, then stops and
// removes the container (and its anonymous /lab volume).
func (c *Container) Terminate(ctx context.Context, opts ...testcontainers.TerminateOption) error {
	var rmErr error
	c.removeOnce.Do(func() {
		if c.dir != "" {
			rmErr = os.RemoveAll(c.dir)
		}
	})
	if err := c.Container.Terminate(ctx, opts...); err != nil {
		return err
	}
	return rmErr
}

var _ testcontainers.Container = (*Container)(nil)
