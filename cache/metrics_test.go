package cache_test

import (
	"slices"
	"testing"
	"testing/synctest"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mtasts-go/mtasts"
	"github.com/mtasts-go/mtasts/cache"
)

// TestMetricsNamespaceAndLabels: the options of mtasts.RegisterMetrics
// rename and label the cache's metrics the same way.
func TestMetricsNamespaceAndLabels(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld()
		w.publish("example.com", "1", policyText("enforce", 86400))
		c := w.newCache(t, cache.Options{})
		reg := prometheus.NewPedanticRegistry()
		err := c.RegisterMetrics(reg, mtasts.MetricsNamespace("mox"),
			mtasts.MetricsConstLabels(prometheus.Labels{"instance": "queue"}))
		if err != nil {
			t.Fatalf("RegisterMetrics: %v", err)
		}
		c.Get(t.Context(), domain(t, "example.com")) // a miss and a fetch
		c.Get(t.Context(), domain(t, "example.com")) // a hit

		families, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		got := map[string][]string{}
		for _, mf := range families {
			for _, m := range mf.GetMetric() {
				var labels []string
				for _, l := range m.GetLabel() {
					labels = append(labels, l.GetName()+"="+l.GetValue())
				}
				slices.Sort(labels)
				got[mf.GetName()] = labels
			}
		}
		want := map[string][]string{
			"mox_mtastsgo_cache_hits_total":           {"instance=queue"},
			"mox_mtastsgo_cache_misses_total":         {"instance=queue"},
			"mox_mtastsgo_cache_fetches_total":        {"instance=queue", "result=ok"},
			"mox_mtastsgo_cache_entries":              {"instance=queue"},
			"mox_mtastsgo_cache_network_wait_seconds": {"instance=queue"},
		}
		if len(got) != len(want) {
			t.Errorf("gathered %v, want %v", got, want)
		}
		for name, labels := range want {
			if !slices.Equal(got[name], labels) {
				t.Errorf("%s: labels %v, want %v (all: %v)", name, got[name], labels, got)
			}
		}

		// A bad namespace registers nothing.
		reg = prometheus.NewPedanticRegistry()
		if err := c.RegisterMetrics(reg, mtasts.MetricsNamespace("mox-mail")); err == nil {
			t.Error("RegisterMetrics accepted the namespace \"mox-mail\"")
		}
		if families, _ := reg.Gather(); len(families) != 0 {
			t.Errorf("a failed RegisterMetrics registered %d families", len(families))
		}
	})
}

// TestCheckEveryGetClosedCountsOnce: after Close, a Get with CheckEveryGet
// answers from memory, and counts one hit, not a miss too.
func TestCheckEveryGetClosedCountsOnce(t *testing.T) {
	w := newWorld()
	w.publish("example.com", "1", policyText("enforce", 86400))
	c := w.newCache(t, cache.Options{CheckEveryGet: true})
	reg := prometheus.NewPedanticRegistry()
	if err := c.RegisterMetrics(reg); err != nil {
		t.Fatal(err)
	}
	if r := c.Get(t.Context(), domain(t, "example.com")); r.Policy == nil {
		t.Fatalf("Get: %+v", r)
	}
	c.Close()
	if r := c.Get(t.Context(), domain(t, "example.com")); r.Policy == nil {
		t.Fatalf("Get after Close: %+v, want the policy in memory", r)
	}
	misses, hits := counterValue(t, reg, "mtastsgo_cache_misses_total"), counterValue(t, reg, "mtastsgo_cache_hits_total")
	if misses != 1 || hits != 1 {
		t.Errorf("misses %v, hits %v; want 1 each: the first Get missed, the one after Close hit", misses, hits)
	}
}
