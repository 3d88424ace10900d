package mtasts

import (
	"context"
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mtasts-go/mtasts/internal/metriclabel"
)

// The collectors are created here but registered nowhere until the user calls
// RegisterMetrics: importing the package changes no registry.
var (
	metricGet = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "mtastsgo_get_duration_seconds",
		Help:    "Duration of mtasts.Get (TXT lookup and policy fetch), by result.",
		Buckets: []float64{0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60},
	}, []string{"result"})
	metricLookup = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "mtastsgo_record_lookup_duration_seconds",
		Help:    "Duration of _mta-sts TXT record lookups by mtasts.LookupRecord, by result.",
		Buckets: []float64{0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30},
	}, []string{"result"})
	metricFetch = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "mtastsgo_policy_fetch_duration_seconds",
		Help:    "Duration of HTTPS policy fetches by mtasts.FetchPolicy, by result.",
		Buckets: []float64{0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60},
	}, []string{"result"})
)

// RegisterMetrics registers the package's Prometheus collectors with reg:
// histograms of the duration of Get (mtastsgo_get_duration_seconds), of
// LookupRecord (mtastsgo_record_lookup_duration_seconds) and of FetchPolicy
// (mtastsgo_policy_fetch_duration_seconds), labelled by result: "ok",
// "canceled" when the caller's context ended, else one per sentinel error
// ("invalid-domain", "no-record", "multiple-records", "dns-error",
// "record-invalid", "no-policy", "address-refused", "fetch-error",
// "policy-invalid"), or "error" for anything else. A cache, which calls LookupRecord and FetchPolicy apart,
// shows in the last two. Call it once, e.g. with prometheus.DefaultRegisterer; a second
// registration with the same registry and options returns an error.
//
// The options put a namespace before the names and constant labels on every
// metric, for a server whose metrics follow its own naming:
//
//	mtasts.RegisterMetrics(reg, mtasts.MetricsNamespace("mox"),
//		mtasts.MetricsConstLabels(prometheus.Labels{"instance": "queue"}))
//
// registers mox_mtastsgo_get_duration_seconds{instance="queue",result="..."}
// and mox_mtastsgo_policy_fetch_duration_seconds likewise. It returns an error
// for a namespace that is not a metric name prefix, or for labels that
// Prometheus rejects, such as "result", which the metrics already have.
func RegisterMetrics(reg prometheus.Registerer, opts ...MetricsOption) error {
	reg, err := MetricsRegisterer(reg, opts...)
	if err != nil {
		return err
	}
	return errors.Join(reg.Register(metricGet), reg.Register(metricLookup), reg.Register(metricFetch))
}

// A MetricsOption changes the names or labels of the metrics registered by
// RegisterMetrics, cache.Cache.RegisterMetrics and MetricsRegisterer. The
// options are MetricsNamespace and MetricsConstLabels.
type MetricsOption func(*metricsOptions)

type metricsOptions struct {
	namespace string
	labels    prometheus.Labels
}

// MetricsNamespace puts namespace and "_" before the name of every metric:
// with "mox", mtastsgo_get_duration_seconds is registered as
// mox_mtastsgo_get_duration_seconds. The name keeps its "mtastsgo" part, the
// library's name, so its metrics stay apart from the server's own: a server
// that does MTA-STS itself names its metrics <namespace>_mtasts_..., as mox
// has mox_mtasts_get_duration_seconds, and registering two metrics of one
// name with other labels or help fails. An empty namespace
// changes nothing; of several MetricsNamespace options the last one counts.
// A namespace must be letters, digits and "_", not starting with a digit.
func MetricsNamespace(namespace string) MetricsOption {
	return func(o *metricsOptions) { o.namespace = namespace }
}

// MetricsConstLabels adds labels, with the same value on every sample, to
// every metric, e.g. {"instance": "queue"} for a server that runs several
// caches. Several MetricsConstLabels options merge; for a name given twice
// the later value counts. A name the metrics already use as a label (result,
// op) makes the registration fail.
func MetricsConstLabels(labels prometheus.Labels) MetricsOption {
	return func(o *metricsOptions) {
		if len(labels) == 0 {
			return
		}
		if o.labels == nil {
			o.labels = prometheus.Labels{}
		}
		for k, v := range labels {
			o.labels[k] = v
		}
	}
}

// MetricsRegisterer returns a Registerer that registers collectors with reg
// under the namespace and constant labels of opts, as RegisterMetrics does.
// The cache uses it for its own metrics, and a server may use it for
// collectors of its own. Without options it returns reg itself. It returns
// an error if the namespace is not letters, digits and "_" with a non-digit
// first.
func MetricsRegisterer(reg prometheus.Registerer, opts ...MetricsOption) (prometheus.Registerer, error) {
	var o metricsOptions
	for _, opt := range opts {
		opt(&o)
	}
	if o.labels != nil {
		reg = prometheus.WrapRegistererWith(o.labels, reg)
	}
	if o.namespace != "" {
		if msg := checkNamespace(o.namespace); msg != "" {
			return nil, fmt.Errorf("mtasts: metrics namespace %q: %s", o.namespace, msg)
		}
		reg = prometheus.WrapRegistererWithPrefix(o.namespace+"_", reg)
	}
	return reg, nil
}

// checkNamespace checks a namespace against the part of the Prometheus metric
// name rule that suits a prefix, [a-zA-Z_][a-zA-Z0-9_]*; colons are left to
// recording rules. It returns what is wrong, or "".
func checkNamespace(ns string) string {
	for i := 0; i < len(ns); i++ {
		c := ns[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', c == '_':
		case '0' <= c && c <= '9':
			if i == 0 {
				return "starts with a digit, expected a letter or \"_\""
			}
		default:
			return fmt.Sprintf("invalid character %q at byte %d, expected letters, digits and \"_\"", c, i)
		}
	}
	return ""
}

func init() { metriclabel.Result = resultLabel }

// resultLabel returns a short label for the outcome err of a lookup or fetch,
// as used in the metrics: "ok" for nil, "canceled" when the caller's context
// ended, else one per sentinel error ("invalid-domain", "no-record", "multiple-records",
// "dns-error", "record-invalid", "no-policy", "address-refused", "fetch-error",
// "policy-invalid"), or "error" for anything else.
func resultLabel(err error) string {
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
