package maillab

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/testcontainers/testcontainers-go"
)

// options are what the Option functions set; the zero value is the plain
// lab published on 127.0.0.1.
type options struct {
	scenario       string
	publish        netip.Addr
	network        string
	networkIP      netip.Addr
	startupTimeout time.Duration
}

func defaultOptions() options {
	return options{
		publish:        netip.MustParseAddr("127.0.0.1"),
		startupTimeout: DefaultStartupTimeout,
	}
}

// DefaultStartupTimeout is how long Run waits for the lab to write its
// settings unless WithStartupTimeout says otherwise. A lab starts in well
// under a second; the margin is for a busy Docker engine.
const DefaultStartupTimeout = 60 * time.Second

// Option configures the maillab container. Pass it to Run with the
// generic testcontainers options.
type Option func(*options) error

// Customize does nothing: an Option is read by Run itself. It exists so
// that an Option is a testcontainers.ContainerCustomizer.
func (o Option) Customize(*testcontainers.GenericContainerRequest) error { return nil }

// WithScenario runs the scenario name of maillab's failure catalog
// (`maillab scenario list`) instead of the plain, working lab. Settings
// then returns the customer's settings, with the scenario's expected root
// cause in ExpectedRootCause. An unknown name makes Run fail with the
// lab's own message in a *StartError.
func WithScenario(name string) Option {
	return func(o *options) error {
		name = strings.TrimSpace(name)
		if name == "" || strings.HasPrefix(name, "-") || strings.ContainsAny(name, " \t/") {
			return fmt.Errorf("scenario %q is not a scenario name", name)
		}
		o.scenario = name
		return nil
	}
}

// WithPublishAddress publishes the lab's ports on host address ip instead
// of 127.0.0.1. Anything but a loopback address makes the lab, which
// serves deliberately broken TLS and known passwords, reachable from the
// network: do it on purpose only. "0.0.0.0" publishes on every interface.
func WithPublishAddress(ip string) Option {
	return func(o *options) error {
		addr, err := netip.ParseAddr(ip)
		if err != nil || !addr.Is4() {
			return fmt.Errorf("publish address %q is not an IPv4 address", ip)
		}
		o.publish = addr
		return nil
	}
}

// WithNetworkIP attaches the container to the user-defined Docker network
// (by name; it must have been created with a subnet, e.g. through
// network.WithIPAM) with the fixed address ip, and makes the lab advertise
// ip: its DNS answers, its certificate and its settings name ip. Settings
// then returns the network's view (ip and the container's own ports),
// which other containers on the network and, on Linux, the Docker host
// itself reach without Docker's port publishing in between. That is what
// network-level faults such as firewall-drop need: Docker's userland
// proxy accepts connections to a port published on 127.0.0.1 itself, so a
// dropped SYN inside the container never shows on the host.
func WithNetworkIP(network, ip string) Option {
	return func(o *options) error {
		if network == "" || network == "bridge" || network == "host" || network == "none" {
			return fmt.Errorf("network %q: a fixed address needs a user-defined network", network)
		}
		addr, err := netip.ParseAddr(ip)
		if err != nil || !addr.Is4() || addr.IsLoopback() || addr.IsUnspecified() {
			return fmt.Errorf("network address %q is not a usable IPv4 address", ip)
		}
		o.network, o.networkIP = network, addr
		return nil
	}
}

// WithStartupTimeout bounds the wait for the lab to be ready (its settings
// file written); default DefaultStartupTimeout.
func WithStartupTimeout(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return errors.New("startup timeout must be positive")
		}
		o.startupTimeout = d
		return nil
	}
}

// Guards: an Option is a customizer Run can tell apart from the others.
var _ testcontainers.ContainerCustomizer = Option(nil)
