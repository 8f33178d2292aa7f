// Command relay drains the payment outbox: River workers that confirm and
// cancel payments with the gateway. Run it as a sidecar next to the api or as
// its own deployment; several relays may run at once.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"

	"github.com/payment-outbox/payment-outbox/internal/debugserver"
	"github.com/payment-outbox/payment-outbox/internal/gateway/portone"
	"github.com/payment-outbox/payment-outbox/internal/gateway/toss"
	"github.com/payment-outbox/payment-outbox/internal/metrics"
	"github.com/payment-outbox/payment-outbox/internal/payflow"
	"github.com/payment-outbox/payment-outbox/internal/payment"
	"github.com/payment-outbox/payment-outbox/internal/paymentjob"
	"github.com/payment-outbox/payment-outbox/internal/relay"
	"github.com/payment-outbox/payment-outbox/internal/store"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "relay: %v\n", err)
		os.Exit(1)
	}
}

type config struct {
	databaseURL string
	maxConns    int32
	secretKey   string
	baseURL     string
	// portOne*: PORTONE_API_SECRET, PORTONE_STORE_ID, PORTONE_API_BASE_URL.
	portOneSecret  string
	portOneStoreID string
	portOneBaseURL string
	// portOneConfirmMode: PORTONE_CONFIRM_MODE, as the api's.
	portOneConfirmMode payment.PortOneConfirmMode
	// webhookLookupInterval: WEBHOOK_LOOKUP_INTERVAL, as the api's.
	webhookLookupInterval time.Duration
	openDeadline          time.Duration
	// recheckWindow and readySweepAfter: RELAY_RECHECK_WINDOW,
	// RELAY_READY_SWEEP_AFTER.
	recheckWindow   time.Duration
	readySweepAfter time.Duration
	// deposit is the sweep of payments waiting for a virtual account's
	// deposit (RELAY_DEPOSIT_SWEEP_*, RELAY_DEPOSIT_GRACE).
	deposit         payment.DepositSchedule
	schedule        relay.Schedule
	gatewayTimeout  time.Duration
	keyQuiet        time.Duration
	workers         int
	shutdownTimeout time.Duration
	addr            string
	fetchPoll       time.Duration
	fetchCooldown   time.Duration
	reconcileEvery  time.Duration
	reconcileAfter  time.Duration
	rescueAfter     time.Duration
	breakerCooldown time.Duration
	breakerFailures int
	logLevel        slog.Level
	pprofAddr       string
	webhookWorkers  int
	webhookTimeout  time.Duration
	// Retention of finished jobs before River's job cleaner deletes them:
	// RELAY_COMPLETED_JOB_RETENTION, RELAY_CANCELLED_JOB_RETENTION,
	// RELAY_DISCARDED_JOB_RETENTION; River's value -1 (keep) for 0.
	completedRetention time.Duration
	cancelledRetention time.Duration
	discardedRetention time.Duration
	// webhookAllowPrivate lets webhooks go to private addresses
	// (development and tests).
	webhookAllowPrivate bool

	// booksEvery, booksWindow and booksLag: RELAY_BOOKS_INTERVAL,
	// RELAY_BOOKS_WINDOW, RELAY_BOOKS_LAG (reconciliation against the
	// gateways' books).
	booksEvery, booksWindow, booksLag time.Duration
}

