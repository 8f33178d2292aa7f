// Package chaos is the chaos suite: thousands of payments through the real
// api, several relay processes and gatewaysim with injected faults, while
// relays are SIGKILLed or frozen at random moments, Postgres is restarted
// and failed over under them, and COMMIT acknowledgements are lost on the
// way back from Postgres (internal/faultproxy). When the outbox is drained
// it checks every money invariant in docs/design.md against the gateway's
// ledger.
package chaos

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
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
	Payments int // default 2000
	// PortOneShare is the share of payments taken through PortOne V2
	// rather than Toss (0 to 1); the rest go through Toss. Every invariant
	// is checked for each.
	PortOneShare float64
	Concurrency  int // checkout clients posting at once, default 32
	Relays       int // relay processes, default 2
	Kills        int // relay SIGKILLs spread over the load phase, default 6
	// Pauses is how many times a relay is frozen (SIGSTOP) for longer than
	// its RELAY_RESCUE_AFTER, so River hands the jobs it was running to a
	// live relay while the first runs are still alive, and then thawed
	// (SIGCONT). It needs two relays: one always stays live.
	Pauses int
	// PostgresRestarts is how many times the primary is stopped (fast
	// shutdown) and started again mid-run.
	PostgresRestarts int
	// Failover runs a synchronous streaming standby and, mid-run, fences
	// and stops the primary and promotes the standby; the api and relays
	// reach it through a multi-host DATABASE_URL. Restarts and failover
	// need a cluster of our own (scripts/localpg), not DatabaseURL.
	Failover bool
	// CommitLossRate is the chance that a COMMIT the api or a relay sends
	// commits and its acknowledgement is lost: the fault proxy in front of
	// Postgres cuts the connection before it arrives. 0 is none.
	CommitLossRate float64
	// HoldRate is the chance gatewaysim holds a confirm or cancel for
	// HoldFor before answering, longer than the relay waits for it. 0 is
	// none.
	HoldRate float64
	HoldFor  time.Duration // default 3s; must exceed relayGatewayTimeout
	Seed     uint64
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

	// The money that moves without our asking (docs/design.md section 10).
	// Each rate's zero takes its default; a negative rate turns it off.
	//
	// NeverConfirmRate is the share of PortOne payments whose customer pays
	// in the browser and never confirms with us (default 0.05);
	// CancelUnconfirmedRate the share of those the checkout cancels later,
	// still without a confirm (default 0.3). LatePayRate is the share of
	// PortOne payments whose customer walks away (READY), is marked expired
	// after RELAY_OPEN_DEADLINE, and then pays after all (default 0.03).
	// ConsoleRefundRate is the share of the payments that get charged whose
	// shop staff refund part or all of them in the gateway's console, at a
	// random moment, our own cancels in flight or not (default 0.02).
	NeverConfirmRate      float64
	CancelUnconfirmedRate float64
	LatePayRate           float64
	ConsoleRefundRate     float64
	// WebhookDropRate, WebhookDuplicateRate, WebhookDelay and WebhookJitter
	// are what befalls the gateways' webhooks, PortOne's (sent by
	// gatewaysim) and Toss's (sent by this harness, playing Toss): never
	// sent (default 0.05), sent twice (default 0.05), held back WebhookDelay
	// plus up to WebhookJitter (defaults 100ms and 1.5s), so they also come
	// out of order.
	WebhookDropRate      float64
	WebhookDuplicateRate float64
	// VAShare is the share of payments, of both gateways, the customer
	// pays by virtual account (docs/design.md section 19): early, late
	// (just before the due date), another amount (refunded to the account
	// the harness supplies as the operator) or never (default 0.1).
	// ForgedDepositRate is the share of the Toss ones whose DEPOSIT_CALLBACK
	// an attacker also posts with a wrong secret, which must change nothing
	// (default 0.3). The webhook faults above befall Toss's DEPOSIT_CALLBACK
	// too, sent by gatewaysim.
	VAShare           float64
	ForgedDepositRate float64
	WebhookDelay      time.Duration
	WebhookJitter     time.Duration
	// SettleTimeout bounds the wait after the drain for the payments the
	// gateway charged without our asking to settle here (a webhook, or the
	// relay's sweep, finds them), default 2m.
	SettleTimeout time.Duration
	// DatabaseURL, when set, is used instead of a local cluster (and
	// Postgres is then neither restarted nor failed over). It must be a
	// postgres:// URL: a fault proxy goes in front of each of its hosts.
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
	if c.HoldFor <= 0 {
		c.HoldFor = 3 * time.Second
	}
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = 5 * time.Minute
	}
	rate := func(r *float64, def float64) {
		switch {
		case *r == 0:
			*r = def
		case *r < 0:
			*r = 0
		}
	}
	rate(&c.NeverConfirmRate, 0.05)
	rate(&c.CancelUnconfirmedRate, 0.3)
	rate(&c.LatePayRate, 0.03)
	rate(&c.ConsoleRefundRate, 0.02)
	rate(&c.WebhookDropRate, 0.05)
	rate(&c.WebhookDuplicateRate, 0.05)
	rate(&c.VAShare, 0.1)
	rate(&c.ForgedDepositRate, 0.3)
	if c.WebhookDelay == 0 {
		c.WebhookDelay = 100 * time.Millisecond
	}
	if c.WebhookJitter == 0 {
		c.WebhookJitter = 1500 * time.Millisecond
	}
	if c.WebhookDelay < 0 {
		c.WebhookDelay = 0
	}
	if c.WebhookJitter < 0 {
		c.WebhookJitter = 0
	}
	if c.SettleTimeout <= 0 {
		c.SettleTimeout = 2 * time.Minute
	}
	if c.Seed == 0 {
		c.Seed = uint64(time.Now().UnixNano())
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
}

