package diagnose

import (
	"regexp"
	"slices"
	"strings"

	"github.com/maillab/maillab/diagnose/wire"
	"github.com/maillab/maillab/rootcause"
)

// stage is where in a session a reply was received; the same reply means
// different things at different stages (a 530 to AUTH asks for TLS, a 530
// to MAIL FROM asks for a login).
type stage string

// Stages of the reply tables.
const (
	stageGreeting stage = "greeting"
	stageStartTLS stage = "starttls"
	stageAuth     stage = "auth"
	stageMail     stage = "mail"
	stageRcpt     stage = "rcpt"
	stageData     stage = "data"
	stageDataEnd  stage = "dataend"
	stageSelect   stage = "select"
	stageFetch    stage = "fetch"
)

var allStages = []stage{stageGreeting, stageStartTLS, stageAuth, stageMail, stageRcpt, stageData, stageDataEnd, stageSelect, stageFetch}

// verdict is the classification of one reply.
type verdict struct {
	code rootcause.Code
	// meaning says in plain words what the reply means.
	meaning string
	// rule names the table entry that matched (for tests).
	rule string
}

// rule is one entry of a reply table. Every non-zero criterion must match.
type rule struct {
	name   string
	stages []stage
	// codes are SMTP reply codes; class is the first digit (4 or 5).
	codes []int
	class int
	// enhanced are RFC 3463 "subject.detail" pairs such as "7.8".
	enhanced []string
	// respCodes are IMAP (RFC 5530) or POP3 (RFC 2449/3206) response codes.
	respCodes []string
	// text matches the reply text, case-insensitively.
	text    *regexp.Regexp
	code    rootcause.Code
	meaning string
}

func (r rule) matches(st stage, code int, ec wire.EnhancedCode, respCode, text string) bool {
	if len(r.stages) > 0 && !slices.Contains(r.stages, st) {
		return false
	}
	if len(r.codes) > 0 && !slices.Contains(r.codes, code) {
		return false
	}
	if r.class != 0 && code/100 != r.class {
		return false
	}
	if len(r.enhanced) > 0 {
		if ec.IsZero() || !slices.ContainsFunc(r.enhanced, func(p string) bool { return p == ecKey(ec) }) {
			return false
		}
	}
	if len(r.respCodes) > 0 && !slices.Contains(r.respCodes, respCode) {
		return false
	}
	if r.text != nil && !r.text.MatchString(text) {
		return false
	}
	return true
}

func ecKey(ec wire.EnhancedCode) string {
	return strings.TrimPrefix(ec.String(), string(rune('0'+ec.Class))+".")
}

func re(s string) *regexp.Regexp { return regexp.MustCompile("(?i)" + s) }

// Wording shared by the three protocols' login failures. Each pattern
// cites where the wording comes from; testdata/replies holds the recorded
// replies that exercise them.
var (
	// Microsoft 365 "535 5.7.139 Authentication unsuccessful, basic
	// authentication is disabled" / "SmtpClientAuthentication is disabled
	// for the Tenant" / "user is locked by your organization's security
	// defaults policy" (learn.microsoft.com, SMTP AUTH troubleshooting);
	// Gmail "Application-specific password required", "Please log in via
	// your web browser", "[WEBALERT ...] Web login required"
	// (support.google.com/mail/answer/7126229).
	basicDisabledText = re(`basic auth(entication)? (is )?(disabled|blocked|not (allowed|supported))|smtpclientauthentication is disabled|security defaults|legacy authentication|did not meet the criteria|application-specific password|app(lication)? password (is )?required|log ?in (via|with|using) your (web )?browser|web login required|oauth ?2?( is)? required|modern authentication|not enabled for (imap|pop3?|smtp)`)
	// RFC 4954 §6 "A password transition is needed"; Dovecot/PAM
	// "Password expired"; Exchange "password has expired".
	expiredText = re(`password (has |is )?expired|expired password|password.{0,20}expir|password transition is needed|must change (your |the )?password|change your password`)
	// RFC 7372 §3.3 "User account disabled"; Exchange "account is
	// locked"; Gmail "454 4.7.0 Too many login attempts"; Dovecot's
	// passdb nologin "Login disabled for this user" (recorded in
	// e2e/testdata/recorded/account-disabled.txt); fail2ban-like wording.
	lockedText = re(`locked|account (is |has been )?(disabled|suspended|blocked|deactivated)|(login|logon|user|mailbox) (is |has been )?(disabled|suspended|deactivated)|user account disabled|too many (failed |invalid |bad |unsuccessful )?(login|logon|authentication|auth|sign-in) (attempts|failures|tries)|temporarily blocked`)
	// Postfix "530 5.7.0 Must issue a STARTTLS command first"; Dovecot
	// "Plaintext authentication disallowed on non-secure (SSL/TLS)
	// connections"; RFC 4954 §6 "538 5.7.11 Encryption required for
	// requested authentication mechanism".
	requiresTLSText = re(`starttls|plaintext auth(entication)? (is )?(disallowed|not allowed|disabled)|encryption (is )?required|requires? (an )?(encrypted|secure|tls|ssl)|tls (is )?required|ssl/tls required|must use (tls|ssl)`)
	// Postfix "authentication failed"; Gmail "Username and Password not
	// accepted", "Invalid credentials"; Exim "Incorrect authentication
	// data"; Exchange "the user credentials were incorrect", "LOGIN
	// failed"; Courier "Login failed".
	failedText = re(`authentication (failed|unsuccessful|failure)|(username|user name) and password not accepted|invalid (credentials|user ?name or password|login)|incorrect (authentication data|password|credentials|user ?name)|credentials were incorrect|bad credentials|login (failed|incorrect)|authenticate failed|auth(entication)? credentials invalid`)
)

