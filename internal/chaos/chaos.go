// Package chaos is the chaos suite: thousands of payments through the real
// api, several relay processes and gatewaysim with injected faults, while
// relays are SIGKILLed at random moments and Postgres is restarted under
// them. When the outbox is drained it checks every invariant in
// docs/design.md against the gateway's ledger.
package chaos

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/payment-outbox/payment-outbox/internal/gatewaysim"
	"github.com/payment-outbox/payment-outbox/internal/systest"
)

// Config sets the size and harshness of a run. Zero values take defaults.
type Config struct {
	Payments    int // default 2000
	Concurrency int // checkout clients posting at once, default 32
	Relays      int // relay processes, default 2
	Kills       int // relay SIGKILLs spread over the load phase, default 6
	// RestartPostgres stops and starts Postgres once mid-run. It needs the
	// server binaries (scripts/localpg); without them the run says so and
	// skips the restart.
	RestartPostgres bool
	Seed            uint64
	// ErrorRate is the chance a confirm or cancel call is answered with an
	// injected error (spread over transient and unclear codes); LostRate the
	// chance one is performed and its response dropped.
	ErrorRate float64 // default 0.08
	LostRate  float64 // default 0.03
	Latency   time.Duration
	Jitter    time.Duration
	// Downtime is the length of the one window in which the gateway answers
	// every call with 503, starting a third of the way into the load.
	Downtime     time.Duration // default 2s
	DrainTimeout time.Duration // default 5m
	// DatabaseURL, when set, is used instead of a local cluster (and
	// Postgres is then not restarted).
	DatabaseURL string
	Log         io.Writer
}

func (c *Config) defaults() {
	if c.Payments <= 0 {
		c.Payments = 2000
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 32
	}
	if c.Relays <= 0 {
		c.Relays = 2
	}
	if c.Kills < 0 {
		c.Kills = 0
	}
	if c.ErrorRate == 0 {
		c.ErrorRate = 0.08
	}
	if c.LostRate == 0 {
		c.LostRate = 0.03
	}
	if c.Latency == 0 {
		c.Latency = 2 * time.Millisecond
	}
	if c.Jitter == 0 {
		c.Jitter = 15 * time.Millisecond
	}
	if c.Downtime == 0 {
		c.Downtime = 2 * time.Second
	}
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = 5 * time.Minute
	}
	if c.Seed == 0 {
		c.Seed = uint64(time.Now().UnixNano())
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
}

// Report is what a run did and found.
type Report struct {
	Seed             uint64         `json:"seed"`
	Payments         int            `json:"payments"`
	Outcomes         map[string]int `json:"outcomes"`
	GatewayCalls     int            `json:"gatewayCalls"`
	FaultsInjected   int            `json:"faultsInjected"`
	LostResponses    int            `json:"lostResponses"`
	Replayed         int            `json:"replayed"`
	Kills            int            `json:"kills"`
	PostgresRestarts int            `json:"postgresRestarts"`
	APIRetries       int64          `json:"apiRetries"`
	Unknown          int            `json:"unknown"`
	Violations       []string       `json:"violations"`
	Duration         time.Duration  `json:"duration"`
}

// system is what one run started.
type system struct {
	cfg     Config
	bin     systest.Binaries
	pg      *systest.LocalPostgres
	dbURL   string
	pool    *pgxpool.Pool
	sim     *gatewaysim.Client
	simURL  string
	apiURL  string
	apiKey  string
	relays  []*systest.Process
	others  []*systest.Process
	workDir string
}