// validate reports a Config the suite cannot run as asked.
func (c *Config) validate() error {
	if c.HoldRate > 0 && c.HoldFor <= relayGatewayTimeout {
		return fmt.Errorf("HoldFor %s must exceed the relay's gateway timeout %s: a hold is a call the relay gives up on", c.HoldFor, relayGatewayTimeout)
	}
	if c.NeverConfirmRate+c.LatePayRate > 1 {
		return fmt.Errorf("NeverConfirmRate %v and LatePayRate %v add up to more than all PortOne payments", c.NeverConfirmRate, c.LatePayRate)
	}
	for _, r := range []float64{c.ErrorRate, c.LostRate, c.CommitLossRate, c.HoldRate, c.NeverConfirmRate, c.CancelUnconfirmedRate,
		c.LatePayRate, c.ConsoleRefundRate, c.WebhookDropRate, c.WebhookDuplicateRate, c.VAShare, c.ForgedDepositRate} {
		if r < 0 || r > 1 {
			return fmt.Errorf("rate %v is not a probability", r)
		}
	}
	if c.Kills < 0 || c.Pauses < 0 || c.PostgresRestarts < 0 {
		return fmt.Errorf("kills, pauses and Postgres restarts must not be negative")
	}
	return nil
}

// Report is what a run did and found.
type Report struct {
	Seed     uint64         `json:"seed"`
	Payments int            `json:"payments"`
	Outcomes map[string]int `json:"outcomes"`
	// Webhooks counts the checkout's webhook deliveries: rows written with
	// the changes, events received (verified), deliveries the receiver
	// refused on purpose, and deliveries that did not verify.
	Webhooks struct {
		Written, Received, Refused, BadSignatures int
	} `json:"webhooks"`
	// ByGateway counts the payments checked per gateway ("toss",
	// "portone") by the status they ended in.
	ByGateway      map[string]map[string]int `json:"byGateway"`
	GatewayCalls   int                       `json:"gatewayCalls"`
	FaultsInjected int                       `json:"faultsInjected"`
	LostResponses  int                       `json:"lostResponses"`
	Replayed       int                       `json:"replayed"`
	// GatewayOutcomes counts the gateway's request log by outcome
	// (processed, replayed, injected, lost, rejected, and any a newer
	// gatewaysim adds, such as its held requests).
	GatewayOutcomes map[string]int `json:"gatewayOutcomes"`
	// GatewayTimeouts counts the relay's gateway calls that it gave up
	// waiting for (its attempt rows), which held requests cause.
	GatewayTimeouts    int   `json:"gatewayTimeouts"`
	Kills              int   `json:"kills"`
	Pauses             int   `json:"pauses"`
	PausedJobs         int   `json:"pausedJobs"`         // jobs stuck in running during pauses
	RescuedWhilePaused int   `json:"rescuedWhilePaused"` // of those, handed to another relay during the pause
	PostgresRestarts   int   `json:"postgresRestarts"`
	Failovers          int   `json:"failovers"`
	CommitsSeen        int64 `json:"commitsSeen"`    // COMMITs through the fault proxies
	CommitAcksLost     int64 `json:"commitAcksLost"` // of those, committed with the acknowledgement lost
	APIRetries         int64 `json:"apiRetries"`
	APIReplayed        int64 `json:"apiReplayed"` // api answers replayed under our Idempotency-Key
	Unknown            int   `json:"unknown"`
	// Unasked counts the money that moved without our asking and what
	// became of it here.
	Unasked UnaskedCounts `json:"unasked"`
	// GatewayWebhooks counts what the webhook faults did to the gateways'
	// webhooks, per gateway ("toss", "portone").
	GatewayWebhooks map[string]gatewaysim.WebhookStats `json:"gatewayWebhooks"`
	// Books is the reconciliation against the gateways' books that ran
	// after the drain.
	Books BooksCounts `json:"books"`
	// Checked is how much the checks after the drain looked at.
	Checked CheckCounts `json:"checked"`
	// Skipped lists faults the configuration asked for that this run
	// could not inject, and why.
	Skipped    []string      `json:"skipped"`
	Violations []string      `json:"violations"`
	Duration   time.Duration `json:"duration"`
}

