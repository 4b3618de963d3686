package pop3

import (
	"crypto/tls"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// commandSpec says in which states a command is valid and what runs it.
// A handler returns an error only to end the connection.
type commandSpec struct {
	states state
	handle func(c *Conn, cmd command) error
}

// commands is the command table of RFC 1939 §9, RFC 2449 §5, RFC 2595 §4
// and RFC 5034 §4.
var commands = map[string]commandSpec{
	"CAPA": {stateAuthorization | stateTransaction, (*Conn).handleCapa},
	"QUIT": {stateAuthorization | stateTransaction, (*Conn).handleQuit},
	"USER": {stateAuthorization, (*Conn).handleUser},
	"PASS": {stateAuthorization, (*Conn).handlePass},
	"AUTH": {stateAuthorization, (*Conn).handleAuth},
	"STLS": {stateAuthorization, (*Conn).handleStls},
	"STAT": {stateTransaction, (*Conn).handleStat},
	"LIST": {stateTransaction, (*Conn).handleList},
	"UIDL": {stateTransaction, (*Conn).handleUidl},
	"RETR": {stateTransaction, (*Conn).handleRetr},
	"TOP":  {stateTransaction, (*Conn).handleTop},
	"DELE": {stateTransaction, (*Conn).handleDele},
	"NOOP": {stateTransaction, (*Conn).handleNoop},
	"RSET": {stateTransaction, (*Conn).handleRset},
}

// insecureAuthText is Dovecot's refusal of a login on a plaintext
// connection when disable_plaintext_auth is set.
const insecureAuthText = "[AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) connections."

// wantArgs checks the number of arguments and answers a bad command when it
// is out of [lo, hi].
func (c *Conn) wantArgs(cmd command, lo, hi int) bool {
	if n := len(cmd.args); n < lo || n > hi {
		c.badCommand("Wrong number of arguments.")
		return false
	}
	return true
}

// handleCapa lists the capabilities (RFC 2449 §5). Capabilities announced
// in the AUTHORIZATION state stay announced after login (RFC 2449 §5, USER
// and SASL "both / no"), so USER and SASL depend on the connection's
// security, not on the state; STLS is AUTHORIZATION-only (RFC 2595 §4).
func (c *Conn) handleCapa(cmd command) error {
	if !c.wantArgs(cmd, 0, 0) {
		return nil
	}
	caps := []string{"TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING"}
	if c.userAllowed() {
		caps = append(caps, "USER")
	}
	if mechs := c.saslMechanisms(); len(mechs) > 0 {
		caps = append(caps, "SASL "+strings.Join(mechs, " "))
	}
	if c.stlsAvailable() {
		caps = append(caps, "STLS")
	}
	if impl := sanitizeLine(c.server.Implementation); impl != "" {
		caps = append(caps, "IMPLEMENTATION "+impl)
	}
	c.multiline("Capability list follows", caps, "<capabilities: "+strings.Join(caps, ", ")+">")
	return nil
}

// handleQuit ends the session. From the TRANSACTION state it enters the
// UPDATE state: the marked messages are removed (RFC 1939 §6).
func (c *Conn) handleQuit(cmd command) error {
	if !c.wantArgs(cmd, 0, 0) {
		return nil
	}
	if c.state != stateTransaction {
		c.status(true, "Logging out.")
		return errQuit
	}
	var deleted []string
	for _, e := range c.maildrop {
		if e.deleted {
			deleted = append(deleted, e.UID)
		}
	}
	if err := c.Session().Update(deleted); err != nil {
		var pe *Error
		if errors.As(err, &pe) {
			c.status(false, pe.replyText())
		} else {
			c.server.logf("update for %v: %v", c.RemoteAddr(), err)
			// RFC 1939 §6: "-ERR some deleted messages not removed".
			c.status(false, "[SYS/TEMP] Some deleted messages were not removed.")
		}
		return errQuit
	}
	count, _ := c.stat()
	if count == 0 {
		c.status(true, "Logging out (maildrop empty).")
	} else {
		c.status(true, fmt.Sprintf("Logging out (%s left).", messages(count)))
	}
	return errQuit
}

// userPassAllowed answers USER and PASS when they may not be used now:
// disabled altogether, or plaintext login on a connection without TLS.
func (c *Conn) userPassAllowed() bool {
	switch {
	case c.server.DisableUserPass:
		c.badCommand("USER/PASS authentication is disabled; use AUTH.")
		return false
	case !c.authAllowed():
		c.haveUser = false
		c.status(false, insecureAuthText)
		return false
	}
	return true
}

// handleUser records the user name for PASS (RFC 1939 §7). It answers +OK
// whether or not the user exists, so that user names cannot be probed.
func (c *Conn) handleUser(cmd command) error {
	switch {
	case !c.userPassAllowed():
		return nil
	case len(cmd.args) != 1:
		c.badCommand("Wrong number of arguments.")
		return nil
	}
	c.user, c.haveUser = cmd.args[0], true
	c.status(true, "")
	return nil
}

// handlePass logs in with the user name of the preceding USER
// (RFC 1939 §7). The password is the rest of the line: it may contain
// spaces.
func (c *Conn) handlePass(cmd command) error {
	switch {
	case !c.userPassAllowed():
		return nil
	case !c.haveUser:
		c.badCommand("No username given.")
		return nil
	case cmd.rest == "":
		c.badCommand("No password given.")
		return nil
	}
	user := c.user
	c.user, c.haveUser = "", false
	if err := c.Session().Login(user, cmd.rest); err != nil {
		c.replyError("login", err)
		return nil
	}
	c.openMaildrop()
	return nil
}

// openMaildrop takes the snapshot after a successful authentication and
// enters the TRANSACTION state (RFC 1939 §4), or stays in AUTHORIZATION if
// the maildrop cannot be opened.
func (c *Conn) openMaildrop() {
	msgs, err := c.Session().Maildrop()
	if err != nil {
		c.replyError("maildrop", err)
		return
	}
	seen := make(map[string]bool, len(msgs))
	entries := make([]entry, len(msgs))
	for i, m := range msgs {
		if !validUID(m.UID) || seen[m.UID] || m.Size < 0 {
			c.server.logf("maildrop for %v: message %d has an invalid UID %q (RFC 1939 §7: unique, 1-70 octets of 0x21-0x7E) or size %d",
				c.RemoteAddr(), i+1, m.UID, m.Size)
			c.status(false, "[SYS/PERM] Maildrop is damaged.")
			return
		}
		seen[m.UID] = true
		entries[i] = entry{Message: m}
	}
	c.maildrop = entries
	c.state = stateTransaction
	c.status(true, "Logged in.")
}

// handleStls starts TLS (RFC 2595 §4).
func (c *Conn) handleStls(cmd command) error {
	switch {
	case c.isTLS():
		c.status(false, "Command not permitted when TLS active")
		return nil
	case c.server.TLSConfig == nil:
		c.badCommand("Unknown command.")
		return nil
	case !c.wantArgs(cmd, 0, 0):
		return nil
	}
	c.status(true, "Begin TLS negotiation")
	if err := c.bw.Flush(); err != nil {
		return fmt.Errorf("write reply: %w", err)
	}
	// CVE-2011-0411: whatever the client sent after STLS arrived in
	// plaintext and must not be taken as commands from inside TLS. Drop it;
	// bytes still in flight will fail the handshake instead.
	if n := c.br.Buffered(); n > 0 {
		_, _ = c.br.Discard(n)
		c.trace(true, fmt.Sprintf("<discarded %d octets sent after STLS before TLS>", n))
	}
	tc := tls.Server(c.Conn(), c.server.TLSConfig)
	c.setDeadline(c.server.readTimeout())
	if err := tc.Handshake(); err != nil {
		c.trace(false, "<TLS handshake failed: "+err.Error()+">")
		return fmt.Errorf("stls handshake: %w", err)
	}
	c.mu.Lock()
	c.nc = tc
	c.mu.Unlock()
	c.setDeadline(0)
	c.br.Reset(tc)
	// RFC 2595 §4 / RFC 5034 §4: forget what the client said before TLS.
	c.user, c.haveUser = "", false
	c.traceTLS()
	return nil
}

// stat counts the messages not marked as deleted and their octets.
func (c *Conn) stat() (count int, size int64) {
	for _, e := range c.maildrop {
		if !e.deleted {
			count++
			size += e.Size
		}
	}
	return count, size
}

// message resolves a message-number argument (RFC 1939 §3) to an index of
// the snapshot. A malformed number is a bad command; a number that names no
// message, or a deleted one, is answered "-ERR No such message.".
func (c *Conn) message(arg string) (int, bool) {
	n, ok, err := parseNumber(arg)
	if err != nil {
		c.badCommand("Invalid message number.")
		return 0, false
	}
	if !ok || n < 1 || n > len(c.maildrop) || c.maildrop[n-1].deleted {
		c.status(false, "No such message.")
		return 0, false
	}
	return n - 1, true
}

// handleStat answers the drop listing (RFC 1939 §5 STAT).
func (c *Conn) handleStat(cmd command) error {
	if !c.wantArgs(cmd, 0, 0) {
		return nil
	}
	count, size := c.stat()
	c.status(true, fmt.Sprintf("%d %d", count, size))
	return nil
}

// handleList answers scan listings (RFC 1939 §5 LIST).
func (c *Conn) handleList(cmd command) error {
	if !c.wantArgs(cmd, 0, 1) {
		return nil
	}
	if len(cmd.args) == 1 {
		if i, ok := c.message(cmd.args[0]); ok {
			c.status(true, fmt.Sprintf("%d %d", i+1, c.maildrop[i].Size))
		}
		return nil
	}
	count, size := c.stat()
	lines := make([]string, 0, count)
	for i, e := range c.maildrop {
		if !e.deleted {
			lines = append(lines, strconv.Itoa(i+1)+" "+strconv.FormatInt(e.Size, 10))
		}
	}
	c.multiline(fmt.Sprintf("%s (%d octets)", messages(count), size), lines, fmt.Sprintf("<scan listing, %s>", messages(count)))
	return nil
}

// handleUidl answers unique-id listings (RFC 1939 §7 UIDL).
func (c *Conn) handleUidl(cmd command) error {
	if !c.wantArgs(cmd, 0, 1) {
		return nil
	}
	if len(cmd.args) == 1 {
		if i, ok := c.message(cmd.args[0]); ok {
			c.status(true, fmt.Sprintf("%d %s", i+1, c.maildrop[i].UID))
		}
		return nil
	}
	var lines []string
	for i, e := range c.maildrop {
		if !e.deleted {
			lines = append(lines, strconv.Itoa(i+1)+" "+e.UID)
		}
	}
	c.multiline("", lines, fmt.Sprintf("<unique-id listing, %s>", messages(len(lines))))
	return nil
}

// handleRetr sends a whole message (RFC 1939 §5 RETR).
func (c *Conn) handleRetr(cmd command) error {
	if !c.wantArgs(cmd, 1, 1) {
		return nil
	}
	i, ok := c.message(cmd.args[0])
	if !ok {
		return nil
	}
	return c.sendMessage(i, allLines, fmt.Sprintf("%d octets", c.maildrop[i].Size))
}

// handleTop sends the header and the first lines of the body of a message
// (RFC 1939 §7 TOP).
func (c *Conn) handleTop(cmd command) error {
	if !c.wantArgs(cmd, 2, 2) {
		return nil
	}
	lines, ok, err := parseNumber(cmd.args[1])
	if err != nil {
		c.badCommand("Invalid number of lines.")
		return nil
	}
	if !ok {
		lines = allLines // more lines than an int holds: all of them
	}
	i, ok := c.message(cmd.args[0])
	if !ok {
		return nil
	}
	return c.sendMessage(i, lines, "")
}

// sendMessage answers RETR and TOP with the message contents.
func (c *Conn) sendMessage(i, bodyLines int, text string) error {
	uid := c.maildrop[i].UID
	rc, err := c.Session().Retrieve(uid)
	if err == nil && rc == nil {
		err = errors.New("Session.Retrieve returned neither a reader nor an error")
	}
	if err != nil {
		c.replyError("retrieve "+uid, err)
		return nil
	}
	defer rc.Close()
	c.status(true, text)
	n, readErr, writeErr := writeMessage(c.bw, rc, bodyLines)
	switch {
	case writeErr != nil:
		return fmt.Errorf("write message %s: %w", uid, writeErr)
	case readErr != nil:
		// The "+OK" is out: the only honest way to fail a multi-line
		// response is to close the connection (the client sees no ".").
		c.server.logf("retrieve %s for %v: %v", uid, c.RemoteAddr(), readErr)
		c.trace(false, "<message read failed; closing connection>")
		return fmt.Errorf("read message %s: %w", uid, readErr)
	}
	what := "message body"
	if bodyLines != allLines {
		what = "message top"
	}
	c.trace(false, fmt.Sprintf("<%s, %d octets>", what, n))
	return nil
}

// handleDele marks a message as deleted (RFC 1939 §5 DELE).
func (c *Conn) handleDele(cmd command) error {
	if !c.wantArgs(cmd, 1, 1) {
		return nil
	}
	n, ok, err := parseNumber(cmd.args[0])
	if err != nil {
		c.badCommand("Invalid message number.")
		return nil
	}
	switch {
	case !ok || n < 1 || n > len(c.maildrop):
		c.status(false, "No such message.")
	case c.maildrop[n-1].deleted:
		c.status(false, fmt.Sprintf("Message %d already deleted.", n))
	default:
		c.maildrop[n-1].deleted = true
		c.status(true, fmt.Sprintf("Message %d deleted.", n))
	}
	return nil
}

// handleNoop does nothing (RFC 1939 §5 NOOP).
func (c *Conn) handleNoop(cmd command) error {
	if c.wantArgs(cmd, 0, 0) {
		c.status(true, "")
	}
	return nil
}

// handleRset unmarks every deleted message (RFC 1939 §5 RSET).
func (c *Conn) handleRset(cmd command) error {
	if !c.wantArgs(cmd, 0, 0) {
		return nil
	}
	for i := range c.maildrop {
		c.maildrop[i].deleted = false
	}
	count, size := c.stat()
	c.status(true, fmt.Sprintf("Maildrop has %s (%d octets).", messages(count), size))
	return nil
}

// messages says "1 message" or "n messages".
func messages(n int) string {
	if n == 1 {
		return "1 message"
	}
	return strconv.Itoa(n) + " messages"
}
