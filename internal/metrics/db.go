package metrics

import (
	"context"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/payment-outbox/payment-outbox/internal/payment"
	"github.com/payment-outbox/payment-outbox/internal/paymentjob"
	"github.com/payment-outbox/payment-outbox/internal/store"
)

// Names of the gauges read from Postgres.
const (
	nameOutboxJobs         = namespace + "_jobs"
	nameOutboxOldestAge    = namespace + "_oldest_pending_job_age_seconds"
	namePayments           = namespace + "_payments"
	namePaymentsUnknown    = namespace + "_payments_unknown"
	namePaymentsAcked      = namespace + "_payments_acknowledged"
	nameJobsDiscarded      = namespace + "_jobs_discarded"
	nameDBStatsUp          = namespace + "_db_stats_up"
	nameDBStatsReadSeconds = namespace + "_db_stats_read_duration_seconds"
)

// Defaults of DBConfig.
const (
	// DefaultDBCacheFor is how long one read of the database figures serves
	// scrapes. Several Prometheus servers, or a dashboard's refresh, scraping
	// every api and relay must not turn into a query storm; figures a few
	// seconds old are as good for a dashboard or an alert.
	DefaultDBCacheFor = 5 * time.Second
	// DefaultDBTimeout bounds the reading, so a slow database makes a scrape
	// report db_stats_up 0 instead of hanging it past Prometheus's own
	// scrape timeout (10s by default).
	DefaultDBTimeout = 2 * time.Second
)

// The River states the outbox gauges count: jobs not yet finished.
var pendingStates = []string{"available", "scheduled", "retryable", "running"}

// knownKinds are exported at zero when no job of theirs is pending, so their
// series do not come and go with the traffic.
var knownKinds = []string{
	paymentjob.ConfirmArgs{}.Kind(),
	paymentjob.CancelArgs{}.Kind(),
	paymentjob.LookupArgs{}.Kind(),
	paymentjob.WebhookArgs{}.Kind(),
	// relay.ReconcileArgs; the relay imports this package, not the other
	// way round.
	"payment_reconcile",
}

// StatsReader reads the figures the database gauges show. *store.Store
// implements it.
type StatsReader interface {
	OutboxJobs(ctx context.Context, db store.DBTX) ([]store.OutboxJobs, error)
	PaymentsByStatus(ctx context.Context, db store.DBTX) (map[payment.Status]int64, error)
	PaymentsAcknowledged(ctx context.Context, db store.DBTX) (int64, error)
	DiscardedJobs(ctx context.Context, db store.DBTX) (map[string]int64, error)
}

// DBConfig is what the database gauges need.
type DBConfig struct {
	// DB is where to read; required.
	DB store.DBTX
	// Stats runs the queries. Default: store.New().
	Stats StatsReader
	// Logger receives a warning when a read fails. Default: discard.
	Logger *slog.Logger
	// CacheFor is how long one read serves scrapes. Default:
	// DefaultDBCacheFor.
	CacheFor time.Duration
	// Timeout bounds one read. Default: DefaultDBTimeout.
	Timeout time.Duration
	// Now is the clock of the cache. Default: time.Now.
	Now func() time.Time
}

// RegisterDB registers the gauges read from Postgres on r: outbox jobs by
// kind and state, the age of the oldest pending job, payments by status and
// in unknown. They are read on scrape, at most once per CacheFor.
func RegisterDB(r *Registry, cfg DBConfig) {
	if cfg.DB == nil {
		panic("metrics: DBConfig.DB is required")
	}
	c := &dbCollector{
		db: cfg.DB, stats: cfg.Stats, log: cfg.Logger, cacheFor: cfg.CacheFor, timeout: cfg.Timeout, now: cfg.Now,
		jobs: prometheus.NewDesc(nameOutboxJobs,
			"Outbox (River) jobs not yet finished, by kind and state (available, scheduled, retryable, running).",
			[]string{"kind", "state"}, nil),
		oldestAge: prometheus.NewDesc(nameOutboxOldestAge,
			"Age in seconds of the oldest outbox job of a kind that is not finished (0 when none is); retries and snoozes keep a job pending.",
			[]string{"kind"}, nil),
		payments: prometheus.NewDesc(namePayments,
			"Payments waiting on the gateway's word, by status (confirming, canceling, unknown), and on the customer's deposit into a virtual account (waiting_for_deposit); settled payments are counted by payment_outbox_relay_outcomes_total.",
			[]string{"status"}, nil),
		unknown: prometheus.NewDesc(namePaymentsUnknown,
			"Payments in unknown that no operator has acknowledged: no definite answer from the gateway yet; the reconciler keeps asking, an operator may have to act.",
			nil, nil),
		acknowledged: prometheus.NewDesc(namePaymentsAcked,
			"Payments in unknown that an operator acknowledged (taken off the alert list with a reason, status kept).",
			nil, nil),
		discarded: prometheus.NewDesc(nameJobsDiscarded,
			"Outbox jobs River discarded (attempts spent or cancelled by the worker), by kind, for as long as River keeps them (a week by default).",
			[]string{"kind"}, nil),
		up: prometheus.NewDesc(nameDBStatsUp,
			"1 when the last read of the database gauges succeeded; 0 when it failed or timed out, and the other database gauges are left out.",
			nil, nil),
		readSeconds: prometheus.NewDesc(nameDBStatsReadSeconds,
			"How long the last read of the database gauges took.",
			nil, nil),
	}
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
	r.record(nameOutboxJobs, TypeGauge, "kind", "state")
	r.record(nameOutboxOldestAge, TypeGauge, "kind")
	r.record(namePayments, TypeGauge, "status")
	r.record(namePaymentsUnknown, TypeGauge)
	r.record(namePaymentsAcked, TypeGauge)
	r.record(nameJobsDiscarded, TypeGauge, "kind")
	r.record(nameDBStatsUp, TypeGauge)
	r.record(nameDBStatsReadSeconds, TypeGauge)
}

