package scenarios

import (
	"slices"

	"github.com/maillab/maillab/faults"
	"github.com/maillab/maillab/settings"
)

// IncomingPaths are the incoming services a customer can choose: each
// protocol (IMAP, POP3) with each security mode (STARTTLS, implicit TLS),
// in the order of settings.Services.
var IncomingPaths = []string{"imap", "imaps", "pop3", "pop3s"}

// Paths returns the incoming paths the scenario's faults act on, when
// there are several of them and the customer's incoming service is not
// part of the failure itself: the scenario then fails the same way
// whichever of them the customer chose. nil means the scenario is run as
// it is (a settings-only failure, a fault on one service or on sending
// only, or an incoming service the customer's settings override on
// purpose, like POP3 pointed at the IMAP port).
func (sc *Scenario) Paths() []string {
	services := sc.Customer.Services
	if len(services) == 0 {
		services = DefaultServices
	}
	if !slices.ContainsFunc(services, isIncoming) || len(sc.Faults) == 0 {
		return nil
	}
	for name := range sc.Customer.Override {
		if isIncoming(name) {
			return nil
		}
	}
	paths := slices.Clone(IncomingPaths)
	serviceFault := false
	for _, spec := range sc.Faults {
		d, ok := faults.Lookup(spec.Type)
		if !ok || d.NoServices {
			continue // a whole-lab fault (DNS, accounts) meets every path
		}
		serviceFault = true
		acts := d.Services()
		if len(spec.Services) > 0 {
			acts = spec.Services
		}
		paths = slices.DeleteFunc(paths, func(p string) bool { return !slices.Contains(acts, p) })
	}
	if !serviceFault {
		// Only whole-lab faults: every path meets them.
		paths = slices.Clone(IncomingPaths)
	}
	if len(paths) < 2 {
		return nil
	}
	return paths
}

// OnPath returns a copy of the scenario whose customer reads mail over
// the incoming service path (one of IncomingPaths) instead of the one the
// scenario sets; the outgoing services stay.
func (sc *Scenario) OnPath(path string) *Scenario {
	c := *sc
	services := sc.Customer.Services
	if len(services) == 0 {
		services = DefaultServices
	}
	var out []string
	for _, s := range services {
		if isIncoming(s) {
			s = path
		}
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	c.Customer.Services = out
	return &c
}

func isIncoming(service string) bool {
	info, ok := settings.LookupService(service)
	return ok && info.Protocol != settings.ProtocolSMTP
}
