//go:build soakpprof

package main

// Built only with -tags soakpprof (scripts/soak.sh --pprof): the Go
// profiler on MAILLAB_PPROF (a loopback address), to see what a lab holds
// after the soak's load. Ordinary binaries have no profiler.

import (
	"net/http"
	_ "net/http/pprof"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
)

func init() {
	addr := os.Getenv("MAILLAB_PPROF")
	if addr == "" || !strings.HasPrefix(addr, "127.") {
		return
	}
	runtime.MemProfileRate = 4096
	http.HandleFunc("/debug/free", func(w http.ResponseWriter, _ *http.Request) { debug.FreeOSMemory() })
	go http.ListenAndServe(addr, nil)
}
