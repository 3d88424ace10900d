package mtasts_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mtasts-go/mtasts"
)

// observeBoth makes both core histograms hold a sample: a Get that fails at
// the lookup and a FetchPolicy whose context is already canceled (it ends
// before any connection is made).
func observeBoth(t *testing.T) {
	t.Helper()
	_, _, _, err := mtasts.Get(context.Background(), staticResolver{}, mustDomain(t, "metrics.example"))
	if !errors.Is(err, mtasts.ErrNoRecord) {
		t.Fatalf("Get: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := mtasts.FetchPolicy(ctx, mustDomain(t, "metrics.example")); !errors.Is(err, context.Canceled) {
		t.Fatalf("FetchPolicy with a canceled context: %v", err)
	}
}

// familyLabels returns the gathered metric family names, each with the
// sorted label pairs of each of its metrics. The core histograms are package
// variables: they also hold the samples of other tests.
func familyLabels(t *testing.T, reg prometheus.Gatherer) map[string][][]string {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][][]string{}
	for _, mf := range families {
		for _, m := range mf.GetMetric() {
			var pairs []string
			for _, l := range m.GetLabel() {
				pairs = append(pairs, l.GetName()+"="+l.GetValue())
			}
			slices.Sort(pairs)
			got[mf.GetName()] = append(got[mf.GetName()], pairs)
		}
	}
	return got
}

// checkFamilies reports an error unless got has exactly the families of
// want, each with a metric labelled as want says and every metric carrying
// the constant labels.
func checkFamilies(t *testing.T, got map[string][][]string, want map[string][]string, constLabels ...string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("gathered families %v, want %d: %v", got, len(want), want)
	}
	for name, labels := range want {
		if !slices.ContainsFunc(got[name], func(pairs []string) bool { return slices.Equal(pairs, labels) }) {
			t.Errorf("%s: no metric labelled %v in %v", name, labels, got[name])
		}
		for _, pairs := range got[name] {
			for _, l := range constLabels {
				if !slices.Contains(pairs, l) {
					t.Errorf("%s: metric %v lacks the constant label %s", name, pairs, l)
				}
			}
		}
	}
}

func TestRegisterMetricsNamespaceAndLabels(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	err := mtasts.RegisterMetrics(reg,
		mtasts.MetricsNamespace("mox"),
		mtasts.MetricsConstLabels(prometheus.Labels{"instance": "queue", "region": "a"}))
	if err != nil {
		t.Fatalf("RegisterMetrics: %v", err)
	}
	observeBoth(t)

	checkFamilies(t, familyLabels(t, reg), map[string][]string{
		"mox_mtastsgo_get_duration_seconds":           {"instance=queue", "region=a", "result=no-record"},
		"mox_mtastsgo_record_lookup_duration_seconds": {"instance=queue", "region=a", "result=no-record"},
		"mox_mtastsgo_policy_fetch_duration_seconds":  {"instance=queue", "region=a", "result=canceled"},
	}, "instance=queue", "region=a")
}

// TestRegisterMetricsOptionsCombine: the last namespace wins, constant labels
// merge with the later value winning, and an empty namespace or no labels
// leave the names as they are.
func TestRegisterMetricsOptionsCombine(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	err := mtasts.RegisterMetrics(reg,
		mtasts.MetricsNamespace("first"), mtasts.MetricsNamespace("maddy"),
		mtasts.MetricsConstLabels(prometheus.Labels{"a": "1", "b": "1"}),
		mtasts.MetricsConstLabels(prometheus.Labels{"b": "2"}),
		mtasts.MetricsConstLabels(nil))
	if err != nil {
		t.Fatal(err)
	}
	// The same collectors under another name, in the same registry.
	if err := mtasts.RegisterMetrics(reg, mtasts.MetricsNamespace("")); err != nil {
		t.Fatal(err)
	}
	observeBoth(t)
	got := familyLabels(t, reg)
	checkFamilies(t, map[string][][]string{
		"maddy_mtastsgo_get_duration_seconds":          got["maddy_mtastsgo_get_duration_seconds"],
		"maddy_mtastsgo_policy_fetch_duration_seconds": got["maddy_mtastsgo_policy_fetch_duration_seconds"],
	}, map[string][]string{
		"maddy_mtastsgo_get_duration_seconds":          {"a=1", "b=2", "result=no-record"},
		"maddy_mtastsgo_policy_fetch_duration_seconds": {"a=1", "b=2", "result=canceled"},
	}, "a=1", "b=2")
	checkFamilies(t, map[string][][]string{
		"mtastsgo_get_duration_seconds":          got["mtastsgo_get_duration_seconds"],
		"mtastsgo_policy_fetch_duration_seconds": got["mtastsgo_policy_fetch_duration_seconds"],
	}, map[string][]string{
		"mtastsgo_get_duration_seconds":          {"result=no-record"},
		"mtastsgo_policy_fetch_duration_seconds": {"result=canceled"},
	})
	if len(got) != 6 {
		t.Errorf("gathered %d families, want 6 (3 under each name): %v", len(got), got)
	}
}

func TestRegisterMetricsBadOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []mtasts.MetricsOption
		want string // in the error
	}{
		{"namespace with a dash", []mtasts.MetricsOption{mtasts.MetricsNamespace("mox-mail")}, `metrics namespace "mox-mail"`},
		{"namespace starting with a digit", []mtasts.MetricsOption{mtasts.MetricsNamespace("1mox")}, `metrics namespace "1mox"`},
		{"namespace with a colon", []mtasts.MetricsOption{mtasts.MetricsNamespace("mox:a")}, `metrics namespace "mox:a"`},
		{"label the metrics already have", []mtasts.MetricsOption{mtasts.MetricsConstLabels(prometheus.Labels{"result": "x"})}, `result`},
		{"invalid label name", []mtasts.MetricsOption{mtasts.MetricsConstLabels(prometheus.Labels{"a-b": "x"})}, `a-b`},
	} {
		reg := prometheus.NewPedanticRegistry()
		err := mtasts.RegisterMetrics(reg, tc.opts...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: RegisterMetrics = %v, want an error containing %q", tc.name, err, tc.want)
		}
		if families, _ := reg.Gather(); len(families) != 0 {
			t.Errorf("%s: a failed RegisterMetrics left %d families registered", tc.name, len(families))
		}
	}
}

// TestMetricsRegisterer: collectors of the caller's own, registered through
// MetricsRegisterer, get the same namespace and labels.
func TestMetricsRegisterer(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	wrapped, err := mtasts.MetricsRegisterer(reg, mtasts.MetricsNamespace("mox"), mtasts.MetricsConstLabels(prometheus.Labels{"instance": "queue"}))
	if err != nil {
		t.Fatal(err)
	}
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "deliveries_total", Help: "Deliveries."})
	if err := wrapped.Register(c); err != nil {
		t.Fatal(err)
	}
	c.Inc()
	checkFamilies(t, familyLabels(t, reg), map[string][]string{"mox_deliveries_total": {"instance=queue"}}, "instance=queue")
	if _, err := mtasts.MetricsRegisterer(reg, mtasts.MetricsNamespace("a b")); err == nil {
		t.Error("MetricsRegisterer accepted the namespace \"a b\"")
	}
}
