package mtasts

import (
	"context"
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// The collectors are created here but registered nowhere until the user calls
// RegisterMetrics: importing the package changes no registry.
var (
	metricGet = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "mtasts_get_duration_seconds",
		Help:    "Duration of mtasts.Get (TXT lookup and policy fetch), by result.",
		Buckets: []float64{0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60},
	}, []string{"result"})
	metricFetch = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "mtasts_policy_fetch_duration_seconds",
		Help:    "Duration of HTTPS policy fetches by mtasts.FetchPolicy, by result.",
		Buckets: []float64{0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60},
	}, []string{"result"})
)

// RegisterMetrics registers the package's Prometheus collectors with reg:
// histograms of the duration of Get (mtasts_get_duration_seconds) and of
// FetchPolicy (mtasts_policy_fetch_duration_seconds), labelled by result (see
// ResultLabel). Call it once, e.g. with prometheus.DefaultRegisterer; a second
// registration with the same registry returns an error.
func RegisterMetrics(reg prometheus.Registerer) error {
	return errors.Join(reg.Register(metricGet), reg.Register(metricFetch))
}

// ResultLabel returns a short label for the outcome err of a lookup or fetch,
// as used in the metrics: "ok" for nil, "canceled" when the caller's context
// ended, else one per sentinel error ("invalid-domain", "no-record", "multiple-records",
// "dns-error", "record-invalid", "no-policy", "address-refused", "fetch-error",
// "policy-invalid"), or "error" for anything else.
func ResultLabel(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, ErrInvalidDomain):
		return "invalid-domain"
	case errors.Is(err, ErrNoRecord):
		return "no-record"
	case errors.Is(err, ErrMultipleRecords):
		return "multiple-records"
	case errors.Is(err, ErrDNS):
		return "dns-error"
	case errors.Is(err, ErrRecordSyntax):
		return "record-invalid"
	case errors.Is(err, ErrNoPolicy):
		return "no-policy"
	case errors.Is(err, ErrAddressRefused):
		return "address-refused"
	case errors.Is(err, ErrPolicyFetch):
		return "fetch-error"
	case errors.Is(err, ErrPolicySyntax):
		return "policy-invalid"
	}
	return "error"
}
