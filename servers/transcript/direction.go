package transcript

import "runtime"

// callerDirection reports which direction a debug writer's caller is
// teeing. go-smtp (conn.go, Conn.init) and go-imap v2
// (imapserver.Options.wrapReadWriter) both build their debug stream the
// same way: io.TeeReader(conn, debug) for what they read from the client
// and io.MultiWriter(conn, debug) for what they write to it. The libraries
// drop the direction there, and guessing it from the bytes is what let a
// password segment that began with "* " pass for a server line; the call
// path still holds it. ok is false when neither frame is on the stack
// (a caller that is not one of these tees).
func callerDirection() (dir Direction, ok bool) {
	var pcs [12]uintptr
	n := runtime.Callers(3, pcs[:])
	frames := runtime.CallersFrames(pcs[:n])
	for {
		f, more := frames.Next()
		switch f.Function {
		case "io.(*teeReader).Read":
			return Client, true
		case "io.(*multiWriter).Write", "io.(*multiWriter).WriteString":
			return Server, true
		}
		if !more {
			return 0, false
		}
	}
}
