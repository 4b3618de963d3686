//go:build e2e

// Package realservers runs maillab's diagnoser against real Dovecot and
// Postfix servers from Debian packages, started by the test on 127.0.0.1
// with configuration generated into a temporary directory.
//
// The harness never touches /etc/dovecot, /etc/postfix or the system's
// running services: each Dovecot instance runs as `dovecot -F -c CONF` with
// its own base_dir and state_dir, and Postfix runs its master(8) with its own
// config_directory, queue_directory and data_directory. Users come from a
// Dovecot passwd-file; Postfix authenticates SASL clients through Dovecot's
// auth socket (smtpd_sasl_type = dovecot) and delivers to Maildir with
// virtual(8), where Dovecot reads the messages over IMAP and POP3. A small
// authoritative DNS server (github.com/miekg/dns) serves the test domain's A,
// MX and RFC 6186 SRV records.
//
// Every client reaches the servers through a PROXY protocol front
// (HAProxy's proxy-protocol.txt, version 1) that names a loopback address
// of its own as the client (127.0.1.N, 127.0.2.N). Without it Dovecot would
// treat every connection as coming from its own host and so as secured
// (login-common: remote IP equal to local IP), and would never refuse a
// plaintext login the way it refuses a real remote client. The fronts only
// prepend the header and copy bytes: every byte a client reads is the
// server's own. Distinct client addresses per test case also keep Dovecot's
// per-IP authentication penalty of one case from slowing another.
//
// The servers need root (Postfix and Dovecot drop privileges to their
// system users). The tests skip with a one-line reason when not root or
// when the packages are missing, except when CI=true, where they fail.
//
// Other families run beside them (families.go): nginx's mail proxy and
// HAProxy as a TLS front before Dovecot, and OpenSMTPD and Courier (IMAP,
// POP3), which conflict with Postfix as packages and so run unpacked from
// their .debs in mount namespaces of their own (opensmtpd.go, courier.go,
// deb.go). TestLoadedRealServers
// runs every case again 8 at a time on loaded CPUs. docs/realservers.md
// lists the families, the cases and how to re-record.
//
// Run: go test -race -tags e2e ./e2e/realservers/...
// Re-record the server transcripts under e2e/testdata/recorded with -record.
package realservers
