package wire

import "fmt"

// TLS record content types (RFC 8446 §5.1).
const (
	recordAlert     = 21
	recordHandshake = 22
)

// IsTLSRecord reports whether b starts like a TLS record a server sends
// first: a handshake (0x16) or alert (0x15) record of version 3.x
// (RFC 8446 §5.1, RFC 5246 §6.2.1).
func IsTLSRecord(b []byte) bool {
	return len(b) >= 2 && (b[0] == recordHandshake || b[0] == recordAlert) && b[1] == 3
}

// Alert is a TLS alert (RFC 8446 §6).
type Alert struct {
	Level       uint8
	Description uint8
}

// Alert descriptions that the diagnoser branches on (RFC 8446 §6, RFC 5246
// §7.2).
const (
	AlertCloseNotify          = 0
	AlertHandshakeFailure     = 40
	AlertBadCertificate       = 42
	AlertProtocolVersion      = 70
	AlertInsufficientSecurity = 71
	AlertInternalError        = 80
	AlertUnrecognizedName     = 112
)

var alertNames = map[uint8]string{
	0: "close_notify", 10: "unexpected_message", 20: "bad_record_mac",
	22: "record_overflow", 40: "handshake_failure", 42: "bad_certificate",
	43: "unsupported_certificate", 44: "certificate_revoked",
	45: "certificate_expired", 46: "certificate_unknown",
	47: "illegal_parameter", 48: "unknown_ca", 49: "access_denied",
	50: "decode_error", 51: "decrypt_error", 70: "protocol_version",
	71: "insufficient_security", 80: "internal_error",
	86: "inappropriate_fallback", 90: "user_canceled",
	109: "missing_extension", 110: "unsupported_extension",
	112: "unrecognized_name", 113: "bad_certificate_status_response",
	115: "unknown_psk_identity", 116: "certificate_required",
	120: "no_application_protocol",
}

// String returns the alert's RFC name, e.g. "protocol_version".
func (a Alert) String() string {
	if n, ok := alertNames[a.Description]; ok {
		return n
	}
	return fmt.Sprintf("alert %d", a.Description)
}

// FindAlert scans the plaintext TLS records at the start of b (what a
// server sent during a handshake) and returns the first alert. Alerts after
// a TLS 1.3 ServerHello are encrypted and cannot be seen; ok is false then.
func FindAlert(b []byte) (Alert, bool) {
	for len(b) >= 5 {
		typ, major := b[0], b[1]
		if major != 3 || (typ < 20 || typ > 23) {
			return Alert{}, false
		}
		n := int(b[3])<<8 | int(b[4])
		if len(b) < 5+n {
			return Alert{}, false
		}
		body := b[5 : 5+n]
		if typ == recordAlert && n == 2 {
			return Alert{Level: body[0], Description: body[1]}, true
		}
		if typ == 23 || typ == 20 {
			// Encrypted records or ChangeCipherSpec: nothing readable follows.
			return Alert{}, false
		}
		b = b[5+n:]
	}
	return Alert{}, false
}

// DescribeTLS describes the first TLS record of b for evidence.
func DescribeTLS(b []byte) string {
	if a, ok := FindAlert(b); ok {
		return fmt.Sprintf("TLS alert record (%s)", a)
	}
	if len(b) >= 6 && b[0] == recordHandshake && b[5] == 2 {
		return "TLS handshake record (ServerHello)"
	}
	if len(b) >= 1 && b[0] == recordHandshake {
		return "TLS handshake record"
	}
	return "TLS record"
}