// dbCollector reads its gauges from Postgres when scraped, caching the read.
type dbCollector struct {
	db       store.DBTX
	stats    StatsReader
	log      *slog.Logger
	cacheFor time.Duration
	timeout  time.Duration
	now      func() time.Time

	jobs, oldestAge, payments, unknown, up, readSeconds *prometheus.Desc
	acknowledged, discarded                             *prometheus.Desc

	// mu is held for a whole read, so concurrent scrapes share one.
	mu     sync.Mutex
	readAt time.Time
	last   dbSnapshot
}

// dbSnapshot is one read of the database figures.
type dbSnapshot struct {
	jobs         []store.OutboxJobs
	payments     map[payment.Status]int64
	acknowledged int64
	discarded    map[string]int64
	took         time.Duration
	err          error
}

// Describe implements prometheus.Collector.
func (c *dbCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.jobs, c.oldestAge, c.payments, c.unknown, c.acknowledged, c.discarded, c.up, c.readSeconds} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *dbCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.snapshot()
	ch <- prometheus.MustNewConstMetric(c.readSeconds, prometheus.GaugeValue, s.took.Seconds())
	if s.err != nil {
		// Stale or zero figures would read as facts ("no payment is
		// unknown"); missing ones and up=0 say what is known.
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 1)

	counts := map[[2]string]int64{}
	oldest := map[string]float64{}
	for _, k := range knownKinds {
		oldest[k] = 0
	}
	for _, j := range s.jobs {
		counts[[2]string{j.Kind, j.State}] += j.Jobs
		oldest[j.Kind] = max(oldest[j.Kind], j.OldestAge.Seconds())
	}
	for _, kind := range slices.Sorted(maps.Keys(oldest)) {
		for _, state := range pendingStates {
			ch <- prometheus.MustNewConstMetric(c.jobs, prometheus.GaugeValue, float64(counts[[2]string{kind, state}]), kind, state)
		}
		ch <- prometheus.MustNewConstMetric(c.oldestAge, prometheus.GaugeValue, oldest[kind], kind)
	}

	byStatus := map[payment.Status]int64{}
	for _, st := range payment.AttentionStatuses() {
		byStatus[st] = 0
	}
	// Counted beside them, never in the unknown gauge (docs/design.md
	// section 19): a virtual account waiting days for its deposit.
	byStatus[payment.StatusWaitingForDeposit] = 0
	maps.Copy(byStatus, s.payments)
	for st, n := range byStatus {
		ch <- prometheus.MustNewConstMetric(c.payments, prometheus.GaugeValue, float64(n), string(st))
	}
	// The alert on unknown payments reads this gauge: an acknowledged one
	// has a person on it and must stop paging.
	ch <- prometheus.MustNewConstMetric(c.unknown, prometheus.GaugeValue, float64(byStatus[payment.StatusUnknown]-s.acknowledged))
	ch <- prometheus.MustNewConstMetric(c.acknowledged, prometheus.GaugeValue, float64(s.acknowledged))
	discarded := map[string]int64{}
	for _, k := range knownKinds {
		discarded[k] = 0
	}
	maps.Copy(discarded, s.discarded)
	for _, kind := range slices.Sorted(maps.Keys(discarded)) {
		ch <- prometheus.MustNewConstMetric(c.discarded, prometheus.GaugeValue, float64(discarded[kind]), kind)
	}
}

// snapshot returns the cached read, or reads again once it is older than
// cacheFor. A failed read is cached as well, so a database in trouble is
// asked once per cacheFor, not once per scrape.
func (c *dbCollector) snapshot() dbSnapshot {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if !c.readAt.IsZero() && now.Sub(c.readAt) < c.cacheFor {
		return c.last
	}
	c.last = c.read()
	c.readAt = c.now()
	return c.last
}

func (c *dbCollector) read() dbSnapshot {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	start := time.Now()
	var s dbSnapshot
	s.jobs, s.err = c.stats.OutboxJobs(ctx, c.db)
	if s.err == nil {
		s.payments, s.err = c.stats.PaymentsByStatus(ctx, c.db)
	}
	if s.err == nil {
		s.acknowledged, s.err = c.stats.PaymentsAcknowledged(ctx, c.db)
	}
	if s.err == nil {
		s.discarded, s.err = c.stats.DiscardedJobs(ctx, c.db)
	}
	s.took = time.Since(start)
	if s.err != nil {
		c.log.Warn("error reading database metrics; db_stats_up is 0 until a read succeeds",
			slog.String("error", s.err.Error()), slog.Duration("took", s.took))
	}
	return s
}
