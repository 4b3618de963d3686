package serve

import (
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the server's Prometheus metrics, in a registry of its own
// (two servers in one process, as in tests, do not collide).
type metrics struct {
	reg       *prometheus.Registry
	labs      prometheus.Gauge
	sse       prometheus.Gauge
	sessions  *prometheus.CounterVec
	faults    *prometheus.CounterVec
	delivered prometheus.Counter
	latency   *prometheus.HistogramVec
}

func newMetrics(s *Server) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		labs: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "maillab_labs_running", Help: "Labs running in this process.",
		}),
		sse: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "maillab_event_streams", Help: "Open Server-Sent Events streams.",
		}),
		sessions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "maillab_sessions_total", Help: "Client connections accepted by the labs, by service (smtp, submission, imaps, dns, ...).",
		}, []string{"service"}),
		faults: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "maillab_fault_actions_total", Help: "Actions faults took on connections, by fault type.",
		}, []string{"fault"}),
		delivered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "maillab_messages_stored_total", Help: "Messages stored in the labs' mailboxes.",
		}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "maillab_api_request_duration_seconds", Help: "API request latency by route (SSE streams excluded).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10},
		}, []string{"route", "code"}),
	}
	m.reg.MustRegister(m.labs, m.sse, m.sessions, m.faults, m.delivered, m.latency,
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "maillab_events_dropped_total", Help: "Events a slow SSE client did not get (its buffer was full).",
		}, func() float64 { return float64(s.eventsDropped.Load()) }),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// observe counts sessions and fault actions from a lab's events.
func (m *metrics) observe(ev Event) {
	switch {
	case ev.Kind == EventSession && strings.HasPrefix(ev.Text, "connection from "):
		m.sessions.WithLabelValues(ev.Service).Inc()
	case ev.Kind == EventDNS && ev.Dir == "C":
		m.sessions.WithLabelValues("dns").Inc()
	case ev.Kind == EventFault:
		// "fault NAME: ..." (or "fault: ..." for the lab's own notes).
		name := strings.TrimPrefix(ev.Text, "fault")
		name, _, _ = strings.Cut(name, ":")
		name = strings.TrimSpace(name)
		if name == "" {
			name = "lab"
		}
		m.faults.WithLabelValues(name).Inc()
	}
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// statusRecorder remembers the status code.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach Flush and deadlines.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// instrument records the latency of a route (not of event streams, whose
// duration is the client's).
func (m *metrics) instrument(route string, next http.Handler) http.Handler {
	if strings.HasSuffix(route, "/events") {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		code := rec.code
		if code == 0 {
			code = http.StatusOK
		}
		m.latency.WithLabelValues(route, http.StatusText(code)).Observe(time.Since(start).Seconds())
	})
}
