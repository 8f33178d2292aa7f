// Command api serves the payment outbox's HTTP API, or with `api migrate`
// applies every database migration (River's included) and exits.
//
// It only wires: configuration from the environment, a pgx pool, an
// insert-only River client and the httpapi server. See docs/design.md for
// the contract and internal/httpapi for the behaviour.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/payment-outbox/payment-outbox/internal/debugserver"
	"github.com/payment-outbox/payment-outbox/internal/httpapi"
	"github.com/payment-outbox/payment-outbox/internal/metrics"
	"github.com/payment-outbox/payment-outbox/internal/payflow"
	"github.com/payment-outbox/payment-outbox/internal/payment"
	"github.com/payment-outbox/payment-outbox/internal/store"
	"github.com/payment-outbox/payment-outbox/internal/webhook"
)

const usage = `usage: api [migrate | keys create NAME [--scope S] [--owner O] | keys list | keys revoke ID | ops ...]

  api                   serve the HTTP API and the console (/console)
  api migrate           apply every database migration (River's included) and exit
  api keys create NAME [--scope checkout|operator|readonly] [--owner OWNER]
                        create an API key (default scope checkout) of OWNER, the checkout service
                        whose payments it acts on (default "default"; added on first use); the key
                        is printed once, on stdout
  api keys list         list the API keys (id, name, scope, owner, prefix, created, last used, revoked)
  api keys revoke ID    revoke an API key (API processes may accept it for up to 10s more)
  api ops lookup|retry|resolve|acknowledge PAYMENT_ID --reason TEXT
  api ops resend-cancel PAYMENT_ID --reason TEXT [--cancel CANCEL_ID]
  api ops settle-cancel PAYMENT_ID --decision done|resend|abandon --reason TEXT [--cancel CANCEL_ID]
  api ops refund-account PAYMENT_ID --bank CODE --account DIGITS --holder NAME --reason TEXT [--cancel CANCEL_ID]
  api ops retry-job JOB_ID --reason TEXT
  api ops actions PAYMENT_ID
                        an operator action (or a payment's audit trail) through the running api,
                        as API_KEY (an operator key) at API_URL (default http://127.0.0.1:8080)

environment:
  DATABASE_URL          Postgres connection string (required)
  DATABASE_MAX_CONNS    pool size (default 20)
  API_ADDR              listen address (default :8080)
  API_MAX_IN_FLIGHT     requests in flight at once before more are refused 503 overloaded
                        (default 1.5 x DATABASE_MAX_CONNS, 30; 0: no limit; probes, /metrics
                        and waits do not count)
  API_MAX_UNAUTHENTICATED_IN_FLIGHT  webhooks and console sign-ins at work at once, once
                        their body is in, before more are refused 503 overloaded; apart from
                        API_MAX_IN_FLIGHT (default DATABASE_MAX_CONNS / 4, at least 2, 5;
                        0: no limit)
  API_METRICS_ADDR      serve /metrics, without an API key, on a listener of its own at this
                        host:port (for Prometheus; keep it off the public network); unset:
                        /metrics is on API_ADDR, for an operator or readonly key only
  API_SHUTDOWN_TIMEOUT  how long in-flight requests get on SIGINT/SIGTERM (default 15s)
  LOG_LEVEL             debug, info, warn or error (default info)
  PPROF_ADDR            serve net/http/pprof on this loopback host:port (default off)
  API_WEBHOOK_ALLOW_PRIVATE  true: accept webhook endpoint URLs on plain http and on loopback,
                        private and link-local addresses (development and tests only; default false)
  API_WEBHOOK_ENDPOINTS_MAX  active webhook endpoints one owner may have (default 16)
  API_DEV               true: a developer's machine, the console over plain http (its cookies
                        not Secure, no Strict-Transport-Security); default false
  API_MAX_AMOUNT        the largest amount a payment or a cancel may ask for, from 1 to
                        9007199254740991 (2^53 - 1, the default: exact in JavaScript)
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		var ue *usageError
		if errors.As(err, &ue) {
			fmt.Fprintf(os.Stderr, "api: %s\n%s", ue.msg, usage)
			os.Exit(2)
		}
		fmt.Fprintf(os.Stderr, "api: %s\n", err)
		os.Exit(1)
	}
}

// usageError is a command line the program does not understand; main exits 2
// for it, as for any misuse, and 1 for everything else.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

// run is the whole program, given its arguments, environment and outputs, so
// tests can run it in-process. It returns when the command is done or, when
// serving, once ctx is done and the server has shut down.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	command := "serve"
	switch {
	case len(args) == 0:
	case len(args) == 1 && args[0] == "migrate":
		command = "migrate"
	case len(args) >= 1 && args[0] == "keys":
		if err := checkKeysArgs(args[1:]); err != nil {
			return err
		}
		command = "keys"
	case len(args) >= 1 && args[0] == "ops":
		cmd, err := parseOpsArgs(args[1:])
		if err != nil {
			return err
		}
		// Through the api, not the database: no DATABASE_URL needed.
		return ops(ctx, cmd, getenv, stdout)
	case len(args) == 1 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help"):
		_, err := io.WriteString(stdout, usage)
		return err
	default:
		return &usageError{msg: "unknown command " + strconv.Quote(strings.Join(args, " "))}
	}

	cfg, err := loadConfig(getenv)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: cfg.logLevel}))

	pool, err := pgxpool.NewWithConfig(ctx, cfg.pool)
	if err != nil {
		return fmt.Errorf("error creating database pool: %w", err)
	}
	defer pool.Close()

	switch command {
	case "migrate":
		return migrate(ctx, pool, stdout)
	case "keys":
		return keys(ctx, pool, args[1:], stdout, stderr)
	}
	return serve(ctx, cfg, pool, logger, stdout)
}

// config is the program's configuration, read from the environment.
type config struct {
	pool            *pgxpool.Config
	addr            string
	shutdownTimeout time.Duration
	logLevel        slog.Level
	pprofAddr       string
	// metricsAddr: see API_METRICS_ADDR ("": /metrics on addr, behind a key).
	metricsAddr string
	// maxInFlight: see API_MAX_IN_FLIGHT (0: no limit).
	maxInFlight int
	// maxUnauthenticatedInFlight: see API_MAX_UNAUTHENTICATED_IN_FLIGHT (0:
	// no limit).
	maxUnauthenticatedInFlight int
	// webhookAllowPrivate: see API_WEBHOOK_ALLOW_PRIVATE.
	webhookAllowPrivate bool
	// maxAmount: see API_MAX_AMOUNT.
	maxAmount int64
	// development: see API_DEV.
	development bool
	// maxWebhookEndpoints: see API_WEBHOOK_ENDPOINTS_MAX.
	maxWebhookEndpoints int
	// gateways and defaultGateway: see API_GATEWAYS and API_DEFAULT_GATEWAY.
	gateways       []string
	defaultGateway string
	// portOneWebhookSecret: see PORTONE_WEBHOOK_SECRET.
	portOneWebhookSecret string
	// portOneConfirmMode: see PORTONE_CONFIRM_MODE.
	portOneConfirmMode payment.PortOneConfirmMode
	// webhookLookupInterval: see WEBHOOK_LOOKUP_INTERVAL.
	webhookLookupInterval time.Duration
}

// loadConfig reads the environment. Every error is one line naming the
// variable, fit to print as the reason the program exits.
func loadConfig(getenv func(string) string) (config, error) {
	cfg := config{addr: ":8080", shutdownTimeout: 15 * time.Second, logLevel: slog.LevelInfo}

	url := getenv("DATABASE_URL")
	if url == "" {
		return config{}, errors.New("DATABASE_URL is required")
	}
	poolCfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgx's message quotes the connection string with the password
		// redacted only on a best-effort basis, so none of it is repeated.
		return config{}, errors.New("DATABASE_URL is invalid: not a Postgres connection string")
	}
	poolCfg.MaxConns = 20
	if v := getenv("DATABASE_MAX_CONNS"); v != "" {
		n, err := strconv.ParseInt(v, 10, 32)
		if err != nil || n < 1 {
			return config{}, fmt.Errorf("DATABASE_MAX_CONNS must be a positive integer, got %q", v)
		}
		poolCfg.MaxConns = int32(n)
	}
	// google/uuid values in binary, not through driver.Valuer and text.
	poolCfg.AfterConnect = func(_ context.Context, c *pgx.Conn) error {
		store.RegisterUUID(c.TypeMap())
		return nil
	}
	cfg.pool = poolCfg

	if v := getenv("API_ADDR"); v != "" {
		if _, _, err := net.SplitHostPort(v); err != nil {
			return config{}, fmt.Errorf("API_ADDR must be host:port or :port, got %q", v)
		}
		cfg.addr = v
	}
	if v := getenv("API_METRICS_ADDR"); v != "" {
		if _, _, err := net.SplitHostPort(v); err != nil {
			return config{}, fmt.Errorf("API_METRICS_ADDR must be host:port or :port, got %q", v)
		}
		cfg.metricsAddr = v
	}
	cfg.maxInFlight = httpapi.DefaultMaxInFlight(int(poolCfg.MaxConns))
	if v := getenv("API_MAX_IN_FLIGHT"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 1_000_000 {
			return config{}, fmt.Errorf("API_MAX_IN_FLIGHT must be a whole number from 0 (no limit) to 1000000, got %q", v)
		}
		cfg.maxInFlight = n
	}
	cfg.maxUnauthenticatedInFlight = httpapi.DefaultMaxUnauthenticatedInFlight(int(poolCfg.MaxConns))
	if v := getenv("API_MAX_UNAUTHENTICATED_IN_FLIGHT"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 1_000_000 {
			return config{}, fmt.Errorf("API_MAX_UNAUTHENTICATED_IN_FLIGHT must be a whole number from 0 (no limit) to 1000000, got %q", v)
		}
		cfg.maxUnauthenticatedInFlight = n
	}
	if v := getenv("API_SHUTDOWN_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return config{}, fmt.Errorf("API_SHUTDOWN_TIMEOUT must be a positive Go duration such as 15s, got %q", v)
		}
		cfg.shutdownTimeout = d
	}
	if v := getenv("LOG_LEVEL"); v != "" {
		if err := cfg.logLevel.UnmarshalText([]byte(v)); err != nil {
			return config{}, fmt.Errorf("LOG_LEVEL must be debug, info, warn or error, got %q", v)
		}
	}
	if v := getenv("PPROF_ADDR"); v != "" {
		if err := debugserver.CheckAddr(v); err != nil {
			return config{}, err
		}
		cfg.pprofAddr = v
	}
	if v := getenv("API_WEBHOOK_ALLOW_PRIVATE"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return config{}, fmt.Errorf("API_WEBHOOK_ALLOW_PRIVATE must be true or false, got %q", v)
		}
		cfg.webhookAllowPrivate = b
	}
	if v := getenv("API_DEV"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return config{}, fmt.Errorf("API_DEV must be true or false, got %q", v)
		}
		cfg.development = b
	}
	cfg.maxAmount = payment.MaxAmount
	if v := getenv("API_MAX_AMOUNT"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 || n > payment.MaxAmount {
			return config{}, fmt.Errorf("API_MAX_AMOUNT must be a whole number from 1 to %d (2^53 - 1), got %q", payment.MaxAmount, v)
		}
		cfg.maxAmount = n
	}
	cfg.maxWebhookEndpoints = webhook.DefaultMaxEndpoints
	if v := getenv("API_WEBHOOK_ENDPOINTS_MAX"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return config{}, fmt.Errorf("API_WEBHOOK_ENDPOINTS_MAX must be a whole number from 1 to 1000, got %q", v)
		}
		cfg.maxWebhookEndpoints = n
	}
	if cfg.gateways, cfg.defaultGateway, err = loadGateways(getenv); err != nil {
		return config{}, err
	}
	if v := getenv("PORTONE_WEBHOOK_SECRET"); v != "" {
		if err := httpapi.CheckPortOneWebhookSecret(v); err != nil {
			// The library's error never quotes the secret.
			return config{}, fmt.Errorf("PORTONE_WEBHOOK_SECRET is invalid: %w", err)
		}
		cfg.portOneWebhookSecret = v
	}
	if slices.Contains(cfg.gateways, payment.GatewayPortOne) && cfg.portOneWebhookSecret == "" {
		// PortOne's webhooks are how we hear at once of money that moved
		// without our asking (a customer who paid and never came back, a
		// refund in PortOne's console); without the secret every one of
		// them would be refused, and PortOne gives up on them.
		return config{}, errors.New("API_GATEWAYS enables portone but PORTONE_WEBHOOK_SECRET is not set: PortOne's webhooks could not be verified and would all be refused")
	}
	// The relays must run in the same mode: in manual the api takes the
	// checkout's paymentToken and the relay charges with it.
	if cfg.webhookLookupInterval, err = payflow.ParseWebhookLookupInterval(getenv("WEBHOOK_LOOKUP_INTERVAL")); err != nil {
		return config{}, err
	}
	if cfg.portOneConfirmMode, err = payment.ParsePortOneConfirmMode(getenv("PORTONE_CONFIRM_MODE")); err != nil {
		return config{}, errors.New(payment.ErrorOf(err).Message)
	}
	return cfg, nil
}

// loadGateways reads API_GATEWAYS (the gateways payments may be created for,
// comma-separated) and API_DEFAULT_GATEWAY (the one a create that names none
// gets). Each defaults to the other, and toss when neither is set; the
// default must be one of the enabled.
func loadGateways(getenv func(string) string) ([]string, string, error) {
	def := getenv("API_DEFAULT_GATEWAY")
	var enabled []string
	if v := getenv("API_GATEWAYS"); v != "" {
		for _, g := range strings.Split(v, ",") {
			g = strings.TrimSpace(g)
			if err := payment.ValidateGateway(g); err != nil {
				return nil, "", fmt.Errorf("API_GATEWAYS must list gateways among %s, got %q", strings.Join(payment.Gateways(), ", "), v)
			}
			if !slices.Contains(enabled, g) {
				enabled = append(enabled, g)
			}
		}
	}
	switch {
	case def == "" && len(enabled) > 0:
		def = enabled[0]
	case def == "":
		def = payment.GatewayToss
	}
	if err := payment.ValidateGateway(def); err != nil {
		return nil, "", fmt.Errorf("API_DEFAULT_GATEWAY must be one of %s, got %q", strings.Join(payment.Gateways(), ", "), def)
	}
	if len(enabled) == 0 {
		enabled = []string{def}
	}
	if !slices.Contains(enabled, def) {
		return nil, "", fmt.Errorf("API_DEFAULT_GATEWAY %q is not among API_GATEWAYS (%s)", def, strings.Join(enabled, ","))
	}
	return enabled, def, nil
}

// migrate applies the migrations and says what it did.
func migrate(ctx context.Context, pool *pgxpool.Pool, stdout io.Writer) error {
	res, err := store.Migrate(ctx, pool)
	if err != nil {
		return fmt.Errorf("error migrating: %w", err)
	}
	if len(res.RiverApplied) == 0 && len(res.Applied) == 0 {
		_, err = fmt.Fprintln(stdout, "api: migrations up to date")
		return err
	}
	for _, v := range res.RiverApplied {
		if _, err := fmt.Fprintf(stdout, "api: applied river migration %d\n", v); err != nil {
			return err
		}
	}
	for _, v := range res.Applied {
		if _, err := fmt.Fprintf(stdout, "api: applied migration %s\n", v); err != nil {
			return err
		}
	}
	return nil
}

// serve runs the HTTP server until ctx is done, then drains it within the
// shutdown timeout.
func serve(ctx context.Context, cfg config, pool *pgxpool.Pool, logger *slog.Logger, stdout io.Writer) error {
	// Insert-only: no Queues and no Workers. The API must never call the
	// gateway, and the jobs it enqueues are worked by cmd/relay; a client
	// without queues is never started, so it fetches nothing and takes no
	// part in River's leader election and maintenance, which stay with the
	// relays however many API replicas run.
	outbox, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
		Logger: logger,
		// An insert-only client uses FetchCooldown for one thing: it sends
		// the relays an insert notification at most once per cooldown. At
		// River's 100ms default an idle relay learns of a confirm up to
		// 100ms late; 10ms costs at most 100 NOTIFYs a second.
		FetchCooldown: 10 * time.Millisecond,
	})
	if err != nil {
		return fmt.Errorf("error creating River client: %w", err)
	}

	// Not fatal: the process serves /healthz and answers /readyz with 503
	// until the database is back, which is what an orchestrator wants to see.
	pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	if err := pool.Ping(pingCtx); err != nil {
		logger.Warn("database not reachable at startup", slog.String("error", err.Error()))
	}
	cancel()

	st := store.New()
	registry, httpMetrics := metrics.ForAPI(metrics.DBConfig{DB: pool, Stats: st, Logger: logger})
	// The metrics reveal volumes (payments by status, requests, refused
	// sign-ins): on a listener of their own, which Prometheus reaches and
	// the public does not, or else on the public one behind a key
	// (docs/design.md, section 21).
	var publicMetrics http.Handler
	if cfg.metricsAddr == "" {
		publicMetrics = registry.Handler()
	}
	api := httpapi.New(httpapi.Config{
		Pool: pool, Store: st, Outbox: outbox, Logger: logger,
		Metrics: httpMetrics, MetricsHandler: publicMetrics,
		WebhookAllowPrivate:        cfg.webhookAllowPrivate,
		MaxWebhookEndpoints:        cfg.maxWebhookEndpoints,
		MaxInFlight:                cfg.maxInFlight,
		MaxUnauthenticatedInFlight: cfg.maxUnauthenticatedInFlight,
		Gateways:                   cfg.gateways, DefaultGateway: cfg.defaultGateway, PortOneConfirmMode: cfg.portOneConfirmMode,
		PortOneWebhookSecret:  cfg.portOneWebhookSecret,
		WebhookLookupInterval: cfg.webhookLookupInterval,
		MaxAmount:             cfg.maxAmount,
		Development:           cfg.development,
	})
	srv := &http.Server{
		Handler: api.Handler(),
		// Slow-client bounds: headers must arrive promptly; a whole request
		// (at most the body limit) and its answer get a generous while. The
		// unauthenticated routes read their bodies under a much shorter
		// deadline of their own (httpapi.DefaultUnauthenticatedBodyTimeout).
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		// Room for the longest wait (GET ?wait=) and the work around it.
		WriteTimeout:   httpapi.MaxWait + 30*time.Second,
		IdleTimeout:    2 * time.Minute,
		MaxHeaderBytes: 64 << 10,
		ErrorLog:       slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		// No BaseContext from ctx: on a signal, in-flight requests finish
		// (Shutdown waits for them) rather than having their transactions
		// canceled under them.
	}

	// Listening before serving lets the start line carry the real address
	// (API_ADDR=:0 picks a free port).
	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return fmt.Errorf("error listening on %s: %w", cfg.addr, err)
	}
	if _, err := fmt.Fprintf(stdout, "api: listening on %s\n", ln.Addr()); err != nil {
		_ = ln.Close()
		return err
	}
	logger.Info("api listening", slog.String("addr", ln.Addr().String()))

	if cfg.pprofAddr != "" {
		go debugserver.Serve(ctx, cfg.pprofAddr, logger)
	}
	if cfg.metricsAddr != "" {
		mln, err := net.Listen("tcp", cfg.metricsAddr)
		if err != nil {
			_ = ln.Close()
			return fmt.Errorf("error listening on %s (API_METRICS_ADDR): %w", cfg.metricsAddr, err)
		}
		if _, err := fmt.Fprintf(stdout, "api: metrics on %s\n", mln.Addr()); err != nil {
			_ = ln.Close()
			_ = mln.Close()
			return err
		}
		logger.Info("api metrics listening", slog.String("addr", mln.Addr().String()))
		go serveMetrics(ctx, mln, registry.Handler(), logger)
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	select {
	case err := <-serveErr:
		return fmt.Errorf("error serving: %w", err)
	case <-ctx.Done():
	}

	logger.Info("shutting down", slog.String("timeout", cfg.shutdownTimeout.String()))
	// Waiting requests answer now with what they have, rather than hold
	// the shutdown up for their full wait.
	api.Close()
	shutdownCtx, cancelShutdown := context.WithTimeout(context.WithoutCancel(ctx), cfg.shutdownTimeout)
	defer cancelShutdown()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		_ = srv.Close()
		return fmt.Errorf("error shutting down: %w", err)
	}
	if err := <-serveErr; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("error serving: %w", err)
	}
	logger.Info("shut down")
	return nil
}

// serveMetrics serves GET /metrics on ln, without an API key, until ctx
// ends. Nothing else is there: not the API, not the probes.
func serveMetrics(ctx context.Context, ln net.Listener, h http.Handler, logger *slog.Logger) {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", h)
	srv := &http.Server{
		Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 16 << 10,
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	go func() {
		<-ctx.Done()
		shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		_ = srv.Shutdown(shutCtx)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		logger.Error("metrics server failed", slog.String("error", err.Error()))
	}
}

// Compile-time check that the River client is an httpapi outbox.
var _ httpapi.Inserter = (*river.Client[pgx.Tx])(nil)
