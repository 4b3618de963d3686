//go:build e2e

// Package thunderbird runs Debian's Thunderbird against lab scenarios and
// asserts what it did from evidence that needs no eyes: the lab's
// transcript (commands and TLS alerts the client sent), Thunderbird's own
// protocol log (MOZ_LOG IMAP:5,SMTP:5), and the titles and texts of its
// windows and alerts, read through Marionette, the remote protocol built
// into Thunderbird (chrome context, read only), and through xdotool.
//
// Each case starts a scenario in-process, writes a fresh profile from the
// scenario's customer settings (account, identity, incoming and outgoing
// server, the lab CA imported with certutil, the password stored in
// logins.json encrypted with NSS's PK11SDR_Encrypt by a tiny C helper),
// runs Thunderbird on an Xvfb display of its own, and keeps a screenshot
// (screen.png) in the case's temporary directory.
//
// TestThunderbirdAccountHub drives Thunderbird's own account set-up (the
// Account Hub) with a name, an address and a password against the
// set-up scenarios, its network pointed at the lab by
// network.dns.forceResolve and network.socket.forcePort.
//
// Run: go test -tags e2e -run TestThunderbird -v ./e2e/thunderbird/
// (MAILLAB_TB_SHOTS=DIR also copies each case's screenshot to DIR as
// thunderbird-CASE.png, which is how docs/screenshots/ was made).
//
// Thunderbird, Xvfb, xdotool, certutil (libnss3-tools) and gcc are Debian
// packages; a missing one skips the tests with a one-line reason, except
// when CI=true, where it fails them.
package thunderbird
