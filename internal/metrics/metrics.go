// Package metrics owns the Prometheus metrics of the api and the relay: their
// names, help, labels and buckets, the registry each binary serves at
// GET /metrics, and the collector of the gauges read from Postgres.
//
// Nothing here touches Prometheus's global default registry: each binary
// builds its own (ForAPI, ForRelay) and passes the parts to the packages that
// count. Every recording method is safe on a nil receiver and then does
// nothing, so code under test needs no metrics at all.
//
// The deploy/observability dashboard and alert rules may use only the series
// these registries export; metrics_test.go holds them to it.
package metrics

import (
	"cmp"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"

	"github.com/payment-outbox/payment-outbox/internal/gateway"
	"github.com/payment-outbox/payment-outbox/internal/payment"
)

// namespace prefixes every metric the project defines.
const namespace = "payment_outbox"

// The label values exported from the start: the relay's counters at zero,
// so that a first increment shows in rate() and increase() (a series that
// appears at 1 has no earlier sample to count from) and alerts on rare events
// fire on the first one; the payments gauge at zero for the statuses it
// counts that no payment is in, so series do not come and go.
var (
	operations = []payment.Operation{payment.OperationConfirm, payment.OperationCancel, payment.OperationLookup}
	classes    = gateway.Classes()
	statuses   = payment.Statuses()
)

// Type is the kind of a metric family.
type Type string

// The metric types the project uses.
const (
	TypeCounter   Type = "counter"
	TypeGauge     Type = "gauge"
	TypeHistogram Type = "histogram"
	TypeSummary   Type = "summary"
	TypeUntyped   Type = "untyped"
)

// Family describes one metric family a registry exports.
type Family struct {
	Name   string
	Type   Type
	Labels []string
}

// Registry is the metrics one process exports: a Prometheus registry of its
// own, and a record of every family registered on it, so that the families
// can be listed even before anything was counted (a labelled counter with no
// children exports nothing yet).
type Registry struct {
	reg      *prometheus.Registry
	logger   *slog.Logger
	families map[string]Family
}

// NewRegistry returns a registry with the Go runtime and process metrics
// (go_*, process_*). logger receives errors met while serving a scrape; nil
// discards them.
func NewRegistry(logger *slog.Logger) *Registry {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	r := &Registry{reg: prometheus.NewRegistry(), logger: logger, families: map[string]Family{}}
	r.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return r
}

// Handler serves the registry in the Prometheus exposition formats. A
// collector that fails is logged and left out; the rest is still served.
func (r *Registry) Handler() http.Handler {
	return promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{
		ErrorLog:      errorLog{r.logger},
		ErrorHandling: promhttp.ContinueOnError,
		Registry:      r.reg,
	})
}

// Gatherer returns the underlying registry, for tests and for serving it
// some other way.
func (r *Registry) Gatherer() prometheus.Gatherer {
	return r.reg
}

// Families lists every family the registry can export: those registered
// through this package, whether or not they have been counted yet, and those
// the other collectors (Go runtime, process) export now. Sorted by name.
func (r *Registry) Families() ([]Family, error) {
	out := maps.Clone(r.families)
	gathered, err := r.reg.Gather()
	for _, mf := range gathered {
		if _, ok := out[mf.GetName()]; ok {
			continue
		}
		f := Family{Name: mf.GetName(), Type: typeOf(mf.GetType())}
		seen := map[string]bool{}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if !seen[lp.GetName()] {
					seen[lp.GetName()] = true
					f.Labels = append(f.Labels, lp.GetName())
				}
			}
		}
		slices.Sort(f.Labels)
		out[f.Name] = f
	}
	fams := slices.Collect(maps.Values(out))
	slices.SortFunc(fams, func(a, b Family) int { return cmp.Compare(a.Name, b.Name) })
	return fams, err
}

func typeOf(t dto.MetricType) Type {
	switch t {
	case dto.MetricType_COUNTER:
		return TypeCounter
	case dto.MetricType_GAUGE:
		return TypeGauge
	case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
		return TypeHistogram
	case dto.MetricType_SUMMARY:
		return TypeSummary
	}
	return TypeUntyped
}

// record notes a family registered through this package.
func (r *Registry) record(name string, t Type, labels ...string) {
	r.families[name] = Family{Name: name, Type: t, Labels: slices.Sorted(slices.Values(labels))}
}

func (r *Registry) counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	v := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	r.reg.MustRegister(v)
	r.record(name, TypeCounter, labels...)
	return v
}

func (r *Registry) counter(name, help string) prometheus.Counter {
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	r.reg.MustRegister(c)
	r.record(name, TypeCounter)
	return c
}

func (r *Registry) gauge(name, help string) prometheus.Gauge {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
	r.reg.MustRegister(g)
	r.record(name, TypeGauge)
	return g
}

func (r *Registry) histogramVec(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	v := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}, labels)
	r.reg.MustRegister(v)
	r.record(name, TypeHistogram, labels...)
	return v
}

// errorLog passes promhttp's errors to slog.
type errorLog struct{ logger *slog.Logger }

// Println implements promhttp.Logger.
func (l errorLog) Println(v ...any) {
	l.logger.Warn("error serving metrics", slog.String("error", fmt.Sprint(v...)))
}

// ForAPI builds the registry cmd/api serves at GET /metrics: the Go runtime
// and process metrics, the database gauges, and the HTTP metrics, which it
// returns for httpapi.Config.
func ForAPI(db DBConfig) (*Registry, *HTTP) {
	r := NewRegistry(db.Logger)
	RegisterDB(r, db)
	return r, NewHTTP(r)
}

// ForRelay builds the registry cmd/relay serves at GET /metrics on
// RELAY_ADDR: the Go runtime and process metrics, the database gauges (the
// reconciliation's among them), and the relay's own, which it returns for relay.Config and relay.BreakerConfig.
func ForRelay(db DBConfig) (*Registry, *Relay) {
	r := NewRegistry(db.Logger)
	RegisterDB(r, db)
	registerBooksDB(r, db)
	return r, NewRelay(r)
}
