package faults

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"github.com/maillab/maillab/lab"
)

// Network faults can be made by the lab's own sockets (mode "listener",
// the default: no privileges needed) or by a real packet filter (mode
// "nftables": root only, rules in a table of the lab's own in the current
// network namespace, removed when the lab closes). Run the lab in a
// network namespace of its own (ip netns exec) to keep the rules away from
// the host's traffic.

const (
	modeListener = "listener"
	modeNftables = "nftables"
)

type packetFilterParams struct {
	Mode string `yaml:"mode"`
}

func (p *packetFilterParams) validate() error {
	switch p.Mode {
	case modeListener, modeNftables:
		return nil
	}
	return fmt.Errorf("mode %q: valid: %s (no privileges), %s (root, real packet filter)", p.Mode, modeListener, modeNftables)
}

// nftFilter installs a rule verdict ("drop" or "reject with tcp reset")
// for TCP to the selected services' addresses.
func nftFilter(l *lab.Lab, sel *Selection, verdict string) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("mode %s needs root (use mode %s without privileges)", modeNftables, modeListener)
	}
	nft, err := exec.LookPath("nft")
	if err != nil {
		return fmt.Errorf("mode %s needs the nft command (Debian package nftables): %w", modeNftables, err)
	}
	table := fmt.Sprintf("maillab_%d_%d", os.Getpid(), len(sel.Services))
	var rules bytes.Buffer
	fmt.Fprintf(&rules, "table inet %s {\n chain input {\n  type filter hook input priority -10; policy accept;\n", table)
	var ports []string
	for _, svc := range sel.Services {
		fmt.Fprintf(&rules, "  ip daddr %s tcp dport %d %s\n", svc.Provider.IP, svc.Port, verdict)
		ports = append(ports, fmt.Sprint(svc.Port))
	}
	rules.WriteString(" }\n}\n")
	cmd := exec.Command(nft, "-f", "-")
	cmd.Stdin = &rules
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("nft: %v: %s", err, strings.TrimSpace(string(out)))
	}
	l.Logger().Info("packet filter installed", "table", table, "verdict", verdict, "ports", strings.Join(ports, ","))
	l.OnClose(func() error {
		if out, err := exec.Command(nft, "delete", "table", "inet", table).CombinedOutput(); err != nil {
			return fmt.Errorf("nft delete table %s: %v: %s", table, err, strings.TrimSpace(string(out)))
		}
		return nil
	})
	return nil
}