// Run performs one chaos run and checks the invariants. The error is for
// a run that could not be carried out; violations are in the report.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg.defaults()
	start := time.Now()
	logf := func(format string, args ...any) {
		fmt.Fprintf(cfg.Log, "chaos: "+format+"\n", args...)
	}
	sys, err := startSystem(ctx, cfg, logf)
	if sys != nil {
		defer sys.close(logf)
	}
	if err != nil {
		return nil, err
	}

	rep := &Report{Seed: cfg.Seed, Payments: cfg.Payments, Outcomes: map[string]int{}}
	rng := rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15))
	plans := planPayments(cfg, rng)

	if err := sys.configureFaults(ctx, cfg); err != nil {
		return nil, err
	}
	loadCtx, stopChaos := context.WithCancel(ctx)
	var chaosWG sync.WaitGroup
	var done atomic.Int64 // payments pushed so far: the chaos keys off it
	chaosWG.Add(1)
	go func() {
		defer chaosWG.Done()
		sys.wreak(loadCtx, cfg, rng.Uint64(), &done, rep, logf)
	}()

	logf("pushing %d payments with %d clients (seed %d)", len(plans), cfg.Concurrency, cfg.Seed)
	var retries atomic.Int64
	loadErr := sys.push(ctx, cfg, plans, &done, &retries)
	stopChaos()
	chaosWG.Wait()
	rep.APIRetries = retries.Load()
	if loadErr != nil {
		return nil, fmt.Errorf("error pushing payments: %w", loadErr)
	}
	// Every relay up for the drain, and a healthy gateway: what is left is
	// what the outbox still owes.
	if err := sys.restartDownRelays(logf); err != nil {
		return nil, err
	}
	if err := sys.partialCancels(ctx, plans, &retries, logf); err != nil {
		return nil, fmt.Errorf("error sending partial cancels: %w", err)
	}
	rep.APIRetries = retries.Load()

	logf("draining the outbox")
	if err := sys.drain(ctx, cfg.DrainTimeout, logf); err != nil {
		rep.Violations = append(rep.Violations, err.Error())
	}
	if err := sys.check(ctx, plans, rep); err != nil {
		return nil, err
	}
	rep.Duration = time.Since(start)
	return rep, nil
}

