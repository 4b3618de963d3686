package serve

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/maillab/maillab/lab"
	"github.com/maillab/maillab/scenarios"
)

// rssBytes reads this process's resident set size.
func rssBytes(b *testing.B) int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Skipf("no /proc/self/status: %v", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

func median(ds []time.Duration) time.Duration {
	slices.Sort(ds)
	return ds[len(ds)/2]
}

// BenchmarkClassroom starts 200 labs (40 trainees × 5 scenarios) through
// the API, 8 requests at a time, and reports the wall time, the process's
// RSS, the median latency of API calls while they run, and the median time
// from POST /labs to a curl that completed a STARTTLS submission against
// the new lab. Baselines measured in the same run: the same 200 labs
// started with lab.Start directly (no API, no SQLite, no events), and curl
// against a lab that was already running.
//
//	go test -run '^$' -bench Classroom -benchtime 1x ./serve/
func BenchmarkClassroom(b *testing.B) {
	const labs = 200
	names := []string{"expired-cert", "wrong-password", "starttls-stripped", "dns-poisoned", "lockout-after-retries"}
	for i := 0; i < b.N; i++ {
		// Baseline: the labs without the API.
		start := time.Now()
		var direct []*scenarios.Running
		for j := 0; j < labs; j++ {
			sc, err := scenarios.Lookup(names[j%len(names)])
			if err != nil {
				b.Fatal(err)
			}
			r, err := sc.Start(lab.Options{CloseGrace: 50 * time.Millisecond})
			if err != nil {
				b.Fatal(err)
			}
			direct = append(direct, r)
		}
		directWall := time.Since(start)
		for _, r := range direct {
			r.Close()
		}
		// Baseline 2: the same, with the lab directory and Maildir on disk
		// as serve keeps them (what persistence costs without the API).
		diskDir := b.TempDir()
		start = time.Now()
		direct = direct[:0]
		for j := 0; j < labs; j++ {
			sc, _ := scenarios.Lookup(names[j%len(names)])
			d := filepath.Join(diskDir, strconv.Itoa(j))
			r, err := sc.Start(lab.Options{Dir: d, StoreDir: filepath.Join(d, "mail"), CloseGrace: 50 * time.Millisecond})
			if err != nil {
				b.Fatal(err)
			}
			direct = append(direct, r)
		}
		diskWall := time.Since(start)
		for _, r := range direct {
			r.Close()
		}

		dir := b.TempDir()
		srv, err := New(Options{DataDir: dir, MaxLabs: labs + 50, CloseGrace: 50 * time.Millisecond})
		if err != nil {
			b.Fatal(err)
		}
		hs := &http.Server{Handler: srv.Handler()}
		ln, err := netListen()
		if err != nil {
			b.Fatal(err)
		}
		go hs.Serve(ln)
		base := "http://" + ln.Addr().String()
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
		call := func(method, path, body string) (int, []byte, time.Duration) {
			req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+srv.Token())
			t0 := time.Now()
			resp, err := client.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			var buf bytes.Buffer
			buf.ReadFrom(resp.Body)
			resp.Body.Close()
			return resp.StatusCode, buf.Bytes(), time.Since(t0)
		}
		rssBefore := rssBytes(b)
		start = time.Now()
		ids := make([]string, labs)
		var wg sync.WaitGroup
		work := make(chan int)
		for w := 0; w < 8; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := range work {
					code, data, _ := call("POST", "/api/v1/labs", fmt.Sprintf(`{"scenario":%q}`, names[j%len(names)]))
					if code != http.StatusCreated {
						b.Errorf("POST /labs = %d %s", code, data)
						continue
					}
					var l struct{ ID string }
					json.Unmarshal(data, &l)
					ids[j] = l.ID
				}
			}()
		}
		for j := 0; j < labs; j++ {
			work <- j
		}
		close(work)
		wg.Wait()
		wall := time.Since(start)
		rss := rssBytes(b)

		var lat []time.Duration
		for j := 0; j < labs; j++ {
			_, _, d := call("GET", "/api/v1/labs/"+ids[j], "")
			lat = append(lat, d)
			_, _, d = call("GET", "/api/v1/labs/"+ids[j]+"/transcript", "")
			lat = append(lat, d)
		}
		apiMedian := median(lat)

		// POST → STARTTLS submission with real curl, against a running
		// lab (baseline) and against a lab just created.
		var submitLat, warmLat []time.Duration
		curl, err := exec.LookPath("curl")
		if err == nil {
			msg := filepath.Join(dir, "msg.eml")
			os.WriteFile(msg, []byte("Subject: bench\r\n\r\nhi\r\n"), 0o600)
			send := func(data []byte) error {
				var l labResp
				json.Unmarshal(data, &l)
				svc, a := l.Settings.Services["submission"], l.Settings.Accounts[0]
				out, err := exec.Command(curl, "-sS", "--ssl-reqd", "--cacert", l.Settings.CAFile,
					"--resolve", fmt.Sprintf("%s:%d:127.0.0.1", svc.Host, svc.Port),
					"-u", a.Username+":"+a.Password, "--mail-from", a.Email, "--mail-rcpt", a.Email, "-T", msg,
					fmt.Sprintf("smtp://%s:%d", svc.Host, svc.Port)).CombinedOutput()
				if err != nil {
					return fmt.Errorf("curl: %v: %s", err, out)
				}
				return nil
			}
			for j := 0; j < 20; j++ {
				t0 := time.Now()
				code, data, _ := call("POST", "/api/v1/labs", `{}`)
				if code != http.StatusCreated {
					b.Fatalf("POST /labs = %d %s", code, data)
				}
				if err := send(data); err != nil {
					b.Fatal(err)
				}
				submitLat = append(submitLat, time.Since(t0))
				t0 = time.Now()
				if err := send(data); err != nil {
					b.Fatal(err)
				}
				warmLat = append(warmLat, time.Since(t0))
			}
		}
		b.ReportMetric(wall.Seconds(), "s/200labs")
		b.ReportMetric(float64(rss)/(1<<20), "MiB-RSS")
		b.ReportMetric(float64(apiMedian.Microseconds())/1000, "ms/api-call-median")
		msg := fmt.Sprintf("200 labs through the API: %s (baselines: lab.Start in memory %s, ratio %.2f; lab.Start with Maildir on disk %s, ratio %.2f); RSS %d MiB (%d MiB before); API median %s over %d calls while they ran",
			wall.Round(time.Millisecond), directWall.Round(time.Millisecond), wall.Seconds()/directWall.Seconds(), diskWall.Round(time.Millisecond), wall.Seconds()/diskWall.Seconds(), rss>>20, rssBefore>>20, apiMedian.Round(time.Microsecond), len(lat))
		if len(submitLat) > 0 {
			sm, wm := median(submitLat), median(warmLat)
			b.ReportMetric(float64(sm.Microseconds())/1000, "ms/post-to-submission-median")
			msg += fmt.Sprintf("; POST→curl STARTTLS submission median %s (curl alone against a running lab %s, ratio %.2f)", sm.Round(time.Millisecond), wm.Round(time.Millisecond), sm.Seconds()/wm.Seconds())
		}
		b.Log(msg)
		hs.Close()
		srv.Close()
	}
}

