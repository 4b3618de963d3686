// Package scenarios is maillab's failure catalog as data: each scenario is
// a YAML file naming the faults the lab applies, the customer's settings
// (what the user typed into the mail client, wrong on purpose where the
// failure is theirs), the expected root-cause code, the customer's story
// and the fix. The catalog of shared/catalog.md is embedded in the binary;
// custom scenarios for a customer's issue use the same format.
package scenarios

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/maillab/maillab/faults"
	"github.com/maillab/maillab/internal/netx"
	"github.com/maillab/maillab/lab"
	"github.com/maillab/maillab/settings"
)

// Scenario is one reproducible failure.
type Scenario struct {
	// Name is the stable public name, e.g. "expired-cert".
	Name string `yaml:"name"`
	// Title is a one-line description.
	Title string `yaml:"title"`
	// Section is the seed article section(s) it reproduces ("4", "2,5"),
	// or "–" for none.
	Section string `yaml:"section"`
	// RootCause is the code of rootcause a correct diagnoser names.
	RootCause string `yaml:"root_cause"`
	// Story is what the customer reports to the helpdesk.
	Story string `yaml:"story"`
	// Cause explains the failure for a trainer.
	Cause string `yaml:"cause"`
	// Symptoms says how the failure shows in real clients.
	Symptoms string `yaml:"symptoms"`
	// Fix is what the helpdesk tells the customer or the admin to do.
	Fix string `yaml:"fix"`
	// Faults are applied to the lab.
	Faults []faults.Spec `yaml:"-"`
	// Customer describes the customer's settings.
	Customer Customer `yaml:"customer"`

	// File is where the scenario was read from ("catalog/x.yaml" for the
	// embedded catalog).
	File string `yaml:"-"`
}

// Customer is what differs in the customer's mail client from the lab's
// correct settings.
type Customer struct {
	// Services the customer's client is set up with; default submission
	// and imaps (one outgoing, one incoming server, as mail clients have).
	Services []string `yaml:"services"`
	// Override changes host, port or security of a configured service.
	Override map[string]ServiceOverride `yaml:"override"`
	// Email: the address the client sends from (an alias, a typo); empty
	// keeps the account's own. The login name stays the account's.
	Email string `yaml:"email"`
	// Username: the login name typed; "none" for a client that does not
	// log in; empty keeps the right one.
	Username string `yaml:"username"`
	// Password: the password typed; "none" for none; empty keeps the
	// right one.
	Password string `yaml:"password"`
	// Resolver: "unreachable" for an address where no DNS server runs, a
	// host:port, or empty for the lab's DNS.
	Resolver string `yaml:"resolver"`
	// Client describes the mail client's limits and what it sends.
	Client ClientSpec `yaml:"client"`
}

// ServiceOverride changes one service in the customer's settings.
type ServiceOverride struct {
	Host string `yaml:"host"`
	Port int    `yaml:"port"`
	// PortOf takes the port of another lab service (e.g. POP3 settings
	// pointed at the IMAP port).
	PortOf   string `yaml:"port_of"`
	Security string `yaml:"security"`
}

// ClientSpec is the customer's mail client.
type ClientSpec struct {
	MaxTLS    string   `yaml:"max_tls"`
	AuthMechs []string `yaml:"auth_mechs"`
	// SendTo is the recipient of the customer's message.
	SendTo string `yaml:"send_to"`
	// Message describes the message the customer sends; the lab writes it
	// as an .eml file.
	Message *MessageSpec `yaml:"message"`
}

// MessageSpec describes a generated message.
type MessageSpec struct {
	// Attachment is the attached file's name (content generated).
	Attachment string `yaml:"attachment"`
	// Size is the approximate total size, e.g. "2MiB", "300KB", 5000.
	Size ByteSize `yaml:"size"`
}

// DefaultServices is what a customer's client has unless the scenario
// says otherwise.
var DefaultServices = []string{"submission", "imaps"}

// LabFaults returns the scenario's faults for lab.Start, plus the fault
// that turns the lab's settings into the customer's.
func (sc *Scenario) LabFaults() ([]lab.Fault, error) {
	var out []lab.Fault
	for _, spec := range sc.Faults {
		f, err := faults.New(spec)
		if err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return append(out, lab.FaultFunc(sc.applyCustomer)), nil
}

// Start starts the scenario's lab. Close the returned lab when done.
func (sc *Scenario) Start(opts lab.Options) (*Running, error) {
	fs, err := sc.LabFaults()
	if err != nil {
		return nil, err
	}
	l, err := lab.Start(opts, fs...)
	if err != nil {
		return nil, fmt.Errorf("scenario %s: %w", sc.Name, err)
	}
	cs, err := l.CustomerSettings()
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("scenario %s: %w", sc.Name, err)
	}
	return &Running{Scenario: sc, Lab: l, Customer: cs}, nil
}

