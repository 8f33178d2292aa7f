package metrics

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/payment-outbox/payment-outbox/internal/payment"
	"github.com/payment-outbox/payment-outbox/internal/store"
)

// Names of the reconciliation (books) metrics (docs/design.md,
// "Reconciliation").
const (
	nameBooksRuns                 = namespace + "_books_runs_total"
	nameBooksDifferencesFound     = namespace + "_books_differences_found_total"
	nameBooksDifferencesPersist   = namespace + "_books_differences_persisting_total"
	nameBooksLastSuccess          = namespace + "_books_last_success_timestamp_seconds"
	nameBooksOpenDifferences      = namespace + "_books_open_differences"
	nameBooksPersistingOpen       = namespace + "_books_persisting_differences"
	booksResultOK, booksResultErr = "ok", "error"
)

// booksKinds are the kinds of difference, exported at zero from the start.
var booksKinds = []string{
	store.BooksUnknownPayment, store.BooksApprovalMissing, store.BooksAmountDiffers,
	store.BooksRefundMissing, store.BooksMissingAtGateway,
}

// booksCounters are the relay's reconciliation counters.
type booksCounters struct {
	runs       *prometheus.CounterVec
	found      *prometheus.CounterVec
	persisting *prometheus.CounterVec
}

func newBooksCounters(r *Registry) booksCounters {
	c := booksCounters{
		runs: r.counterVec(nameBooksRuns,
			"Reconciliation runs against a gateway's books, by gateway and result (ok, error: the listing or the comparison failed).",
			"gateway", "result"),
		found: r.counterVec(nameBooksDifferencesFound,
			"Differences between a gateway's books and ours that a run found, by gateway and kind.",
			"gateway", "kind"),
		persisting: r.counterVec(nameBooksDifferencesPersist,
			"Differences a run found that an earlier run had found too: neither a lookup nor time settled them.",
			"gateway"),
	}
	for _, g := range payment.Gateways() {
		c.runs.WithLabelValues(g, booksResultOK)
		c.runs.WithLabelValues(g, booksResultErr)
		c.persisting.WithLabelValues(g)
		for _, k := range booksKinds {
			c.found.WithLabelValues(g, k)
		}
	}
	return c
}

// BooksRun counts one reconciliation run of a gateway: what it found, and
// whether it compared everything.
func (m *Relay) BooksRun(gateway string, ok bool, found map[string]int, persisting int) {
	if m == nil {
		return
	}
	result := booksResultOK
	if !ok {
		result = booksResultErr
	}
	m.books.runs.WithLabelValues(gateway, result).Inc()
	for kind, n := range found {
		m.books.found.WithLabelValues(gateway, kind).Add(float64(n))
	}
	m.books.persisting.WithLabelValues(gateway).Add(float64(persisting))
}

// BooksStatsReader reads the reconciliation figures. *store.Store
// implements it.
type BooksStatsReader interface {
	BooksStats(ctx context.Context, db store.DBTX) ([]store.BooksStats, error)
}

// registerBooksDB registers the reconciliation gauges read from Postgres:
// per gateway, when its last run succeeded and its open differences.
func registerBooksDB(r *Registry, cfg DBConfig) {
	c := &booksCollector{
		db: cfg.DB, log: cfg.Logger, cacheFor: cfg.CacheFor, timeout: cfg.Timeout, now: cfg.Now,
		lastSuccess: prometheus.NewDesc(nameBooksLastSuccess,
			"When a gateway's last reconciliation run without an error finished (Unix seconds); absent before the first.",
			[]string{"gateway"}, nil),
		open: prometheus.NewDesc(nameBooksOpenDifferences,
			"Differences between a gateway's books and ours that no later run has resolved.",
			[]string{"gateway"}, nil),
		persisting: prometheus.NewDesc(nameBooksPersistingOpen,
			"Open differences that more than one run found: what a lookup could not settle, for an operator.",
			[]string{"gateway"}, nil),
	}
	c.stats, _ = cfg.Stats.(BooksStatsReader)
	if c.stats == nil {
		c.stats = store.New()
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.cacheFor <= 0 {
		c.cacheFor = DefaultDBCacheFor
	}
	if c.timeout <= 0 {
		c.timeout = DefaultDBTimeout
	}
	if c.now == nil {
		c.now = time.Now
	}
	r.reg.MustRegister(c)
	r.record(nameBooksLastSuccess, TypeGauge, "gateway")
	r.record(nameBooksOpenDifferences, TypeGauge, "gateway")
	r.record(nameBooksPersistingOpen, TypeGauge, "gateway")
}

// booksCollector reads the books gauges on scrape, at most once per
// cacheFor, as the other database gauges are read.
type booksCollector struct {
	db       store.DBTX
	stats    BooksStatsReader
	log      *slog.Logger
	cacheFor time.Duration
	timeout  time.Duration
	now      func() time.Time

	lastSuccess, open, persisting *prometheus.Desc

	mu     sync.Mutex
	readAt time.Time
	last   []store.BooksStats
	err    error
}

// Describe implements prometheus.Collector.
func (c *booksCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.lastSuccess
	ch <- c.open
	ch <- c.persisting
}

// Collect implements prometheus.Collector. A failed read exports nothing
// (db_stats_up already says the database is not answering).
func (c *booksCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	if c.readAt.IsZero() || c.now().Sub(c.readAt) >= c.cacheFor {
		ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
		c.last, c.err = c.stats.BooksStats(ctx, c.db)
		cancel()
		c.readAt = c.now()
		if c.err != nil {
			c.log.Warn("error reading books metrics", slog.String("error", c.err.Error()))
		}
	}
	stats, err := c.last, c.err
	c.mu.Unlock()
	if err != nil {
		return
	}
	seen := map[string]bool{}
	for _, s := range stats {
		seen[s.Gateway] = true
		if !s.LastSuccess.IsZero() {
			ch <- prometheus.MustNewConstMetric(c.lastSuccess, prometheus.GaugeValue, float64(s.LastSuccess.UnixNano())/1e9, s.Gateway)
		}
		ch <- prometheus.MustNewConstMetric(c.open, prometheus.GaugeValue, float64(s.Open), s.Gateway)
		ch <- prometheus.MustNewConstMetric(c.persisting, prometheus.GaugeValue, float64(s.Persisting), s.Gateway)
	}
	for _, g := range payment.Gateways() {
		if !seen[g] {
			ch <- prometheus.MustNewConstMetric(c.open, prometheus.GaugeValue, 0, g)
			ch <- prometheus.MustNewConstMetric(c.persisting, prometheus.GaugeValue, 0, g)
		}
	}
}
