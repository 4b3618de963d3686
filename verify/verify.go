// Package verify runs the failure catalog against a diagnoser and checks
// that each scenario's root cause is named: maillab's own diagnoser, an
// external command, or a Go function of another project (see Test).
package verify

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"sync"
	"time"

	"github.com/maillab/maillab/lab"
	"github.com/maillab/maillab/rootcause"
	"github.com/maillab/maillab/scenarios"
)

// Options configures Run.
type Options struct {
	// Scenarios to run; nil means the whole catalog.
	Scenarios []*scenarios.Scenario
	// Run keeps only scenarios whose name matches.
	Run *regexp.Regexp
	// Diagnoser is checked; nil means the bundled one.
	Diagnoser Diagnoser
	// Parallel is how many scenarios run at once; 0 means 4 × CPUs (most
	// of the time is spent waiting).
	Parallel int
	// Lab are the options of every scenario's lab (each gets its own
	// ports and directory). A zero CloseGrace becomes 100 ms: sessions a
	// fault holds (a delayed greeting, a throttled transfer) are cut
	// rather than waited for.
	Lab lab.Options
	// OnStart and OnDone report progress; they may be nil. Run calls
	// them one at a time.
	OnStart func(name string)
	OnDone  func(Outcome)
}

// Outcome is one scenario's result.
type Outcome struct {
	Scenario  string        `json:"scenario"`
	Expected  string        `json:"expected"`
	Diagnosed string        `json:"diagnosed"`
	Pass      bool          `json:"pass"`
	Elapsed   time.Duration `json:"-"`
	// ElapsedMS is Elapsed in milliseconds, for JSON.
	ElapsedMS float64 `json:"elapsed_ms"`
	// Error is why the diagnoser gave no answer (crash, timeout, garbage)
	// or why the scenario could not start.
	Error string `json:"error,omitempty"`
	// Summary and Evidence are the diagnoser's explanation.
	Summary  string `json:"summary,omitempty"`
	Evidence string `json:"evidence,omitempty"`
	// Story is the customer's report, shown next to a miss.
	Story string `json:"-"`
}

// Summary is the result of a run.
type Summary struct {
	Diagnoser string        `json:"diagnoser"`
	Outcomes  []Outcome     `json:"scenarios"`
	Passed    int           `json:"passed"`
	Failed    int           `json:"failed"`
	Elapsed   time.Duration `json:"-"`
	ElapsedMS float64       `json:"elapsed_ms"`
}

// OK reports whether every scenario passed.
func (s *Summary) OK() bool { return s.Failed == 0 }

// Select returns the catalog scenarios matching re (all if nil).
func Select(re *regexp.Regexp) ([]*scenarios.Scenario, error) {
	cat, err := scenarios.Catalog()
	if err != nil {
		return nil, err
	}
	var out []*scenarios.Scenario
	for _, sc := range cat {
		if re == nil || re.MatchString(sc.Name) {
			out = append(out, sc)
		}
	}
	return out, nil
}

// Run runs the scenarios against the diagnoser. It returns an error only
// when verify itself cannot run; every failure of a scenario or of the
// diagnoser is an Outcome.
func Run(ctx context.Context, opts Options) (*Summary, error) {
	list := opts.Scenarios
	if list == nil {
		var err error
		if list, err = Select(nil); err != nil {
			return nil, err
		}
	}
	if opts.Run != nil {
		var kept []*scenarios.Scenario
		for _, sc := range list {
			if opts.Run.MatchString(sc.Name) {
				kept = append(kept, sc)
			}
		}
		list = kept
	}
	d := opts.Diagnoser
	if d == nil {
		d = Bundled{}
	}
	if opts.Lab.CloseGrace == 0 {
		opts.Lab.CloseGrace = 100 * time.Millisecond
	}
	par := opts.Parallel
	if par <= 0 {
		par = 4 * runtime.NumCPU()
	}
	start := time.Now()
	var report sync.Mutex // serialises the progress callbacks
	out := make([]Outcome, len(list))
	sem := make(chan struct{}, par)
	var wg sync.WaitGroup
	for i, sc := range list {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				out[i] = Outcome{Scenario: sc.Name, Expected: sc.RootCause, Error: ctx.Err().Error(), Story: sc.Story}
				return
			}
			defer func() { <-sem }()
			if opts.OnStart != nil {
				report.Lock()
				opts.OnStart(sc.Name)
				report.Unlock()
			}
			out[i] = runOne(ctx, sc, d, opts.Lab)
			if opts.OnDone != nil {
				report.Lock()
				opts.OnDone(out[i])
				report.Unlock()
			}
		}()
	}
	wg.Wait()
	sort.SliceStable(out, func(i, j int) bool { return out[i].Scenario < out[j].Scenario })
	s := &Summary{Diagnoser: d.Name(), Outcomes: out, Elapsed: time.Since(start)}
	s.ElapsedMS = ms(s.Elapsed)
	for _, o := range out {
		if o.Pass {
			s.Passed++
		} else {
			s.Failed++
		}
	}
	return s, nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// runOne starts one scenario's lab, writes the customer's settings, asks
// the diagnoser and compares.
func runOne(ctx context.Context, sc *scenarios.Scenario, d Diagnoser, opts lab.Options) (o Outcome) {
	o = Outcome{Scenario: sc.Name, Expected: sc.RootCause, Story: sc.Story}
	start := time.Now()
	defer func() {
		o.Elapsed = time.Since(start)
		o.ElapsedMS = ms(o.Elapsed)
	}()
	r, err := sc.Start(opts)
	if err != nil {
		o.Error = "scenario did not start: " + err.Error()
		return o
	}
	defer r.Close()
	path := filepath.Join(r.Lab.Dir, "customer-settings.json")
	if err := r.Customer.Write(path); err != nil {
		o.Error = fmt.Sprintf("write settings: %v", err)
		return o
	}
	res, err := d.Diagnose(ctx, path, r.Customer)
	if err != nil {
		o.Error = err.Error()
		return o
	}
	o.Diagnosed, o.Summary, o.Evidence = res.RootCause, res.Summary, res.Evidence
	o.Pass = res.RootCause == sc.RootCause
	return o
}

// TimeoutBound reports whether a code is diagnosed by waiting for a
// timeout, which sets the floor of a scenario's time (the benchmarks
// report the others' median separately).
func TimeoutBound(code string) bool { return rootcause.IsTimeoutBound(rootcause.Code(code)) }
