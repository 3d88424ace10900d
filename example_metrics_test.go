package mtasts_test

import (
	"context"
	"fmt"
	"log"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mtasts-go/mtasts"
	"github.com/mtasts-go/mtasts/mtaststest"
)

// A server that names its metrics mox_* registers the library's under its
// namespace, with a label of its own.
func ExampleRegisterMetrics() {
	reg := prometheus.NewRegistry()
	err := mtasts.RegisterMetrics(reg,
		mtasts.MetricsNamespace("mox"),
		mtasts.MetricsConstLabels(prometheus.Labels{"instance": "queue"}))
	if err != nil {
		log.Fatal(err)
	}

	// A lookup of a domain that publishes no record.
	domain, _ := mtasts.ParseDomain("example.org")
	mtasts.Get(context.Background(), mtaststest.NewResolver(), domain)

	families, err := reg.Gather()
	if err != nil {
		log.Fatal(err)
	}
	// Print the lookup's sample; the histograms also hold those of any
	// earlier calls in the process.
	for _, mf := range families {
		for _, m := range mf.GetMetric() {
			var labels string
			noRecord := false
			for _, l := range m.GetLabel() {
				labels += fmt.Sprintf(" %s=%q", l.GetName(), l.GetValue())
				noRecord = noRecord || l.GetName() == "result" && l.GetValue() == "no-record"
			}
			if noRecord {
				fmt.Println(mf.GetName() + labels)
			}
		}
	}
	// Output:
	// mox_mtastsgo_get_duration_seconds instance="queue" result="no-record"
	// mox_mtastsgo_record_lookup_duration_seconds instance="queue" result="no-record"
}
