package main

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// smMetrics are the socketmap server's Prometheus collectors. A nil
// *smMetrics counts nothing.
type smMetrics struct {
	requests    *prometheus.CounterVec
	duration    prometheus.Histogram
	connections prometheus.Gauge
	drops       *prometheus.CounterVec
	// byStatus holds requests' counter of each status, looked up once.
	byStatus map[string]prometheus.Counter
}

// newSMMetrics returns the collectors, registered with reg:
// mtastsgo_socketmap_requests_total by reply status (OK, NOTFOUND, TEMP,
// TIMEOUT, PERM), the histogram mtastsgo_socketmap_request_duration_seconds,
// the gauge mtastsgo_socketmap_connections, and
// mtastsgo_socketmap_connections_closed_total by reason: limit (refused, all
// connections busy), evicted (the longest idle, to make room), idle and
// read_timeout (timeouts), malformed (a bad request).
func newSMMetrics(reg prometheus.Registerer) (*smMetrics, error) {
	m := &smMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mtastsgo_socketmap_requests_total",
			Help: "Socketmap requests answered, by reply status.",
		}, []string{"status"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "mtastsgo_socketmap_request_duration_seconds",
			Help:    "Time from reading a socketmap request to having its reply.",
			Buckets: []float64{1e-5, 1e-4, 1e-3, 0.01, 0.1, 1, 10},
		}),
		connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mtastsgo_socketmap_connections",
			Help: "Socketmap client connections open.",
		}),
		drops: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mtastsgo_socketmap_connections_closed_total",
			Help: "Socketmap connections the server closed, by reason.",
		}, []string{"reason"}),
	}
	m.byStatus = map[string]prometheus.Counter{}
	for _, st := range []string{statusOK, statusNotFound, statusTemp, statusTimeout, statusPerm} {
		m.byStatus[st] = m.requests.WithLabelValues(st)
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.connections, m.drops} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *smMetrics) answered(status string, d time.Duration) {
	if m != nil {
		if c, ok := m.byStatus[status]; ok {
			c.Inc()
		} else {
			m.requests.WithLabelValues(status).Inc()
		}
		m.duration.Observe(d.Seconds())
	}
}

func (m *smMetrics) dropped(reason string) {
	if m != nil {
		m.drops.WithLabelValues(reason).Inc()
	}
}

func (m *smMetrics) connOpened() {
	if m != nil {
		m.connections.Inc()
	}
}

func (m *smMetrics) connClosed() {
	if m != nil {
		m.connections.Dec()
	}
}