// system is what one run started.
type system struct {
	cfg Config
	bin systest.Binaries
	// dbs are the Postgres servers, each behind a fault proxy; primary
	// indexes the one taking writes, standby its standby (-1: none).
	dbs              []*database
	primary, standby int
	// dbURL reaches the primary through the proxies (the api and relays
	// use it); directURL reaches it directly (setup and the checks).
	dbURL     string
	directURL string
	pool      *pgxpool.Pool
	sim       *gatewaysim.Client
	// simProc is gatewaysim's process, whose log tells why a webhook was
	// given up.
	simProc *systest.Process
	// out is the world that moves money without asking the outbox.
	out    *outside
	simURL string
	// apiReplays counts the api\'s answers replayed under our
	// Idempotency-Key (a retry after a lost answer).
	apiReplays atomic.Int64
	apiURL     string
	apiKey     string
	relays     []*systest.Process
	others     []*systest.Process
	workDir    string
}

// Run performs one chaos run and checks the invariants. The error is for
// a run that could not be carried out; violations are in the report.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg.defaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
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

	rep := &Report{Seed: cfg.Seed, Payments: cfg.Payments, Outcomes: map[string]int{}, ByGateway: map[string]map[string]int{}}
	rng := rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15))
	plans := planPayments(cfg, rng)

	if err := sys.configureFaults(ctx, cfg); err != nil {
		return nil, err
	}
	// The checkout's webhook endpoint, registered before the first payment
	// so every status change is owed to it.
	recv, err := startReceiver(cfg.Seed)
	if err != nil {
		return nil, err
	}
	defer recv.close()
	if err := sys.registerReceiver(ctx, recv); err != nil {
		return nil, err
	}
	// From here on every COMMIT of the api and the relays may lose its
	// acknowledgement, to the end of the drain.
	sys.setCommitLoss(cfg.CommitLossRate)
	loadCtx, stopChaos := context.WithCancel(ctx)
	var chaosWG sync.WaitGroup
	var done atomic.Int64 // payments pushed so far: the chaos keys off it
	var g gate
	sys.out = newOutside(sys, cfg, rng.Uint64(), logf)
	w := newWrecker(sys, cfg, rng.Uint64(), &done, &g, rep, logf)
	chaosWG.Add(1)
	go func() {
		defer chaosWG.Done()
		w.run(loadCtx, ctx)
	}()

	logf("pushing %d payments with %d clients (seed %d)", len(plans), cfg.Concurrency, cfg.Seed)
	var retries atomic.Int64
	loadErr := sys.push(ctx, cfg, plans, &done, &g, &retries)
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
	// Late payers, console refunds and Toss's webhooks about them finish
	// before the drain, so what the drain waits for is all there is.
	logf("waiting for late payments, console refunds and their webhooks")
	sys.out.wait()
	rep.APIRetries = retries.Load()

	logf("draining the outbox")
	drainErr := sys.drain(ctx, cfg.DrainTimeout, logf)
	if drainErr != nil {
		rep.Violations = append(rep.Violations, drainErr.Error())
	}
	// An outbox that did not drain has had its time: settle only waits for
	// the unasked-for money then, and does not drain again.
	if err := sys.settle(ctx, cfg.SettleTimeout, drainErr == nil, logf); err != nil {
		rep.Violations = append(rep.Violations, err.Error())
	}
	settled := time.Now()
	if err := sys.drainWebhooks(ctx, cfg.DrainTimeout, logf); err != nil {
		rep.Violations = append(rep.Violations, err.Error())
	}
	if err := sys.check(ctx, plans, rep); err != nil {
		return nil, err
	}
	st0, err := sys.readState(ctx)
	if err != nil {
		return nil, err
	}
	if err := sys.checkWebhooks(ctx, recv, st0, rep); err != nil {
		return nil, err
	}
	if err := sys.checkBooks(ctx, settled, rep, logf); err != nil {
		return nil, err
	}
	rep.APIReplayed = sys.apiReplays.Load()
	if err := sys.countOutside(ctx, rep, logf); err != nil {
		return nil, err
	}
	st := sys.proxyStats()
	rep.CommitsSeen, rep.CommitAcksLost = st.CommitsSeen, st.AcksLost
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
	sys := &system{cfg: cfg, workDir: workDir, standby: -1}

	logf("building binaries")
	if sys.bin, err = systest.Build(ctx, root, filepath.Join(workDir, "bin")); err != nil {
		return sys, err
	}

	if err := sys.startDatabases(ctx, root, logf); err != nil {
		return sys, err
	}
	if err := systest.Migrate(ctx, sys.bin, sys.directURL); err != nil {
		return sys, err
	}
	if sys.apiKey, err = systest.CreateAPIKey(ctx, sys.bin, sys.directURL, "chaos", "--scope", "operator"); err != nil {
		return sys, err
	}
	if sys.pool, err = pgxpool.New(ctx, sys.directURL); err != nil {
		return sys, fmt.Errorf("error opening pool: %w", err)
	}

	simAddr, err := systest.FreeAddr()
	if err != nil {
		return sys, err
	}
	sim := systest.NewProcess("gatewaysim", sys.bin.GatewaySim, []string{
		"SIM_ADDR=" + simAddr, "SIM_SECRET_KEY=" + secretKey, "SIM_LOG_LEVEL=warn",
		"SIM_PORTONE_SECRET=" + gatewaysim.DefaultPortOneSecret, "SIM_PORTONE_STORE_ID=" + gatewaysim.DefaultPortOneStoreID,
	})
	if err := sim.Start(); err != nil {
		return sys, err
	}
	sys.others = append(sys.others, sim)
	sys.simProc = sim
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
			"PORTONE_API_BASE_URL=" + sys.simURL, "PORTONE_API_SECRET=" + gatewaysim.DefaultPortOneSecret,
			"PORTONE_STORE_ID=" + gatewaysim.DefaultPortOneStoreID,
			// A PortOne customer who walked away (READY) is given up as
			// expired this long after the confirm; Toss's 10 minutes would
			// outlast the run.
			"RELAY_OPEN_DEADLINE=" + portOneOpenDeadline.String(),
			"RELAY_WEBHOOK_ALLOW_PRIVATE=true",
			"RELAY_WORKERS=40", "RELAY_BACKOFF_INITIAL=50ms", "RELAY_BACKOFF_MAX=1s",
			"RELAY_GATEWAY_TIMEOUT=" + relayGatewayTimeout.String(), "RELAY_RESCUE_AFTER=" + rescueAfter.String(),
			"RELAY_KEY_QUIET=" + relayKeyQuiet.String(),
			"RELAY_FETCH_POLL_INTERVAL=200ms",
			"RELAY_RECONCILE_INTERVAL=1s", "RELAY_RECONCILE_AFTER=3s", "RELAY_BREAKER_COOLDOWN=300ms",
			// A ready PortOne intent whose customer paid and never came
			// back is swept up this soon, and a record resting on not
			// having seen money (expired, canceled unpaid) is looked up
			// again over this window (first after a tenth of it): the
			// defaults, 10 minutes and a day, would outlast the run. The
			// gateways' books are compared with ours this often, so a run
			// after the drain has the last word (checkBooks).
			"RELAY_READY_SWEEP_AFTER=" + readySweepAfter.String(),
			"RELAY_RECHECK_WINDOW=" + recheckWindow.String(),
			"RELAY_BOOKS_INTERVAL=" + booksInterval.String(), "RELAY_BOOKS_LAG=" + booksLag.String(),
			// A virtual account is due in seconds here (vaDue), so the
			// deposit sweep looks in seconds too, and the grace after the
			// due date stays above Toss's one-second rounding.
			"RELAY_DEPOSIT_SWEEP_FAR=" + vaSweepFar.String(), "RELAY_DEPOSIT_SWEEP_NEAR=" + vaSweepNear.String(),
			"RELAY_DEPOSIT_SWEEP_CLOSE=" + vaSweepClose.String(), "RELAY_DEPOSIT_GRACE=" + vaGrace.String(),
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
		"API_GATEWAYS=toss,portone", "API_DEFAULT_GATEWAY=toss", "PORTONE_WEBHOOK_SECRET=" + chaosPortOneWebhookSecret,
		// The checkout's webhook receiver is on loopback.
		"API_WEBHOOK_ALLOW_PRIVATE=true",
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

