package diagnose

import (
	"context"
	"fmt"
	"time"

	"github.com/maillab/maillab/rootcause"
)

// startTLSHandshake runs the TLS handshake after the server accepted
// STARTTLS (reply is its answer, for evidence) and records the starttls
// step. A stalled handshake is retried on fresh connections; the session
// then continues on the one that worked. It returns false when the session
// cannot continue.
func (p *prober) startTLSHandshake(ctx context.Context, st *stepRec, s *session, reply string) bool {
	if n := s.r.Buffered(); n > 0 {
		// RFC 3207 §4.2 / RFC 2595 §3.1: whatever came before the
		// handshake is discarded; a server (or middlebox) that pipelines
		// data here is attempting an injection.
		p.note(SeverityWarning, "", fmt.Sprintf("the server sent %d bytes after accepting STARTTLS and before the TLS handshake; they were discarded", n),
			reply, "Report this to the administrator: data sent before the TLS handshake can be a command-injection attempt (RFC 3207 §4.2).")
	}
	params := clientParams(p.cfg.ClientMaxTLS)
	h := handshake(ctx, s.raw, p.svc.Host, params, p.cfg.ReplyTimeout)
	if h.ok() {
		s.upgrade(h.conn)
		// Repeat the handshake on fresh connections, as for implicit
		// TLS, to catch a share of stalling handshakes.
		stalls, tries := 0, 1
		for i := 1; i < p.cfg.TLSAttempts; i++ {
			h2 := p.freshHandshakeTimeout(ctx, params, p.extraTimeout())
			if h2.raw == nil {
				break
			}
			tries++
			if h2.ok() {
				h2.raw.Close()
			} else if h2.stalled() {
				stalls++
			}
		}
		p.judgeTLSPrefixed(ctx, st, h, stalls, tries, reply+"; ")
		return true
	}
	if h.stalled() {
		for i := 1; i < p.cfg.TLSAttempts; i++ {
			h2 := p.freshHandshakeTimeout(ctx, params, p.extraTimeout())
			if h2.ok() {
				s.raw.Close()
				*s = *newSession(ctx, h2.raw, p.cfg.ReplyTimeout)
				s.upgrade(h2.conn)
				p.judgeTLSPrefixed(ctx, st, h2, i, i+1, reply+"; ")
				return true
			}
			if !h2.stalled() {
				break
			}
		}
		st.fail(rootcause.STARTTLSHandshakeFailed, fmt.Sprintf("%s; then %d TLS handshakes did not complete (the first waited %s)", reply, p.cfg.TLSAttempts, h.elapsed.Round(time.Millisecond)),
			"the server accepted STARTTLS, but the TLS handshake never completes", "")
		return false
	}
	p.tlsFailure(ctx, st, h, true)
	st.step().Evidence = reply + "; " + st.step().Evidence
	return false
}

// judgeTLSPrefixed is judgeTLS with the STARTTLS reply before the evidence.
func (p *prober) judgeTLSPrefixed(ctx context.Context, st *stepRec, h hsResult, stalls, tries int, prefix string) {
	p.judgeTLS(ctx, st, h, stalls, tries)
	st.step().Evidence = prefix + st.step().Evidence
}

// freshHandshakeTimeout is freshHandshake with its own timeout, keeping
// the raw connection in the result.
func (p *prober) freshHandshakeTimeout(ctx context.Context, params tlsParams, timeout time.Duration) hsResult {
	conn, _, err := p.dial(ctx, p.svc.Host, p.addrs, p.svc.Port, p.cfg.ConnectTimeout)
	if err != nil {
		return hsResult{err: err, kind: netErrKind(err)}
	}
	s := newSession(ctx, conn, p.cfg.ReplyTimeout)
	defer s.stop()
	if err := p.preTLS(s); err != nil {
		conn.Close()
		// raw stays nil: the handshake was never tried.
		return hsResult{err: err, kind: netErrKind(err)}
	}
	h := handshake(ctx, conn, p.svc.Host, params, timeout)
	if !h.ok() {
		conn.Close()
	}
	h.raw = conn
	return h
}

// notOffered records STARTTLS missing from the capabilities.
func (p *prober) notOffered(st *stepRec, evidence string) {
	fix := defaultFix(rootcause.STARTTLSNotOffered, p.svc)
	if c, ok := p.srvFor(context.Background(), "tls"); ok {
		fix = fmt.Sprintf("The server does not offer STARTTLS on port %d: set the %s to %s with SSL/TLS (published by %s), or ask the administrator to enable STARTTLS.", p.svc.Port, role(p.svc), c.hostPortOnly(), c.source)
	}
	st.fail(rootcause.STARTTLSNotOffered, evidence, fmt.Sprintf("the server does not offer STARTTLS on port %d, and the settings require it", p.svc.Port), fix)
}

// stripped records a capability list rewritten by a middlebox.
func (p *prober) stripped(st *stepRec, evidence string) {
	st.fail(rootcause.STARTTLSStripped, evidence, "a device between this computer and the server removed STARTTLS from the server's capabilities", "")
}

// refused records a STARTTLS command answered with an error.
func (p *prober) refused(st *stepRec, reply string) {
	st.fail(rootcause.STARTTLSRefused, reply, "the server advertises STARTTLS but refused the command", "")
}
