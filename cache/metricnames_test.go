package cache_test

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mtasts-go/mtasts"
	"github.com/mtasts-go/mtasts/cache"
	"github.com/mtasts-go/mtasts/tlsrpt"
)

// nameRecorder is a Registerer that keeps the name of each metric of the
// collectors registered with it, and registers them with reg.
type nameRecorder struct {
	reg   prometheus.Registerer
	names []string
}

var fqName = regexp.MustCompile(`fqName: "([^"]*)"`)

func (r *nameRecorder) Register(c prometheus.Collector) error {
	ch := make(chan *prometheus.Desc)
	go func() {
		c.Describe(ch)
		close(ch)
	}()
	for d := range ch {
		if m := fqName.FindStringSubmatch(d.String()); m != nil {
			r.names = append(r.names, m[1])
		}
	}
	return r.reg.Register(c)
}

func (r *nameRecorder) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

func (r *nameRecorder) Unregister(c prometheus.Collector) bool { return r.reg.Unregister(c) }

// registerAll registers every metric of the module (the core's, a cache's,
// and TLS reporting's) with reg under opts, and returns their names.
func registerAll(t *testing.T, reg prometheus.Registerer, opts ...mtasts.MetricsOption) []string {
	t.Helper()
	rec := &nameRecorder{reg: reg}
	c, err := cache.New(cache.Options{Resolver: newWorld().resolver})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	recorder, err := tlsrpt.NewRecorder(tlsrpt.RecorderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { recorder.Close() })
	sender, err := tlsrpt.NewSender(tlsrpt.SenderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	reporter, err := tlsrpt.NewReporter(tlsrpt.ReporterOptions{Recorder: recorder, Sender: sender})
	if err != nil {
		t.Fatal(err)
	}
	for what, err := range map[string]error{
		"mtasts.RegisterMetrics":   mtasts.RegisterMetrics(rec, opts...),
		"Cache.RegisterMetrics":    c.RegisterMetrics(rec, opts...),
		"Recorder.RegisterMetrics": recorder.RegisterMetrics(rec, opts...),
		"Sender.RegisterMetrics":   sender.RegisterMetrics(rec, opts...),
		"Reporter.RegisterMetrics": reporter.RegisterMetrics(rec, opts...),
	} {
		if err != nil {
			t.Errorf("%s: %v", what, err)
		}
	}
	return rec.names
}

// TestMetricNamesBesideMox: under a mail server's namespace, the module's
// metrics register beside the server's own metrics of MTA-STS, which an MTA
// names <namespace>_mtasts_...: mox has mox_mtasts_get_duration_seconds and
// mox_mtastsdb_get_total, with help and buckets of its own.
func TestMetricNamesBesideMox(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(
		prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "mox_mtasts_get_duration_seconds",
			Help:    "MTA-STS get of policy, including lookup, duration and result.",
			Buckets: []float64{0.01, 0.05, 0.1, 0.5, 1, 5, 10, 20},
		}, []string{"result"}),
		prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mox_mtastsdb_get_total",
			Help: "Number of Get by result.",
		}, []string{"result"}),
	)
	names := registerAll(t, reg, mtasts.MetricsNamespace("mox"))
	if len(names) == 0 {
		t.Fatal("no metric registered")
	}
	for _, name := range names {
		if !strings.HasPrefix(name, "mox_mtastsgo_") {
			t.Errorf("metric %s: want the library's part mtastsgo_ after the namespace", name)
		}
	}
}

// TestMetricNamesDocumented: docs/delivery.md lists every metric the module
// registers.
func TestMetricNamesDocumented(t *testing.T) {
	readme, err := os.ReadFile("../docs/delivery.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range registerAll(t, prometheus.NewPedanticRegistry()) {
		if !strings.Contains(string(readme), "`"+name+"`") {
			t.Errorf("docs/delivery.md does not list the metric %s", name)
		}
	}
}