// relayGatewayTimeout is the relays' RELAY_GATEWAY_TIMEOUT: a held gateway
// request must outlast it.
const relayGatewayTimeout = 2 * time.Second

// relayKeyQuiet is the relays' RELAY_KEY_QUIET: past the gateway timeout
// and past the longest hold, so no request under a key the relay lets go of
// can still be running (shorter than the default to keep runs short).
const relayKeyQuiet = 6 * time.Second

// readySweepAfter is the relays' RELAY_READY_SWEEP_AFTER: well past the
// moment a checkout that confirms does so, well inside the settle wait.
const readySweepAfter = 20 * time.Second

// recheckWindow is the relays' RELAY_RECHECK_WINDOW: a late payment whose
// webhook was dropped is found within a tenth of it, inside the settle
// wait.
const recheckWindow = 3 * time.Minute

// booksInterval is the relays' RELAY_BOOKS_INTERVAL; booksLag their
// RELAY_BOOKS_LAG: the hour a real gateway's listing may lag would leave a
// run with nothing old enough to compare, and gatewaysim lists at once.
const (
	booksInterval = 10 * time.Second
	booksLag      = 2 * time.Second
)

// portOneOpenDeadline is the relays' RELAY_OPEN_DEADLINE.
const portOneOpenDeadline = 15 * time.Second

func (s *system) close(logf func(string, ...any)) {
	for _, p := range append(s.relays, s.others...) {
		_ = p.Stop(10 * time.Second)
	}
	if s.pool != nil {
		s.pool.Close()
	}
	s.closeDatabases()
	_ = os.RemoveAll(s.workDir)
}

// chaosPortOneWebhookSecret is the api's PORTONE_WEBHOOK_SECRET in a chaos
// run (Standard Webhooks form: whsec_ and base64); the api refuses to enable
// PortOne without one. gatewaysim signs PortOne's webhooks with it.
const chaosPortOneWebhookSecret = "whsec_Y2hhb3MtcG9ydG9uZS13ZWJob29rLXNlY3JldA=="
