package diagnose

import (
	"math"
	"testing"
	"time"
)

// step is one write of a synthetic transfer: n bytes accepted in d.
type step struct {
	n int
	d time.Duration
}

// writesOf builds the record of a transfer cut by its deadline, one write
// per step.
func writesOf(steps ...step) []chunkWrite {
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var out []chunkWrite
	for i, s := range steps {
		w := chunkWrite{n: s.n, start: at, end: at.Add(s.d), complete: i < len(steps)-1}
		out = append(out, w)
		at = w.end
	}
	return out
}

// repeat returns k copies of s.
func repeat(k int, s step) []step {
	out := make([]step, k)
	for i := range out {
		out[i] = s
	}
	return out
}

func TestEstimateLink(t *testing.T) {
	fast := step{dataChunk, 20 * time.Microsecond}
	slow := step{dataChunk, 250 * time.Millisecond} // 4096 bytes/s
	cat := func(parts ...[]step) []step {
		var out []step
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	tests := []struct {
		name              string
		steps             []step
		rate              float64
		upper             bool
		buffered, drained int
		window            time.Duration
	}{
		{
			name:  "buffers fill, then the link's pace",
			steps: cat(repeat(10, fast), repeat(8, slow), []step{{512, 100 * time.Millisecond}}),
			// 2.1 s in all, middle at 1.05 s: the fourth slow write ends
			// at 1.0002 s; after it 4 × 1024 + 512 bytes in 1.1 s.
			rate: float64(4*dataChunk+512) / 1.1, buffered: 10 * dataChunk, drained: 4*dataChunk + 512, window: 1100 * time.Millisecond,
		},
		{
			name: "a pause while the buffers fill does not start the window",
			// A 40 ms pause after 3 writes looks like a wait; the buffers
			// then take 7 more writes at once.
			steps: cat(repeat(3, fast), []step{{dataChunk, 40 * time.Millisecond}}, repeat(6, fast), repeat(8, slow), []step{{0, 100 * time.Millisecond}}),
			rate:  float64(4*dataChunk) / 1.1, buffered: 3 * dataChunk, drained: 4 * dataChunk, window: 1100 * time.Millisecond,
		},
		{
			name: "bursty drain: writes that find room at once count",
			// The receiver frees 2 KiB every 500 ms: one write waits, the
			// next finds room at once; the last waits until the deadline.
			steps: cat(repeat(10, fast), []step{{dataChunk, 500 * time.Millisecond}, fast, {dataChunk, 500 * time.Millisecond}, fast, {dataChunk, 500 * time.Millisecond}, fast, {0, 500 * time.Millisecond}}),
			// Middle at about 1 s: the window opens after the fast write
			// that ended at about 0.5 s, and holds the other 2 waits and
			// 2 fast writes (40 µs).
			rate: float64(4*dataChunk) / (1500*time.Millisecond + 40*time.Microsecond).Seconds(), buffered: 10 * dataChunk, drained: 4 * dataChunk, window: 1500*time.Millisecond + 40*time.Microsecond,
		},
		{
			name:  "the first wait is the last write: an upper bound",
			steps: cat(repeat(10, fast), []step{{512, 250 * time.Millisecond}}),
			rate:  512 / 0.25, upper: true, buffered: 10 * dataChunk, drained: 512, window: 250 * time.Millisecond,
		},
		{
			name:  "nothing more after the buffers: the whole transfer bounds it",
			steps: cat(repeat(20, fast), []step{{0, time.Second}}),
			rate:  float64(20*dataChunk) / (time.Second + 20*20*time.Microsecond).Seconds(), upper: true, buffered: 20 * dataChunk, drained: 0, window: time.Second,
		},
		{
			name:  "no write waited",
			steps: cat(repeat(4, fast), []step{{100, 20 * time.Microsecond}}),
			rate:  float64(4*dataChunk+100) / (100 * time.Microsecond).Seconds(), upper: true, buffered: 0, drained: 4*dataChunk + 100, window: 100 * time.Microsecond,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := estimateLink(writesOf(tt.steps...))
			if math.Abs(e.rate-tt.rate) > 0.01*tt.rate || e.upper != tt.upper || e.buffered != tt.buffered || e.drained != tt.drained || e.window != tt.window {
				t.Errorf("estimateLink(%s) = rate %.1f upper %v buffered %d drained %d window %s; want rate %.1f upper %v buffered %d drained %d window %s",
					tt.name, e.rate, e.upper, e.buffered, e.drained, e.window, tt.rate, tt.upper, tt.buffered, tt.drained, tt.window)
			}
		})
	}
	if e := estimateLink(nil); e.rate != 0 || e.drained != 0 {
		t.Errorf("estimateLink(nil) = %+v, want zero", e)
	}
}