func startSystem(ctx context.Context, cfg Config, logf func(string, ...any)) (*system, error) {
	root, err := systest.RepoRoot()
	if err != nil {
		return nil, err
	}
	workDir, err := os.MkdirTemp("", "payment-outbox-chaos-")
	if err != nil {
		return nil, fmt.Errorf("error making work dir: %w", err)
	}
	// The local cluster runs as the postgres user when we are root.
	_ = os.Chmod(workDir, 0o755)
	sys := &system{cfg: cfg, workDir: workDir}

	logf("building binaries")
	if sys.bin, err = systest.Build(ctx, root, filepath.Join(workDir, "bin")); err != nil {
		return sys, err
	}

	sys.dbURL = cfg.DatabaseURL
	if sys.dbURL == "" {
		if !systest.LocalPostgresAvailable(root) {
			return sys, fmt.Errorf("no DatabaseURL and no PostgreSQL server binaries for a local cluster")
		}
		addr, err := systest.FreeAddr()
		if err != nil {
			return sys, err
		}
		_, portStr, _ := net.SplitHostPort(addr)
		port, _ := strconv.Atoi(portStr)
		if sys.pg, err = systest.StartLocalPostgres(ctx, root, filepath.Join(workDir, "pg"), port); err != nil {
			return sys, err
		}
		sys.dbURL = sys.pg.URL
		logf("postgres: local cluster on port %d", port)
	}
	if err := systest.Migrate(ctx, sys.bin, sys.dbURL); err != nil {
		return sys, err
	}
	if sys.apiKey, err = systest.CreateAPIKey(ctx, sys.bin, sys.dbURL, "chaos"); err != nil {
		return sys, err
	}
	if sys.pool, err = pgxpool.New(ctx, sys.dbURL); err != nil {
		return sys, fmt.Errorf("error opening pool: %w", err)
	}

	simAddr, err := systest.FreeAddr()
	if err != nil {
		return sys, err
	}
	sim := systest.NewProcess("gatewaysim", sys.bin.GatewaySim, []string{
		"SIM_ADDR=" + simAddr, "SIM_SECRET_KEY=" + secretKey, "SIM_LOG_LEVEL=warn",
	})
	if err := sim.Start(); err != nil {
		return sys, err
	}
	sys.others = append(sys.others, sim)
	sys.simURL = "http://" + simAddr
	if err := systest.WaitHTTP(ctx, sys.simURL+"/healthz", 30*time.Second); err != nil {
		return sys, err
	}
	sys.sim = gatewaysim.NewClient(sys.simURL, nil)

	for i := range cfg.Relays {
		addr, err := systest.FreeAddr()
		if err != nil {
			return sys, err
		}
		relay := systest.NewProcess("relay"+strconv.Itoa(i), sys.bin.Relay, []string{
			"DATABASE_URL=" + sys.dbURL, "DATABASE_MAX_CONNS=12",
			"TOSS_API_BASE_URL=" + sys.simURL, "TOSS_SECRET_KEY=" + secretKey, "RELAY_ADDR=" + addr,
			"RELAY_WORKERS=40", "RELAY_BACKOFF_INITIAL=50ms", "RELAY_BACKOFF_MAX=1s",
			"RELAY_GATEWAY_TIMEOUT=2s", "RELAY_RESCUE_AFTER=25s", "RELAY_FETCH_POLL_INTERVAL=200ms",
			"RELAY_RECONCILE_INTERVAL=1s", "RELAY_RECONCILE_AFTER=3s", "RELAY_BREAKER_COOLDOWN=300ms",
			"RELAY_SHUTDOWN_TIMEOUT=5s", "LOG_LEVEL=warn",
		})
		if err := relay.Start(); err != nil {
			return sys, err
		}
		sys.relays = append(sys.relays, relay)
		if err := systest.WaitHTTP(ctx, "http://"+addr+"/healthz", 30*time.Second); err != nil {
			return sys, err
		}
	}

	apiAddr, err := systest.FreeAddr()
	if err != nil {
		return sys, err
	}
	api := systest.NewProcess("api", sys.bin.API, []string{
		"DATABASE_URL=" + sys.dbURL, "API_ADDR=" + apiAddr, "DATABASE_MAX_CONNS=20", "LOG_LEVEL=warn",
	})
	if err := api.Start(); err != nil {
		return sys, err
	}
	sys.others = append(sys.others, api)
	sys.apiURL = "http://" + apiAddr
	if err := systest.WaitHTTP(ctx, sys.apiURL+"/readyz", 30*time.Second); err != nil {
		return sys, err
	}
	return sys, nil
}

const secretKey = "test_sk_chaos_suite"

func (s *system) close(logf func(string, ...any)) {
	for _, p := range append(s.relays, s.others...) {
		_ = p.Stop(10 * time.Second)
	}
	if s.pool != nil {
		s.pool.Close()
	}
	if s.pg != nil {
		_ = s.pg.Stop(context.Background())
	}
	_ = os.RemoveAll(s.workDir)
}

// configureFaults turns the gateway's faults on; downtime, when given, is a
// window during which the gateway answers every call with 503.
func (s *system) configureFaults(ctx context.Context, cfg Config, downtime ...gatewaysim.Window) error {
	r := cfg.ErrorRate
	return s.sim.SetConfig(ctx, gatewaysim.Config{
		Seed:          cfg.Seed,
		Latency:       gatewaysim.Duration(cfg.Latency),
		LatencyJitter: gatewaysim.Duration(cfg.Jitter),
		ErrorRates: map[string]float64{
			"PROVIDER_ERROR":                    r * 0.35,
			"FAILED_INTERNAL_SYSTEM_PROCESSING": r * 0.3,
			"COMMON_ERROR":                      r * 0.15,
			"UNKNOWN_PAYMENT_ERROR":             r * 0.2,
		},
		LostResponseRate: cfg.LostRate,
		Downtime:         downtime,
		// Toss may replay a cached error under its key: assume it does.
		ReplayCachedErrors: true,
	})
}