// Running is a started scenario.
type Running struct {
	Scenario *Scenario
	Lab      *lab.Lab
	// Customer is the customer's settings, with ExpectedRootCause set.
	Customer *settings.Settings
}

// Close stops the lab.
func (r *Running) Close() error { return r.Lab.Close() }

// applyCustomer registers the customer-settings hook and reserves what it
// needs (an unreachable resolver port) before the lab starts.
func (sc *Scenario) applyCustomer(l *lab.Lab) error {
	c := sc.Customer
	resolver := ""
	switch c.Resolver {
	case "":
	case "unreachable":
		addr, err := reserveDeadResolver(l)
		if err != nil {
			return err
		}
		resolver = addr
	default:
		resolver = c.Resolver
	}
	messageFile := ""
	if c.Client.Message != nil {
		path, err := writeMessage(l, c.Client.Message, c.Client.SendTo)
		if err != nil {
			return err
		}
		messageFile = path
	}
	l.OnCustomerSettings(func(s *settings.Settings) error {
		services := c.Services
		if len(services) == 0 {
			services = DefaultServices
		}
		all := s.Services
		s.Services = map[string]settings.Service{}
		for _, name := range services {
			svc := all[name]
			svc.Address = "" // the customer typed a name, not an address
			if o, ok := c.Override[name]; ok {
				if o.Host != "" {
					svc.Host = o.Host
				}
				if o.PortOf != "" {
					svc.Port = all[o.PortOf].Port
				}
				if o.Port != 0 {
					svc.Port = o.Port
				}
				if o.Security != "" {
					svc.Security = o.Security
				}
			}
			s.Services[name] = svc
		}
		if len(s.Accounts) > 1 {
			s.Accounts = s.Accounts[:1]
		}
		if len(s.Accounts) == 1 {
			if c.Email != "" {
				s.Accounts[0].Email = c.Email
			}
			switch c.Username {
			case "":
			case "none":
				s.Accounts[0].Username = ""
			default:
				s.Accounts[0].Username = c.Username
			}
			switch c.Password {
			case "":
			case "none":
				s.Accounts[0].Password = ""
			default:
				s.Accounts[0].Password = c.Password
			}
			if s.Accounts[0].Username == "" {
				s.Accounts[0].Password = ""
			}
		}
		if resolver != "" {
			s.Resolver = resolver
		}
		cl := &settings.Client{MaxTLS: c.Client.MaxTLS, AuthMechs: slices.Clone(c.Client.AuthMechs), SendTo: c.Client.SendTo, MessageFile: messageFile}
		if cl.MaxTLS != "" || len(cl.AuthMechs) > 0 || cl.SendTo != "" || cl.MessageFile != "" {
			s.Client = cl
		}
		s.ExpectedRootCause = sc.RootCause
		s.Scenario = sc.Name
		return nil
	})
	return nil
}

// reserveDeadResolver reserves a port where no DNS server answers: UDP
// datagrams get ICMP port unreachable, TCP connections are refused.
func reserveDeadResolver(l *lab.Lab) (string, error) {
	for attempt := 0; attempt < 10; attempt++ {
		udp, err := netx.ReserveUnreachableUDP(net.JoinHostPort(l.Address, "0"))
		if err != nil {
			return "", err
		}
		tcp, err := netx.ListenRefuser(udp.Addr().String())
		if err != nil {
			udp.Close()
			continue
		}
		l.OnClose(udp.Close)
		l.OnClose(tcp.Close)
		addr := udp.Addr().(*net.UDPAddr)
		if addr.IP.IsUnspecified() {
			// Bound on every interface (a container): tell clients the
			// advertised address.
			return net.JoinHostPort(l.Primary.AdvertisedIP, fmt.Sprint(addr.Port)), nil
		}
		return addr.String(), nil
	}
	return "", fmt.Errorf("could not reserve a port for the unreachable resolver")
}

// writeMessage writes the customer's message as an .eml file in the lab
// directory.
func writeMessage(l *lab.Lab, m *MessageSpec, to string) (string, error) {
	from := l.Primary.Accounts[0].Email
	if to == "" {
		to = from
	}
	data := BuildMessage(from, to, m.Attachment, int(m.Size))
	path := filepath.Join(l.Dir, "customer-message.eml")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return "", fmt.Errorf("write customer message: %w", err)
	}
	return path, nil
}

// validServiceNames is for error messages.
func validServiceNames() string { return strings.Join(settings.ServiceNames(), ", ") }