// authRules classify a refused login (SMTP AUTH, IMAP LOGIN/AUTHENTICATE,
// POP3 USER/PASS/AUTH). Order matters: specific wording beats codes,
// because providers reuse codes (5.7.139 is both "basic auth disabled" and
// "credentials incorrect" at Microsoft, 5.7.8 carries expiry text at some).
var authRules = []rule{
	{name: "imap-unavailable", respCodes: []string{"UNAVAILABLE", "SYS/TEMP", "IN-USE"}, code: rootcause.Intermittent, meaning: "the server's login service failed temporarily"},
	{name: "imap-expired", respCodes: []string{"EXPIRED"}, code: rootcause.AuthPasswordExpired, meaning: "the password is right but has expired (RFC 5530 EXPIRED)"},
	{name: "imap-privacyrequired", respCodes: []string{"PRIVACYREQUIRED"}, code: rootcause.AuthRequiresTLS, meaning: "the server refuses to log in without encryption (RFC 5530 PRIVACYREQUIRED)"},
	{name: "imap-contactadmin", respCodes: []string{"CONTACTADMIN"}, code: rootcause.AuthAccountLocked, meaning: "the account is blocked until an administrator acts (RFC 5530 CONTACTADMIN)"},
	{name: "imap-webalert", respCodes: []string{"WEBALERT"}, code: rootcause.AuthBasicDisabled, meaning: "the provider requires a login in the web browser first"},
	{name: "basic-disabled-text", text: basicDisabledText, code: rootcause.AuthBasicDisabled, meaning: "password login is disabled for this account (OAuth2 or an app password is required)"},
	{name: "expired-text", text: expiredText, code: rootcause.AuthPasswordExpired, meaning: "the password is right but has expired"},
	{name: "smtp-x.7.12", enhanced: []string{"7.12"}, code: rootcause.AuthPasswordExpired, meaning: "a password transition is needed (RFC 4954 §6, X.7.12)"},
	{name: "locked-text", text: lockedText, code: rootcause.AuthAccountLocked, meaning: "the account is locked or disabled"},
	{name: "smtp-x.7.13", enhanced: []string{"7.13"}, code: rootcause.AuthAccountLocked, meaning: "the user account is disabled (RFC 7372 X.7.13)"},
	{name: "requires-tls-text", text: requiresTLSText, code: rootcause.AuthRequiresTLS, meaning: "the server refuses to log in without encryption"},
	{name: "smtp-x.7.11", enhanced: []string{"7.11", "7.10"}, code: rootcause.AuthRequiresTLS, meaning: "encryption is required for this mechanism (RFC 4954 §6 / RFC 5248)"},
	{name: "smtp-530-x.7.0", codes: []int{530}, code: rootcause.AuthRequiresTLS, meaning: "the server requires STARTTLS before AUTH (RFC 3207 §4)"},
	{name: "smtp-538", codes: []int{538, 523}, code: rootcause.AuthRequiresTLS, meaning: "encryption is required before AUTH"},
	// Dovecot "Unsupported authentication mechanism." (IMAP NO [ALERT],
	// POP3 -ERR [AUTH]) and, through Postfix's Dovecot SASL, "535 5.7.8
	// Error: authentication failed: Invalid authentication mechanism"
	// (recorded in e2e/testdata/recorded/auth-mech-mismatch.txt): the
	// mechanism, not the password, was refused, despite [AUTH] and 5.7.8.
	{name: "mech-unsupported-text", text: re(`(unsupported|unknown|invalid|unrecogni[sz]ed|unavailable) (sasl |authentication |auth )?(mechanism|mech|type|method)`), code: rootcause.AuthMechUnsupported, meaning: "the server does not support the authentication mechanism the client chose"},
	{name: "pop3-login-delay", respCodes: []string{"LOGIN-DELAY", "LIMIT"}, code: rootcause.SMTPRateLimited, meaning: "the server refuses logins this soon after the last one"},
	{name: "imap-authfailed", respCodes: []string{"AUTHENTICATIONFAILED", "AUTHORIZATIONFAILED"}, code: rootcause.AuthFailed, meaning: "the server rejected the user name or password (RFC 5530 AUTHENTICATIONFAILED)"},
	{name: "pop3-auth", respCodes: []string{"AUTH"}, code: rootcause.AuthFailed, meaning: "the server rejected the user name or password (RFC 3206 [AUTH])"},
	// nginx's mail proxy "-ERR internal server error", "* BAD internal
	// server error", "451 4.3.2 Internal server error" (ngx_mail_handler.c)
	// when its auth_http service or the backend cannot be reached.
	{name: "temporary-text", text: re(`temporar(y|ily)|try again later|service (is )?(temporarily )?unavailable|internal server error`), code: rootcause.Intermittent, meaning: "the server's login service failed temporarily"},
	{name: "failed-text", text: failedText, code: rootcause.AuthFailed, meaning: "the server rejected the user name or password"},
	{name: "smtp-x.7.9", enhanced: []string{"7.9", "7.14", "7.139"}, code: rootcause.AuthBasicDisabled, meaning: "the server refuses password logins for this account (X.7.9 / X.7.14 / X.7.139)"},
	{name: "smtp-534", codes: []int{534}, code: rootcause.AuthBasicDisabled, meaning: "the mechanism is too weak for the server (534, RFC 4954 §6): it wants OAuth2 or an app password"},
	{name: "smtp-x.7.8", enhanced: []string{"7.8", "7.3", "7.1", "7.0"}, class: 5, code: rootcause.AuthFailed, meaning: "the server rejected the credentials"},
	{name: "smtp-535", codes: []int{535}, code: rootcause.AuthFailed, meaning: "the server rejected the credentials (535)"},
	{name: "smtp-504", codes: []int{504}, code: rootcause.AuthMechUnsupported, meaning: "the server does not support that authentication mechanism"},
	{name: "not-enabled-text", text: re(`auth(entication)? (is )?not (enabled|available|supported|allowed)|unrecognized authentication`), code: rootcause.AuthMechUnsupported, meaning: "the server does not offer login here"},
	// nginx's mail proxy answers a login command it does not take in this
	// state "BAD invalid command" / "-ERR invalid command"
	// (ngx_mail_imap_handler.c, ngx_mail_pop3_handler.c): a method left
	// out of imap_auth/pop3_auth, or any login before STARTTLS with
	// "starttls only" (recorded in e2e/testdata/recorded/nginx-starttls-only.txt,
	// where the probes see LOGINDISABLED and the missing USER capability
	// first). OpenSMTPD answers AUTH where it offers none (before TLS, or
	// on a listener without auth) "503 5.5.1 Invalid command: Command not
	// supported" (recorded in e2e/testdata/recorded/opensmtpd-starttls-required.txt).
	// Never a wrong password: none was checked.
	{name: "invalid-command-text", text: re(`^\s*invalid command\.?\s*$|invalid command: command not supported`), code: rootcause.AuthMechUnsupported, meaning: "the server does not take this login command here (a method it does not offer, or a login before STARTTLS)"},
	{name: "smtp-4xx", class: 4, code: rootcause.Intermittent, meaning: "the server's login service failed temporarily"},
	{name: "any-other", code: rootcause.AuthFailed, meaning: "the server refused the login"},
}