func netListen() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }

// BenchmarkClassCreate creates a class of 40 trainees × 5 scenarios (200
// labs) in one POST /api/v1/classes and deletes it, reporting both times.
//
//	go test -run '^$' -bench ClassCreate -benchtime 1x ./serve/
func BenchmarkClassCreate(b *testing.B) {
	names := []string{"expired-cert", "wrong-password", "starttls-stripped", "dns-poisoned", "lockout-after-retries"}
	srv, err := New(Options{DataDir: b.TempDir(), CloseGrace: 50 * time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	for i := 0; i < b.N; i++ {
		body, _ := json.Marshal(map[string]any{"name": "bench", "count": 40, "scenarios": names})
		req, _ := http.NewRequest("POST", ts.URL+"/api/v1/classes", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+srv.Token())
		start := time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		var c struct {
			ID string `json:"id"`
		}
		json.NewDecoder(resp.Body).Decode(&c)
		resp.Body.Close()
		created := time.Since(start)
		if resp.StatusCode != http.StatusCreated || srv.Labs() != 200 {
			b.Fatalf("POST /classes = %d with %d labs", resp.StatusCode, srv.Labs())
		}
		req, _ = http.NewRequest("DELETE", ts.URL+"/api/v1/classes/"+c.ID, nil)
		req.Header.Set("Authorization", "Bearer "+srv.Token())
		start = time.Now()
		resp, err = http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		b.ReportMetric(created.Seconds(), "create-s")
		b.ReportMetric(time.Since(start).Seconds(), "delete-s")
	}
}