func loadConfig(getenv func(string) string) (config, error) {
	c := config{
		databaseURL:    getenv("DATABASE_URL"),
		secretKey:      getenv("TOSS_SECRET_KEY"),
		baseURL:        getenv("TOSS_API_BASE_URL"),
		portOneSecret:  getenv("PORTONE_API_SECRET"),
		portOneStoreID: getenv("PORTONE_STORE_ID"),
		portOneBaseURL: getenv("PORTONE_API_BASE_URL"),
		addr:           or(getenv("RELAY_ADDR"), ":8081"),
	}
	if c.databaseURL == "" {
		return c, errors.New("DATABASE_URL is required")
	}
	// A relay serves every gateway it has a secret for, and needs one.
	if c.secretKey == "" && c.portOneSecret == "" {
		return c, errors.New("no gateway configured: set TOSS_SECRET_KEY, PORTONE_API_SECRET (with PORTONE_STORE_ID), or both")
	}
	if c.secretKey == "" && c.baseURL != "" {
		return c, errors.New("TOSS_API_BASE_URL is set but TOSS_SECRET_KEY is not")
	}
	if (c.portOneSecret == "") != (c.portOneStoreID == "") {
		return c, errors.New("PORTONE_API_SECRET and PORTONE_STORE_ID go together: set both or neither")
	}
	if c.portOneSecret == "" && c.portOneBaseURL != "" {
		return c, errors.New("PORTONE_API_BASE_URL is set but PORTONE_API_SECRET is not")
	}
	var err error
	if c.portOneConfirmMode, err = payment.ParsePortOneConfirmMode(getenv("PORTONE_CONFIRM_MODE")); err != nil {
		return c, errors.New(payment.ErrorOf(err).Message)
	}
	if c.webhookLookupInterval, err = payflow.ParseWebhookLookupInterval(getenv("WEBHOOK_LOOKUP_INTERVAL")); err != nil {
		return c, err
	}
	durations := []struct {
		name string
		def  time.Duration
		dst  *time.Duration
	}{
		{"RELAY_BACKOFF_INITIAL", relay.DefaultSchedule.Initial, &c.schedule.Initial},
		{"RELAY_BACKOFF_MAX", relay.DefaultSchedule.Max, &c.schedule.Max},
		{"RELAY_GATEWAY_TIMEOUT", 10 * time.Second, &c.gatewayTimeout},
		{"RELAY_SHUTDOWN_TIMEOUT", 30 * time.Second, &c.shutdownTimeout},
		{"RELAY_FETCH_POLL_INTERVAL", time.Second, &c.fetchPoll},
		{"RELAY_FETCH_COOLDOWN", 10 * time.Millisecond, &c.fetchCooldown},
		{"RELAY_RECONCILE_INTERVAL", time.Minute, &c.reconcileEvery},
		{"RELAY_RECONCILE_AFTER", 5 * time.Minute, &c.reconcileAfter},
		{"RELAY_BOOKS_INTERVAL", 24 * time.Hour, &c.booksEvery},
		{"RELAY_BOOKS_WINDOW", relay.DefaultBooksWindow, &c.booksWindow},
		{"RELAY_BOOKS_LAG", relay.DefaultBooksLag, &c.booksLag},
		{"RELAY_BREAKER_COOLDOWN", 2 * time.Second, &c.breakerCooldown},
		{"RELAY_OPEN_DEADLINE", relay.DefaultOpenDeadline, &c.openDeadline},
		{"RELAY_RECHECK_WINDOW", payment.DefaultRecheck.Window, &c.recheckWindow},
		{"RELAY_READY_SWEEP_AFTER", relay.DefaultReadySweepAfter, &c.readySweepAfter},
		{"RELAY_DEPOSIT_SWEEP_FAR", payment.DefaultDepositSchedule.Far, &c.deposit.Far},
		{"RELAY_DEPOSIT_SWEEP_NEAR", payment.DefaultDepositSchedule.Near, &c.deposit.Near},
		{"RELAY_DEPOSIT_SWEEP_CLOSE", payment.DefaultDepositSchedule.Close, &c.deposit.Close},
		{"RELAY_DEPOSIT_GRACE", payment.DefaultDepositSchedule.Grace, &c.deposit.Grace},
	}
	for _, d := range durations {
		if *d.dst, err = envDuration(getenv, d.name, d.def); err != nil {
			return c, err
		}
	}
	if c.schedule.Max < c.schedule.Initial {
		return c, errors.New("RELAY_BACKOFF_MAX must not be below RELAY_BACKOFF_INITIAL")
	}
	// The key rule's quiet period: past it, no request of ours under a key
	// can still be running at the gateway (docs/design.md, "The key rule").
	if c.keyQuiet, err = envDuration(getenv, "RELAY_KEY_QUIET", c.gatewayTimeout+30*time.Second); err != nil {
		return c, err
	}
	if c.keyQuiet <= c.gatewayTimeout {
		return c, fmt.Errorf("RELAY_KEY_QUIET must exceed RELAY_GATEWAY_TIMEOUT (%s)", c.gatewayTimeout)
	}
	if c.workers, err = envInt(getenv, "RELAY_WORKERS", 50); err != nil {
		return c, err
	}
	if c.breakerFailures, err = envInt(getenv, "RELAY_BREAKER_FAILURES", 5); err != nil {
		return c, err
	}
	if c.webhookWorkers, err = envInt(getenv, "RELAY_WEBHOOK_WORKERS", 20); err != nil {
		return c, err
	}
	if c.webhookTimeout, err = envDuration(getenv, "RELAY_WEBHOOK_TIMEOUT", relay.DefaultWebhookTimeout); err != nil {
		return c, err
	}
	if v := getenv("RELAY_WEBHOOK_ALLOW_PRIVATE"); v != "" {
		if c.webhookAllowPrivate, err = strconv.ParseBool(v); err != nil {
			return c, fmt.Errorf("RELAY_WEBHOOK_ALLOW_PRIVATE must be true or false, got %q", v)
		}
	}
	// A job makes at most two gateway calls (the call and a lookup) and one
	// outcome write; a job still "running" well past that belongs to a relay
	// that died, and River hands it to another.
	if c.rescueAfter, err = envDuration(getenv, "RELAY_RESCUE_AFTER", c.jobTimeout()+30*time.Second); err != nil {
		return c, err
	}
	if c.rescueAfter <= c.jobTimeout() {
		return c, fmt.Errorf("RELAY_RESCUE_AFTER must exceed the job timeout (%s, twice RELAY_GATEWAY_TIMEOUT plus 20s)", c.jobTimeout())
	}
	// A completed job is the record of a confirm or cancel done (with the
	// attempt rows, the history an operator reads when a customer asks): a
	// week. A discarded one is work that gave up and may need a person: a
	// month, so it outlives any holiday (River's default is a week).
	retentions := []struct {
		name string
		def  time.Duration
		dst  *time.Duration
	}{
		{"RELAY_COMPLETED_JOB_RETENTION", 7 * 24 * time.Hour, &c.completedRetention},
		{"RELAY_CANCELLED_JOB_RETENTION", 7 * 24 * time.Hour, &c.cancelledRetention},
		{"RELAY_DISCARDED_JOB_RETENTION", 30 * 24 * time.Hour, &c.discardedRetention},
	}
	for _, r := range retentions {
		if *r.dst, err = envRetention(getenv, r.name, r.def); err != nil {
			return c, err
		}
	}
	conns, err := envInt(getenv, "DATABASE_MAX_CONNS", 20)
	if err != nil {
		return c, err
	}
	c.maxConns = int32(conns)
	if c.logLevel, err = logLevel(getenv("LOG_LEVEL")); err != nil {
		return c, err
	}
	if v := getenv("PPROF_ADDR"); v != "" {
		if err := debugserver.CheckAddr(v); err != nil {
			return c, err
		}
		c.pprofAddr = v
	}
	return c, nil
}