// sendRules classify SMTP replies at greeting, MAIL, RCPT, DATA and after
// the message.
var sendRules = []rule{
	// Microsoft 365 "421 4.7.66 TLS 1.0 and 1.1 are not supported. Please
	// upgrade/update your client to support TLS 1.2" (after STARTTLS).
	{name: "old-tls-text", text: re(`tls 1\.[01]( and 1\.1)? (are|is) not supported|upgrade.{0,30}tls 1\.2|4\.7\.66`), code: rootcause.TLSClientOutdated, meaning: "the server refuses the client's old TLS version"},
	// Exchange Online sending limits ("554 5.2.0 STOREDRV.Submission.
	// Exception:SubmissionQuotaExceededException", "432 4.3.2
	// STOREDRV.ClientSubmit; sender thread limit exceeded").
	{name: "submission-quota", text: re(`submissionquotaexceeded|sender thread limit|sending (quota|limit)|message rate limit|recipient rate limit|daily (user )?sending`), code: rootcause.SMTPRateLimited, meaning: "the account's sending limit is exhausted"},
	// RFC 3463 X.2.2 "Mailbox full"; Postfix/Dovecot LMTP "Quota
	// exceeded (mailbox for user is full)"; Gmail "over quota";
	// Exchange "QuotaExceededException".
	{name: "mailbox-full", enhanced: []string{"2.2"}, code: rootcause.MailboxFull, meaning: "the recipient's mailbox is full"},
	{name: "mailbox-full-text", text: re(`mailbox (is )?full|over ?quota|quota ?exceeded|exceeded.{0,20}quota|mailbox.{0,30}(size|storage) limit|insufficient storage.{0,30}(mailbox|user)`), code: rootcause.MailboxFull, meaning: "the recipient's mailbox is full"},
	// RFC 1870 §6: 552 5.3.4 message size exceeds fixed maximum; RFC 3463
	// X.2.3 message length exceeds administrative limit.
	{name: "size-enhanced", enhanced: []string{"3.4", "2.3"}, code: rootcause.SMTPMessageTooLarge, meaning: "the message is larger than the server accepts"},
	{name: "size-text", text: re(`message size|size limit|too (big|large)|exceeds? (the )?(maximum|max|fixed|size)|maximum (message )?size`), code: rootcause.SMTPMessageTooLarge, meaning: "the message is larger than the server accepts"},
	// Postfix "554 5.7.1 Service unavailable; Client host [192.0.2.1]
	// blocked using zen.spamhaus.org"; Exim "rejected because 192.0.2.1
	// is in a black list at ..."; Exchange "5.7.606-649 Access denied,
	// banned sending IP"; Gmail "The IP you're using to send mail is not
	// authorized to send email directly to our servers".
	{name: "blocklist-text", text: re(`blocked using|block ?list|black ?list|deny ?list|\brbl\b|dnsbl|spamhaus|spamcop|barracudacentral|sorbs|is listed|listed (at|on|in|by)|client host rejected|banned sending ip|your ip|ip address.{0,40}(blocked|rejected|not allowed|listed|block)|not authorized to send.{0,30}directly|poor reputation|(bad|low) reputation|access denied.{0,30}(ip|network)|traffic not accepted from this ip`), code: rootcause.SMTPClientBlocked, meaning: "the server refuses this computer's IP address"},
	// The sender refused. Postfix reject_sender_login_mismatch "553 5.7.1
	// <x@y>: Sender address rejected: not owned by user z" (usually at
	// RCPT: smtpd_delay_reject) and reject_unknown_sender_domain "450 4.1.8
	// <x@y>: Sender address rejected: Domain not found"; Exchange Online
	// "550 5.7.60 SMTP; Client does not have permissions to send as this
	// sender"; "550 5.7.27 mailfrom domain not configured for mail"; RFC
	// 3463 X.1.7/X.1.8 (bad sender's mailbox / system address), RFC 7505
	// X.7.27 (sender address has null MX); Exim "Sender verify failed".
	{name: "sender-text", stages: []stage{stageMail, stageRcpt}, text: re(`sender address rejected|not owned by (user|you)|send as this sender|permissions? to send as|not (allowed|authorized|authorised|permitted) to send (as|from|on behalf)|mail ?from domain not configured|sender (domain|address) (not found|unknown|not configured|does not exist|must exist)|sender verify failed`), code: rootcause.SMTPSenderRejected, meaning: "the server refuses the sender address (not one this login may send as, or its domain is not accepted)"},
	{name: "sender-enhanced", stages: []stage{stageMail, stageRcpt}, enhanced: []string{"1.7", "1.8", "7.60", "7.27"}, code: rootcause.SMTPSenderRejected, meaning: "the server refuses the sender address (RFC 3463 X.1.7/X.1.8, X.7.27, Exchange 5.7.60)"},
	// Postfix "554 5.7.1 <x@y>: Relay access denied"; Exchange "550 5.7.1
	// Unable to relay", "530 5.7.57 Client not authenticated to send mail";
	// qmail "553 sorry, that domain isn't in my list of allowed
	// rcpthosts"; Courier "513 Relaying denied."; Sendmail "550 5.7.1
	// ... Relaying denied".
	{name: "relay-text", text: re(`relay(ing)? (access )?(denied|not permitted|not allowed|prohibited|refused)|unable to relay|not permitted to relay|we do not relay|allowed rcpthosts|relay not permitted|no relaying`), code: rootcause.SMTPRelayDenied, meaning: "the server refuses to relay mail for this client"},
	{name: "auth-required", stages: []stage{stageMail, stageRcpt, stageData}, enhanced: []string{"7.57"}, code: rootcause.SMTPRelayDenied, meaning: "the server accepts mail only from logged-in clients"},
	{name: "auth-required-text", stages: []stage{stageMail, stageRcpt, stageData}, text: re(`auth(entication)? (is )?required|not authenticated|must (be )?authenticate|authenticate first|not logged in|log ?in first`), code: rootcause.SMTPRelayDenied, meaning: "the server accepts mail only from logged-in clients"},
	{name: "mail-530", stages: []stage{stageMail, stageRcpt}, codes: []int{530}, code: rootcause.SMTPRelayDenied, meaning: "the server accepts mail only from logged-in clients"},
	// RFC 3463 X.6.x (message content or media); amavis/ClamAV "554
	// 5.7.0 Reject, id=... - INFECTED"; Exim "550 This message contains
	// a virus"; Postfix header/body_checks "550 5.7.1 Message content
	// rejected"; Gmail "552-5.7.0 This message was blocked because its
	// content presents a potential security issue".
	{name: "content-enhanced", enhanced: []string{"6.0", "6.1", "6.2", "6.3", "6.4", "6.5", "6.6", "6.7", "6.8", "6.9", "6.211"}, code: rootcause.SMTPContentRejected, meaning: "the server refused the message for its content"},
	{name: "content-text", text: re(`attachment|content|virus|infected|malware|spam|executable|file ?type|file extension|banned (file|name)|prohibited (file|attachment)|blocked file|phish|suspicious|security issue|message rejected`), code: rootcause.SMTPContentRejected, meaning: "the server refused the message for its content"},
	// Postgrey "450 4.2.0 ... Greylisted, see http://postgrey...";
	// Postfix "421 4.7.0 ... Error: too many connections from ...";
	// Exchange "451 4.7.500 Server busy. Please try again later"; Gmail
	// "421-4.7.0 Try again later, closing connection"; Exim "451 The
	// server has reached its limit for processing requests from your host".
	{name: "rate-text", class: 4, text: re(`grey ?list|gray ?list|try again later|too many|rate|\brate\b|throttl|slow down|temporarily (deferred|rejected)|please retry|server busy|limit for processing|concurrent`), code: rootcause.SMTPRateLimited, meaning: "the server is throttling this client (rate limit or greylisting)"},
	{name: "rate-x.7", class: 4, enhanced: []string{"7.0", "7.1", "7.500", "7.28", "3.2", "4.5"}, code: rootcause.SMTPRateLimited, meaning: "the server deferred the message (throttling or greylisting)"},
	{name: "greeting-554", stages: []stage{stageGreeting}, codes: []int{554}, code: rootcause.SMTPClientBlocked, meaning: "the server refuses to talk to this computer's IP address (554 greeting, RFC 5321 §3.1)"},
	{name: "greeting-421", stages: []stage{stageGreeting}, codes: []int{421}, code: rootcause.SMTPRateLimited, meaning: "the server refuses new connections for now (421 greeting)"},
	// RFC 3463 X.1.x: bad destination address, e.g. Postfix "550 5.1.1
	// <x@y>: Recipient address rejected: User unknown in virtual mailbox
	// table". No catalog code fits better than "not allowed".
	{name: "rcpt-unknown", stages: []stage{stageRcpt}, class: 5, enhanced: []string{"1.1", "1.0", "1.2", "1.3", "1.6", "1.10"}, code: rootcause.SMTPRelayDenied, meaning: "the server does not accept this recipient address (it does not exist or is not allowed)"},
	{name: "rcpt-5xx", stages: []stage{stageRcpt}, class: 5, code: rootcause.SMTPRelayDenied, meaning: "the server refuses this recipient"},
	{name: "mail-5xx", stages: []stage{stageMail}, class: 5, code: rootcause.SMTPRelayDenied, meaning: "the server refuses this sender address"},
	{name: "data-5xx", stages: []stage{stageData, stageDataEnd}, class: 5, code: rootcause.SMTPContentRejected, meaning: "the server refused the message"},
	{name: "any-4xx", class: 4, code: rootcause.SMTPRateLimited, meaning: "the server deferred the message temporarily"},
	{name: "any-5xx", class: 5, code: rootcause.SMTPClientBlocked, meaning: "the server refuses service to this client"},
}

