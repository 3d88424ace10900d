package cache

import (
	"errors"
	"sync/atomic"
	"unsafe"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mtasts-go/mtasts"
)

// stripedCounter counts events that many cores record at once, as cache hits
// are: each Inc adds to one of several counters on their own cache lines. A
// single shared counter made parallel hits slower than serial ones, and so
// did stripes picked at random, since every line still went back and forth
// between cores. The stripe is picked from the address of the calling
// goroutine's stack, so a goroutine keeps writing the same line and two
// goroutines seldom share one. The address is only hashed, never
// dereferenced.
type stripedCounter struct {
	stripes [16]struct {
		n atomic.Uint64
		_ [120]byte // pad to two cache lines: cores fetch lines in pairs
	}
}

func (c *stripedCounter) Inc() {
	var onStack byte
	// Goroutine stacks are 2 KiB apart or more; a multiplicative hash of
	// the address's higher bits spreads them over the stripes.
	a := uint64(uintptr(unsafe.Pointer(&onStack)) >> 11)
	c.stripes[(a*0x9E3779B97F4A7C15)>>60].n.Add(1)
}

func (c *stripedCounter) Load() uint64 {
	var sum uint64
	for i := range c.stripes {
		sum += c.stripes[i].n.Load()
	}
	return sum
}

// metrics are a Cache's Prometheus collectors; nothing is registered until
// the user calls RegisterMetrics.
type metrics struct {
	hits        stripedCounter
	hitsFunc    prometheus.CounterFunc
	misses      prometheus.Counter
	fetches     *prometheus.CounterVec
	refreshes   *prometheus.CounterVec
	storeErrors *prometheus.CounterVec
	entries     prometheus.GaugeFunc
	networkWait prometheus.Histogram
	gaveWay     *prometheus.CounterVec
}

func newMetrics(c *Cache) *metrics {
	m := &metrics{
		misses: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mtastsgo_cache_misses_total",
			Help: "Get calls that waited for a lookup or fetch.",
		}),
		fetches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mtastsgo_cache_fetches_total",
			Help: "HTTPS policy fetches by the cache, by result.",
		}, []string{"result"}),
		refreshes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mtastsgo_cache_refreshes_total",
			Help: "Proactive policy refreshes by Run, by result.",
		}, []string{"result"}),
		storeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mtastsgo_cache_store_errors_total",
			Help: "Failed store operations, by operation (load, save, lock, unlock).",
		}, []string{"op"}),
		networkWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "mtastsgo_cache_network_wait_seconds",
			Help:    "Time updates waited for one of Options.MaxNetwork slots before their lookup or fetch began.",
			Buckets: []float64{0.001, 0.01, 0.1, 1, 10, 60},
		}),
		gaveWay: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mtastsgo_cache_gave_way_total",
			Help: "Updates canceled to give their network slot to a waiting one, by reason: abandoned (their callers had left) or overdue (they had run Options.PreemptAfter).",
		}, []string{"reason"}),
		entries: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "mtastsgo_cache_entries",
			Help: "Domains held in memory.",
		}, func() float64 { return float64(c.items.len()) }),
	}
	m.hitsFunc = prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "mtastsgo_cache_hits_total",
		Help: "Get calls answered from memory.",
	}, func() float64 { return float64(m.hits.Load()) })
	return m
}

// RegisterMetrics registers the cache's Prometheus collectors with reg:
// mtastsgo_cache_hits_total, mtastsgo_cache_misses_total,
// mtastsgo_cache_fetches_total and mtastsgo_cache_refreshes_total by result (the
// labels of mtasts.RegisterMetrics), mtastsgo_cache_store_errors_total by operation, and the
// gauge mtastsgo_cache_entries, the histogram
// mtastsgo_cache_network_wait_seconds (see Options.MaxNetwork), and
// mtastsgo_cache_gave_way_total by reason (see Options.PreemptAfter). Register
// one cache per registry, or give each its own constant labels.
//
// The options are those of mtasts.RegisterMetrics: mtasts.MetricsNamespace
// puts a namespace before every name (mox_mtastsgo_cache_hits_total), and
// mtasts.MetricsConstLabels adds labels to every metric. It returns an error
// for a namespace that is not a metric name prefix, for labels Prometheus
// rejects (result, op and reason are taken), or when reg already holds the metrics.
func (c *Cache) RegisterMetrics(reg prometheus.Registerer, opts ...mtasts.MetricsOption) error {
	reg, err := mtasts.MetricsRegisterer(reg, opts...)
	if err != nil {
		return err
	}
	m := c.metrics
	return errors.Join(reg.Register(m.hitsFunc), reg.Register(m.misses), reg.Register(m.fetches),
		reg.Register(m.refreshes), reg.Register(m.storeErrors), reg.Register(m.entries), reg.Register(m.networkWait), reg.Register(m.gaveWay))
}
