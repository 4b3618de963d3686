package verify_test

import (
	"context"
	"sort"
	"testing"
	"time"

	"github.com/maillab/maillab/verify"
)

// BenchmarkCatalog runs the whole catalog against the bundled diagnoser
// (1 s step timeout, as `maillab verify` uses) and reports the wall time
// (target 5 s on 2 cores, bounded by the timeout classes) and the median
// time of the scenarios that are not diagnosed by waiting for a timeout
// (target 50 ms).
func BenchmarkCatalog(b *testing.B) {
	var walls, medians []float64
	for i := 0; i < b.N; i++ {
		sum, err := verify.Run(context.Background(), verify.Options{Diagnoser: verify.Bundled{Timeout: time.Second}})
		if err != nil {
			b.Fatal(err)
		}
		if !sum.OK() {
			b.Fatalf("%d scenarios failed", sum.Failed)
		}
		var quick []float64
		for _, o := range sum.Outcomes {
			if !verify.TimeoutBound(o.Expected) {
				quick = append(quick, o.ElapsedMS)
			}
		}
		sort.Float64s(quick)
		walls = append(walls, sum.Elapsed.Seconds())
		medians = append(medians, quick[len(quick)/2])
	}
	b.ReportMetric(mean(walls), "catalog-s")
	b.ReportMetric(mean(medians), "median-ms")
}

func mean(xs []float64) float64 {
	var s float64
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}
