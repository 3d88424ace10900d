package redisstore_test

import (
	"context"
	"slices"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/mtasts-go/mtasts"
	"github.com/mtasts-go/mtasts/redisstore"
)

// TestMetricsNamespaceAndLabels: the options of mtasts.RegisterMetrics
// rename and label the store's counter too. An invalid name is counted
// without a request, so no Redis server is needed.
func TestMetricsNamespaceAndLabels(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer rdb.Close()
	s := redisstore.New(rdb, redisstore.Options{})
	reg := prometheus.NewPedanticRegistry()
	err := s.RegisterMetrics(reg, mtasts.MetricsNamespace("mox"),
		mtasts.MetricsConstLabels(prometheus.Labels{"instance": "queue"}))
	if err != nil {
		t.Fatalf("RegisterMetrics: %v", err)
	}
	if _, _, err := s.Load(context.Background(), "a..example"); err == nil {
		t.Fatal("Load of a..example succeeded")
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(families) != 1 || families[0].GetName() != "mox_mtastsgo_redisstore_errors_total" || len(families[0].GetMetric()) != 1 {
		t.Fatalf("gathered %v, want one mox_mtastsgo_redisstore_errors_total sample", families)
	}
	var labels []string
	for _, l := range families[0].GetMetric()[0].GetLabel() {
		labels = append(labels, l.GetName()+"="+l.GetValue())
	}
	if want := []string{"instance=queue", "op=load"}; !slices.Equal(labels, want) {
		t.Errorf("labels %v, want %v", labels, want)
	}
	if err := s.RegisterMetrics(prometheus.NewPedanticRegistry(), mtasts.MetricsNamespace("mox mail")); err == nil {
		t.Error("RegisterMetrics accepted the namespace \"mox mail\"")
	}
}