func (c config) jobTimeout() time.Duration { return 2*c.gatewayTimeout + 20*time.Second }

// gateways builds a client for every gateway configured, by the name
// payments record.
func (c config) gateways() (map[string]relay.Gateway, error) {
	out := map[string]relay.Gateway{}
	if c.secretKey != "" {
		gw, err := toss.New(toss.Config{BaseURL: c.baseURL, SecretKey: c.secretKey, Timeout: c.gatewayTimeout})
		if err != nil {
			return nil, fmt.Errorf("error configuring the Toss client (TOSS_SECRET_KEY, TOSS_API_BASE_URL): %w", err)
		}
		out[payment.GatewayToss] = gw
	}
	if c.portOneSecret != "" {
		gw, err := portone.New(portone.Config{
			BaseURL: c.portOneBaseURL, Secret: c.portOneSecret, StoreID: c.portOneStoreID, Timeout: c.gatewayTimeout,
			ConfirmMode: c.portOneConfirmMode,
		})
		if err != nil {
			return nil, fmt.Errorf("error configuring the PortOne client (PORTONE_API_SECRET, PORTONE_STORE_ID, PORTONE_API_BASE_URL): %w", err)
		}
		out[payment.GatewayPortOne] = gw
	}
	return out, nil
}

// describeGateways names the gateways served and where, for the start line.
func (c config) describeGateways() string {
	var parts []string
	if c.secretKey != "" {
		parts = append(parts, "toss at "+or(c.baseURL, toss.DefaultBaseURL))
	}
	if c.portOneSecret != "" {
		parts = append(parts, "portone at "+or(c.portOneBaseURL, portone.DefaultBaseURL)+" (confirm: "+string(c.portOneConfirmMode)+")")
	}
	return strings.Join(parts, " and ")
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		return fmt.Errorf("unexpected arguments %q (relay takes its configuration from the environment)", args)
	}
	cfg, err := loadConfig(getenv)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: cfg.logLevel}))

	gateways, err := cfg.gateways()
	if err != nil {
		return err
	}

	poolCfg, err := pgxpool.ParseConfig(cfg.databaseURL)
	if err != nil {
		return errors.New("DATABASE_URL is not a valid Postgres connection string")
	}
	poolCfg.MaxConns = cfg.maxConns
	pool, err := pgxpool.NewWithConfig(ctx, poolCfg)
	if err != nil {
		return fmt.Errorf("error creating database pool: %w", err)
	}
	defer pool.Close()

	st := store.New()
	registry, relayMetrics := metrics.ForRelay(metrics.DBConfig{DB: pool, Stats: st, Logger: logger})
	workers := river.NewWorkers()
	// One breaker per gateway: one gateway's outage must not stop the
	// payments of another.
	breakers := make(map[string]*relay.Breaker, len(gateways))
	for name := range gateways {
		breakers[name] = relay.NewBreaker(relay.BreakerConfig{
			Threshold: cfg.breakerFailures, Cooldown: cfg.breakerCooldown, MaxCooldown: cfg.schedule.Max,
			Logger: logger.With(slog.String("gateway", name)), Metrics: relayMetrics,
		})
	}
	if err := relay.AddWorkers(workers, relay.Config{
		Pool: pool, Store: st, Logger: logger, Schedule: cfg.schedule,
		Gateways: gateways, Breakers: breakers, OpenDeadline: cfg.openDeadline,
		Recheck: recheckPolicy(cfg.recheckWindow), ReadySweepAfter: cfg.readySweepAfter, Deposit: cfg.deposit,
		WebhookLookupInterval: cfg.webhookLookupInterval,
		ReconcileAfter:        cfg.reconcileAfter, KeyQuiet: cfg.keyQuiet, BooksWindow: cfg.booksWindow, BooksLag: cfg.booksLag,
		Metrics:  relayMetrics,
		Webhooks: relay.WebhookConfig{Timeout: cfg.webhookTimeout, AllowPrivate: cfg.webhookAllowPrivate},
	}); err != nil {
		return err
	}
	// River's own lines about a job (its retries above all) get the job's
	// payment_id, like the relay's.
	jobLogging := relay.NewJobLogging()
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
		Queues: map[string]river.QueueConfig{
			paymentjob.Queue:        {MaxWorkers: cfg.workers},
			paymentjob.WebhookQueue: {MaxWorkers: cfg.webhookWorkers},
		},
		Workers:              workers,
		PeriodicJobs:         append(relay.PeriodicJobs(cfg.reconcileEvery), relay.BooksPeriodicJob(cfg.booksEvery)),
		Logger:               slog.New(jobLogging.Handler(logger.Handler())),
		Middleware:           []rivertype.Middleware{jobLogging},
		JobTimeout:           cfg.jobTimeout(),
		RescueStuckJobsAfter: cfg.rescueAfter,
		FetchPollInterval:    cfg.fetchPoll,
		// River fetches at most once per cooldown. Its 100ms default caps a
		// relay at RELAY_WORKERS jobs per 100ms (500/s with 50 workers)
		// however fast the gateway answers, and adds up to 100ms to every
		// confirm; the fetch it saves is one indexed query.
		FetchCooldown: min(cfg.fetchCooldown, cfg.fetchPoll),
		// River's job cleaner (on the leader) deletes finished jobs past
		// these, in batches.
		CompletedJobRetentionPeriod: cfg.completedRetention,
		CancelledJobRetentionPeriod: cfg.cancelledRetention,
		DiscardedJobRetentionPeriod: cfg.discardedRetention,
	})
	if err != nil {
		return fmt.Errorf("error creating River client: %w", err)
	}

	if cfg.pprofAddr != "" {
		go debugserver.Serve(ctx, cfg.pprofAddr, logger)
	}
	srv := &http.Server{Addr: cfg.addr, Handler: probes(pool, registry.Handler()), ReadHeaderTimeout: 5 * time.Second}
	srvErr := make(chan error, 1)
	go func() {
		if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			srvErr <- err
		}
	}()

	// River stops abruptly (cancelling running jobs) when the context given
	// to Start is cancelled; the signal context only triggers the soft
	// Stop below, so in-flight gateway calls get the grace period.
	if err := client.Start(context.WithoutCancel(ctx)); err != nil {
		return fmt.Errorf("error starting River client: %w", err)
	}
	fmt.Fprintf(stdout, "relay: working the outbox with %d workers for %s; probes on %s\n",
		cfg.workers, cfg.describeGateways(), cfg.addr)

	select {
	case <-ctx.Done():
	case err := <-srvErr:
		logger.Error("probe server failed", slog.Any("error", err))
	}

	// Soft stop first: in-flight gateway calls finish and their outcomes are
	// written. Past the grace period, cancel; jobs whose answer was not
	// recorded are retried under the same key by the next relay.
	logger.Info("shutting down; finishing in-flight jobs", slog.Duration("grace", cfg.shutdownTimeout))
	stopCtx, cancel := context.WithTimeout(context.Background(), cfg.shutdownTimeout)
	defer cancel()
	if err := client.Stop(stopCtx); err != nil {
		logger.Warn("grace period over; cancelling in-flight jobs", slog.Any("error", err))
		hardCtx, hardCancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer hardCancel()
		_ = client.StopAndCancel(hardCtx)
	}
	shutCtx, shutCancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer shutCancel()
	_ = srv.Shutdown(shutCtx)
	return nil
}

