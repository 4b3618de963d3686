package diagnose

import (
	"encoding/json"

	"github.com/maillab/maillab/rootcause"
)

// Step names, in probe order.
const (
	StepDNS          = "dns"
	StepTCP          = "tcp"
	StepTLS          = "tls"
	StepGreeting     = "greeting"
	StepStartTLS     = "starttls"
	StepCapabilities = "capabilities"
	StepAuth         = "auth"
	StepSend         = "send"
	StepFetch        = "fetch"
)

// Severities of findings.
const (
	SeverityError   = "error"
	SeverityWarning = "warning"
	SeverityInfo    = "info"
)

// Report is the diagnosis of one account. It marshals to the JSON of
// `maillab diagnose --json`.
type Report struct {
	// RootCause is the most fundamental failing code across services, or
	// HEALTHY.
	RootCause rootcause.Code `json:"root_cause"`
	// Summary says what is wrong in plain words.
	Summary string `json:"summary"`
	// Fix says what to change, with the values found.
	Fix string `json:"fix"`
	// Services are the probed services in configuration order.
	Services []ServiceReport `json:"services"`
	// Findings are every other failure, warning and note.
	Findings []Finding `json:"findings"`
	// Interrupted is true for a run cancelled before it finished (Run
	// returned ErrInterrupted): RootCause is "" and the steps are those
	// that ran before.
	Interrupted bool `json:"interrupted,omitempty"`
}

// ServiceReport is the probe of one service.
type ServiceReport struct {
	Service  string `json:"service"`
	Host     string `json:"host"`
	Port     int    `json:"port"`
	Security string `json:"security"`
	// OK is true when every step passed.
	OK    bool   `json:"ok"`
	Steps []Step `json:"steps"`
}

// Step is one layer of a service probe.
type Step struct {
	// Step is one of dns, tcp, tls, greeting, starttls, capabilities,
	// auth, send, fetch.
	Step string `json:"step"`
	OK   bool   `json:"ok"`
	// Code is the failure's code; "" when the step passed.
	Code rootcause.Code `json:"code"`
	// Evidence is what was seen: the reply line, the certificate, the
	// timing.
	Evidence string `json:"evidence"`
	// ElapsedMS is the step's duration in milliseconds, to 0.1 ms.
	ElapsedMS float64 `json:"elapsed_ms"`
	// Skipped is true for a step that was deliberately not run (no
	// credentials, a lockout risk, no encryption). Such a step has ok
	// true (nothing failed) and says why in its evidence; "skipped" lets a
	// program tell it from a step that passed.
	Skipped bool `json:"skipped,omitempty"`
}

// Finding is a failure that is not the root cause, a warning or a note.
type Finding struct {
	// Code is a catalog code, or "" for a note that has none.
	Code     rootcause.Code `json:"code"`
	Service  string         `json:"service"`
	Severity string         `json:"severity"`
	Summary  string         `json:"summary"`
	Evidence string         `json:"evidence"`
	Fix      string         `json:"fix"`
}

// Healthy reports whether the root cause is HEALTHY.
func (r *Report) Healthy() bool { return r.RootCause == rootcause.Healthy }

// JSON returns the report as indented JSON with a final newline. Slices
// are never null.
func (r *Report) JSON() ([]byte, error) {
	c := *r
	if c.Services == nil {
		c.Services = []ServiceReport{}
	}
	if c.Findings == nil {
		c.Findings = []Finding{}
	}
	for i := range c.Services {
		if c.Services[i].Steps == nil {
			c.Services[i].Steps = []Step{}
		}
	}
	data, err := json.MarshalIndent(&c, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(data, '\n'), nil
}
