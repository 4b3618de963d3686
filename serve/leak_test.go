package serve

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// resources counts what a lab could leak.
type resources struct {
	goroutines, fds, listening, tempDirs, labDirs int
}

func countResources(t *testing.T, dataDir string) resources {
	t.Helper()
	var r resources
	r.goroutines = runtime.NumGoroutine()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	r.fds = len(fds)
	// Listening TCP sockets (state 0A) and bound UDP sockets (07) of this
	// process: /proc/net lists the whole network namespace (other
	// programs too), so keep the inodes of our own descriptors.
	ours := map[string]bool{}
	for _, fd := range fds {
		if link, err := os.Readlink("/proc/self/fd/" + fd.Name()); err == nil && strings.HasPrefix(link, "socket:[") {
			ours[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] = true
		}
	}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6", "/proc/net/udp", "/proc/net/udp6"} {
		file, err := os.Open(f)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(file)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 10 || !ours[fields[9]] {
				continue
			}
			if strings.Contains(f, "udp") && fields[3] == "07" || fields[3] == "0A" {
				r.listening++
			}
		}
		file.Close()
	}
	tmp, _ := filepath.Glob(filepath.Join(os.TempDir(), "maillab-*"))
	r.tempDirs = len(tmp)
	labs, _ := os.ReadDir(filepath.Join(dataDir, "labs"))
	r.labDirs = len(labs)
	return r
}

// TestNoLeaks creates and deletes 500 labs (150 with -race, 50 with
// -short) and compares
// goroutines, file descriptors, listening sockets, temporary and lab
// directories before and after.
func TestNoLeaks(t *testing.T) {
	n := 500
	if testing.Short() {
		n = 50
	} else if raceEnabled {
		n = 150 // the race detector makes each lab several times slower
	}
	// A private TMPDIR: other programs on the machine make maillab-*
	// directories in /tmp too.
	t.Setenv("TMPDIR", t.TempDir())
	ts := newTestServer(t, Options{MaxLabs: 10})
	scenarios := []string{"healthy", "expired-cert", "dns-poisoned", "lockout-after-retries", "starttls-stripped"}
	// Warm up once so lazily started runtime goroutines are counted.
	l := ts.create(map[string]string{"scenario": "healthy"})
	ts.must(http.StatusNoContent, "DELETE", "/api/v1/labs/"+l.ID, nil, nil)
	http.DefaultClient.CloseIdleConnections()
	before := countResources(t, ts.dir)
	for i := 0; i < n; i++ {
		l := ts.create(map[string]string{"scenario": scenarios[i%len(scenarios)]})
		var events *sseReader
		var client net.Conn
		var err error
		if i%7 == 0 {
			// Some with an event stream open when the lab goes: the
			// stream ends with a "closed" event.
			events = ts.subscribe(l.ID, 0)
			client, err = net.Dial("tcp", net.JoinHostPort("127.0.0.1", fmt.Sprint(l.Ports["submission"])))
			if err != nil {
				t.Fatal(err)
			}
		}
		ts.must(http.StatusNoContent, "DELETE", "/api/v1/labs/"+l.ID, nil, nil)
		if events != nil {
			events.waitFor(t, "closed", func(k string, ev Event) bool { return k == "closed" })
			events.resp.Body.Close()
			// A client connected when the lab went is cut, not left hanging.
			client.SetReadDeadline(time.Now().Add(10 * time.Second))
			// EOF or a reset: either way the lab closed it; a timeout
			// means it was left open.
			if _, err := io.Copy(io.Discard, client); err != nil && !errors.Is(err, syscall.ECONNRESET) {
				t.Errorf("client connection after DELETE: %v, want it closed by the lab", err)
			}
			client.Close()
		}
	}
	var after resources
	// Goroutines of closed connections end shortly after Close returns.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		http.DefaultClient.CloseIdleConnections()
		after = countResources(t, ts.dir)
		if after.goroutines <= before.goroutines+2 && after.fds <= before.fds+2 || time.Now().After(deadline) {
			break
		}
	}
	t.Logf("%d labs created and deleted: before %+v, after %+v", n, before, after)
	if after.goroutines > before.goroutines+2 {
		buf := make([]byte, 1<<20)
		t.Errorf("goroutines %d → %d after %d labs\n%s", before.goroutines, after.goroutines, n, buf[:runtime.Stack(buf, true)])
	}
	if after.fds > before.fds+2 {
		t.Errorf("file descriptors %d → %d after %d labs", before.fds, after.fds, n)
	}
	if after.listening > before.listening {
		t.Errorf("listening sockets %d → %d after %d labs", before.listening, after.listening, n)
	}
	if after.tempDirs > before.tempDirs || after.labDirs != 0 {
		t.Errorf("temporary dirs %d → %d, lab dirs left %d", before.tempDirs, after.tempDirs, after.labDirs)
	}
	if got := fmt.Sprint(ts.srv.Labs()); got != "0" {
		t.Errorf("%s labs still registered", got)
	}
}