// probes answers liveness and readiness for orchestrators, and serves the
// Prometheus metrics at /metrics.
func probes(pool *pgxpool.Pool, metricsHandler http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metricsHandler)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		var one int
		if err := pool.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil && !errors.Is(err, pgx.ErrNoRows) {
			http.Error(w, "database unavailable", http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ready\n")
	})
	return mux
}

func envDuration(getenv func(string) string, name string, def time.Duration) (time.Duration, error) {
	v := getenv(name)
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%s must be a positive Go duration such as 1s or 500ms, got %q", name, v)
	}
	return d, nil
}

// envRetention reads a job retention: a positive Go duration, or 0 to keep
// the jobs forever (River's -1).
func envRetention(getenv func(string) string, name string, def time.Duration) (time.Duration, error) {
	v := getenv(name)
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%s must be a Go duration such as 168h, or 0 to keep jobs forever, got %q", name, v)
	}
	if d == 0 {
		return -1, nil
	}
	return d, nil
}

func envInt(getenv func(string) string, name string, def int) (int, error) {
	v := getenv(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 || n > 10000 {
		return 0, fmt.Errorf("%s must be a whole number from 1 to 10000, got %q", name, v)
	}
	return n, nil
}

func logLevel(v string) (slog.Level, error) {
	var l slog.Level
	if v == "" {
		return slog.LevelInfo, nil
	}
	if err := l.UnmarshalText([]byte(strings.ToUpper(v))); err != nil {
		return l, fmt.Errorf("LOG_LEVEL must be debug, info, warn or error, got %q", v)
	}
	return l, nil
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// recheckPolicy is the default recheck schedule over RELAY_RECHECK_WINDOW:
// a shorter window (a test, a chaos run) looks at gaps no longer than a
// tenth of it, so it still looks several times.
func recheckPolicy(window time.Duration) payment.Recheck {
	r := payment.DefaultRecheck
	r.Window = window
	r.First = min(r.First, window/10)
	r.MaxGap = min(r.MaxGap, window/10)
	return r
}
