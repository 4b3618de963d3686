package faults_test

import (
	"bufio"
	"errors"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/maillab/maillab/faults"
	"github.com/maillab/maillab/lab"
)

func start(t *testing.T, specs ...faults.Spec) *lab.Lab {
	t.Helper()
	var fs []lab.Fault
	for _, s := range specs {
		f, err := faults.New(s)
		if err != nil {
			t.Fatalf("faults.New(%s): %v", s.Type, err)
		}
		fs = append(fs, f)
	}
	l, err := lab.Start(lab.Options{CloseGrace: 100 * time.Millisecond}, fs...)
	if err != nil {
		t.Fatalf("lab.Start with %v: %v", specs, err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// TestEveryFaultApplies starts a lab with each registered fault at its
// defaults: none may fail to apply or keep the lab from starting.
func TestEveryFaultApplies(t *testing.T) {
	for _, name := range faults.Names() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			start(t, faults.Spec{Type: name})
		})
	}
}

func TestDefinitionsAreDocumented(t *testing.T) {
	for _, d := range faults.Definitions() {
		if d.Summary == "" || d.Layer == "" {
			t.Errorf("fault %s lacks a summary or layer", d.Name)
		}
	}
}

func greeting(t *testing.T, addr string) (string, error) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	return bufio.NewReader(c).ReadString('\n')
}

func TestConnectionLimit(t *testing.T) {
	l := start(t, faults.Spec{Type: "connection-limit", Services: []string{"submission"}})
	line, err := greeting(t, l.Service("submission").Addr())
	if err != nil || !strings.HasPrefix(line, "421 4.7.0 mail.example.test Error: too many connections from 127.0.0.1") {
		t.Errorf("greeting = %q, %v; want 421 4.7.0 too many connections", line, err)
	}
	if line, _ := greeting(t, l.Service("smtp").Addr()); !strings.HasPrefix(line, "220 ") {
		t.Errorf("unselected service greeting = %q, want 220", line)
	}
}

func TestResetAfterBytes(t *testing.T) {
	l := start(t, faults.Spec{Type: "reset-after-bytes", Services: []string{"imap"}})
	// The greeting and the RST follow the accept at once, so the RST may
	// beat the client's connect() itself ("connect: connection reset by
	// peer"): that is a reset too, but try again to see the bytes.
	var c net.Conn
	var err error
	for attempt := 0; attempt < 50; attempt++ {
		if c, err = net.Dial("tcp", l.Service("imap").Addr()); err == nil || !errors.Is(err, syscall.ECONNRESET) {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 4096)
	var got []byte
	for {
		n, err := c.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			if !errors.Is(err, syscall.ECONNRESET) {
				t.Errorf("read error %v, want connection reset", err)
			}
			break
		}
	}
	if string(got) != "* OK [CAPA" {
		t.Errorf("received %q before the reset, want the first 10 bytes of the greeting", got)
	}
}

func TestDNSNXDomain(t *testing.T) {
	l := start(t, faults.Spec{Type: "dns-nxdomain"})
	c := &dns.Client{Timeout: 2 * time.Second}
	for name, want := range map[string]int{"mail.example.test.": dns.RcodeNameError, "example.test.": dns.RcodeSuccess} {
		m := new(dns.Msg)
		m.SetQuestion(name, dns.TypeMX)
		if name == "mail.example.test." {
			m.SetQuestion(name, dns.TypeA)
		}
		r, _, err := c.Exchange(m, l.DNSAddr)
		if err != nil || r.Rcode != want {
			t.Errorf("%s: rcode %v, err %v; want %s", name, r, err, dns.RcodeToString[want])
		}
	}
}
