// Command goroutine-residue measures what the Go runtime keeps after many
// goroutines have ended: it starts N goroutines that block (one per
// connection is how every Go server, go-imap and go-smtp included, serves
// clients), lets them end, collects, returns free memory to the OS and
// prints the anonymous RSS before, at the peak and after. The "after"
// figure is the floor under the lab's RSS after a soak: goroutine
// descriptors are never freed by the runtime (they are reused).
//
//	go run ./scripts/goroutine-residue [-n 15000]
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"time"
)

func main() {
	n := flag.Int("n", 15000, "goroutines to start (the soak holds about that many connections at its peak)")
	flag.Parse()
	runtime.GC()
	debug.FreeOSMemory()
	start := rssAnon()
	var wg sync.WaitGroup
	release := make(chan struct{})
	for i := 0; i < *n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-release
		}()
	}
	time.Sleep(200 * time.Millisecond)
	peak := rssAnon()
	close(release)
	wg.Wait()
	runtime.GC()
	runtime.GC()
	debug.FreeOSMemory()
	time.Sleep(time.Second)
	after := rssAnon()
	fmt.Printf("goroutines %d: anonymous RSS start %d kB, peak %d kB, after they ended and FreeOSMemory %d kB (%+d kB, %d bytes per goroutine)\n",
		*n, start, peak, after, after-start, (after-start)*1024/int64(*n))
}

// rssAnon reads RssAnon from /proc/self/status (Linux), in kB.
func rssAnon() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		fmt.Fprintln(os.Stderr, "goroutine-residue: needs Linux /proc:", err)
		os.Exit(1)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "RssAnon:"); ok {
			var kb int64
			fmt.Sscanf(strings.TrimSpace(v), "%d", &kb)
			return kb
		}
	}
	return 0
}