// mailboxRules classify IMAP and POP3 replies after login (EXAMINE, FETCH,
// STAT, UIDL) and refusing greetings.
var mailboxRules = []rule{
	{name: "overquota", respCodes: []string{"OVERQUOTA"}, code: rootcause.MailboxFull, meaning: "the mailbox is over its quota (RFC 5530 OVERQUOTA)"},
	{name: "quota-text", text: re(`quota|mailbox (is )?full|storage limit`), code: rootcause.MailboxFull, meaning: "the mailbox is over its quota"},
	{name: "limit", respCodes: []string{"LIMIT", "LOGIN-DELAY"}, code: rootcause.SMTPRateLimited, meaning: "the server limits connections or logins (RFC 5530 LIMIT)"},
	{name: "too-many-text", text: re(`too many|connection limit|maximum number of connections|\brate\b`), code: rootcause.SMTPRateLimited, meaning: "the server limits connections from this client"},
	{name: "blocked-text", text: re(`blocked|block ?list|black ?list|not allowed from your (ip|address)|access denied`), code: rootcause.SMTPClientBlocked, meaning: "the server refuses this computer's IP address"},
	{name: "in-use", respCodes: []string{"INUSE", "IN-USE"}, code: rootcause.Intermittent, meaning: "the mailbox is in use by another session"},
	{name: "other", code: rootcause.Intermittent, meaning: "the server failed the request"},
}

