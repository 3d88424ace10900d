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
// sorted label names of its first metric.
func familyLabels(t *testing.T, reg prometheus.Gatherer) map[string][]string {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for _, mf := range families {
		var names []string
		if ms := mf.GetMetric(); len(ms) > 0 {
			for _, l := range ms[0].GetLabel() {
				names = append(names, l.GetName()+"="+l.GetValue())
			}
		}
		slices.Sort(names)
		got[mf.GetName()] = names
	}
	return got
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

	got := familyLabels(t, reg)
	want := map[string][]string{
		"mox_mtasts_get_duration_seconds":          {"instance=queue", "region=a", "result=no-record"},
		"mox_mtasts_policy_fetch_duration_seconds": {"instance=queue", "region=a", "result=canceled"},
	}
	if len(got) != len(want) {
		t.Errorf("gathered families %v, want %v", got, want)
	}
	for name, labels := range want {
		if !slices.Equal(got[name], labels) {
			t.Errorf("%s: labels %v, want %v (all: %v)", name, got[name], labels, got)
		}
	}
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
	for name, labels := range map[string][]string{
		"maddy_mtasts_get_duration_seconds": {"a=1", "b=2", "result=no-record"},
		"mtasts_get_duration_seconds":       {"result=no-record"},
	} {
		if !slices.Equal(got[name], labels) {
			t.Errorf("%s: labels %v, want %v (all: %v)", name, got[name], labels, got)
		}
	}
	if len(got) != 4 {
		t.Errorf("gathered %d families, want 4: %v", len(got), got)
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
	got := familyLabels(t, reg)
	if want := []string{"instance=queue"}; !slices.Equal(got["mox_deliveries_total"], want) {
		t.Errorf("gathered %v, want mox_deliveries_total with labels %v", got, want)
	}
	if _, err := mtasts.MetricsRegisterer(reg, mtasts.MetricsNamespace("a b")); err == nil {
		t.Error("MetricsRegisterer accepted the namespace \"a b\"")
	}
}