func classify(rules []rule, st stage, code int, ec wire.EnhancedCode, respCode, text string) verdict {
	for _, r := range rules {
		if r.matches(st, code, ec, respCode, text) {
			return verdict{code: r.code, meaning: r.meaning, rule: r.name}
		}
	}
	return verdict{}
}

// classifySMTPAuth classifies a refused SMTP AUTH.
func classifySMTPAuth(rep wire.Reply) verdict {
	return classify(authRules, stageAuth, rep.Code, rep.Enhanced, "", rep.Text())
}

// unexpectedReply is the verdict on a reply no table covers (a 2xx or 3xx
// where a refusal was expected, say).
var unexpectedReply = verdict{code: rootcause.WrongProtocol, meaning: "the server answered with a reply that makes no sense at this point", rule: "unexpected"}

// classifySMTPSend classifies a refusal at st (greeting, mail, rcpt, data,
// dataend).
func classifySMTPSend(st stage, rep wire.Reply) verdict {
	if v := classify(sendRules, st, rep.Code, rep.Enhanced, "", rep.Text()); v.code != "" {
		return v
	}
	return unexpectedReply
}

// classifyIMAP classifies a NO/BAD/BYE at st (auth, greeting, select,
// fetch).
func classifyIMAP(st stage, resp wire.Response) verdict {
	if st == stageAuth {
		v := classify(authRules, st, 0, wire.EnhancedCode{}, resp.Code, resp.CodeArgs+" "+resp.Text)
		if v.code == "" {
			v = verdict{code: rootcause.AuthFailed, meaning: "the server refused the login", rule: "imap-no"}
		}
		return v
	}
	return classify(mailboxRules, st, 0, wire.EnhancedCode{}, resp.Code, resp.Text)
}

// classifyPOP3 classifies an -ERR at st (auth, greeting, select, fetch).
func classifyPOP3(st stage, s wire.Status) verdict {
	if st == stageAuth {
		v := classify(authRules, st, 0, wire.EnhancedCode{}, s.Code, s.Text)
		if v.code == "" {
			v = verdict{code: rootcause.AuthFailed, meaning: "the server refused the login", rule: "pop3-err"}
		}
		return v
	}
	return classify(mailboxRules, st, 0, wire.EnhancedCode{}, s.Code, s.Text)
}
