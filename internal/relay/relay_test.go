package relay_test

import (
	"cmp"
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/payment-outbox/payment-outbox/internal/dbtest"
	"github.com/payment-outbox/payment-outbox/internal/gateway"
	"github.com/payment-outbox/payment-outbox/internal/gateway/portone"
	"github.com/payment-outbox/payment-outbox/internal/gateway/toss"
	"github.com/payment-outbox/payment-outbox/internal/gatewaysim"
	"github.com/payment-outbox/payment-outbox/internal/metrics"
	"github.com/payment-outbox/payment-outbox/internal/payment"
	"github.com/payment-outbox/payment-outbox/internal/paymentjob"
	"github.com/payment-outbox/payment-outbox/internal/relay"
	"github.com/payment-outbox/payment-outbox/internal/store"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// testLookupInterval is the one-lookup-per-interval rule's interval in
// these tests (WEBHOOK_LOOKUP_INTERVAL): the shortest River allows, so a
// request delayed to the next interval is answered within seconds.
const testLookupInterval = time.Second

// testBundle is one relay working one database against one simulator.
type testBundle struct {
	pool  *pgxpool.Pool
	store *store.Store
	sim   *gatewaysim.Simulator
	gw    *toss.Client
	// po is a PortOne client on the same simulator: the relay serves both.
	po     *portone.Client
	client *river.Client[pgx.Tx]
}

type setupOpts struct {
	secretKey string // what the relay authenticates with; the sim's own when empty
	paused    bool   // don't start the relay; the test calls start
	// wrap, if set, stands between the relay and the real client: a gateway
	// that misbehaves in ways the simulator will not.
	wrap      func(relay.Gateway) relay.Gateway
	reconcile bool // run the reconciler every 100ms for payments idle 1ms
	breaker   *relay.Breaker
	// gatewayTimeout is the client's per-call timeout; 5s when zero.
	gatewayTimeout time.Duration
	metrics        *metrics.Relay
	// logs, if set, receives the relay's and River's JSON log lines, River's
	// through relay.JobLogging as cmd/relay wires it.
	logs io.Writer
	// webhooks is how webhooks are sent; private addresses allowed and
	// retries 20ms apart when zero.
	webhooks relay.WebhookConfig
	// openDeadline is the relay's OpenDeadline; its default when zero.
	openDeadline time.Duration
	// tossOnly leaves PortOne out of the gateways the relay serves.
	tossOnly bool
	// booksLag is the relay's BooksLag; its default (an hour) when zero.
	booksLag time.Duration
	// schedule is the relay's retry schedule; 20ms to 100ms when zero.
	schedule relay.Schedule
	// simKeyRetention scales the simulator's Idempotency-Key retention
	// down (both APIs); clientKeyRetention tells the relay's clients the
	// same. Zero keeps the gateways' own.
	simKeyRetention, clientKeyRetention time.Duration
	// wrapPortOne is wrap for the PortOne client.
	wrapPortOne func(relay.Gateway) relay.Gateway
	// recheck and readySweepAfter are the relay's; their defaults when zero.
	recheck         payment.Recheck
	readySweepAfter time.Duration
	// portOneManual runs the PortOne client in manual confirm.
	portOneManual bool
	// deposit is the relay's deposit sweep; its default when zero.
	// accountDue is the simulator's virtual-account due time; its
	// default (3 days) when zero.
	deposit    payment.DepositSchedule
	accountDue time.Duration
}

func setup(t *testing.T, opts setupOpts) *testBundle {
	t.Helper()

	pool := dbtest.Pool(t)
	sim, err := gatewaysim.New(gatewaysim.Options{Config: gatewaysim.Config{
		TossKeyRetention: gatewaysim.Duration(opts.simKeyRetention), PortOneKeyRetention: gatewaysim.Duration(opts.simKeyRetention),
		VirtualAccountDue: gatewaysim.Duration(opts.accountDue),
	}})
	require.NoError(t, err)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	t.Cleanup(sim.Close)

	key := opts.secretKey
	if key == "" {
		key = gatewaysim.DefaultSecretKey
	}
	timeout := opts.gatewayTimeout
	if timeout == 0 {
		timeout = 5 * time.Second
	}
	gw, err := toss.New(toss.Config{BaseURL: srv.URL, SecretKey: key, Timeout: timeout, KeyRetention: opts.clientKeyRetention})
	require.NoError(t, err)
	po, err := portone.New(portone.Config{
		BaseURL: srv.URL, Secret: gatewaysim.DefaultPortOneSecret, StoreID: gatewaysim.DefaultPortOneStoreID, Timeout: timeout,
		KeyRetention: opts.clientKeyRetention,
		ConfirmMode:  map[bool]payment.PortOneConfirmMode{true: payment.PortOneConfirmManual}[opts.portOneManual],
	})
	require.NoError(t, err)

	st := store.New()
	workers := river.NewWorkers()
	var g relay.Gateway = gw
	if opts.wrap != nil {
		g = opts.wrap(gw)
	}
	logger, riverLogger := slog.New(slog.DiscardHandler), slog.New(slog.DiscardHandler)
	jobLogging := relay.NewJobLogging()
	if opts.logs != nil {
		logger = slog.New(slog.NewJSONHandler(opts.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		riverLogger = slog.New(jobLogging.Handler(logger.Handler()))
	}
	var pg relay.Gateway = po
	if opts.wrapPortOne != nil {
		pg = opts.wrapPortOne(po)
	}
	gateways := map[string]relay.Gateway{payment.GatewayToss: g, payment.GatewayPortOne: pg}
	if opts.tossOnly {
		delete(gateways, payment.GatewayPortOne)
	}
	cfg := relay.Config{
		Pool: pool, Store: st, Gateways: gateways, Logger: logger, OpenDeadline: opts.openDeadline,
		// Short enough that a test sees several retries in a second.
		Schedule: cmp.Or(opts.schedule, relay.Schedule{Initial: 20 * time.Millisecond, Max: 100 * time.Millisecond}),
		Breakers: map[string]*relay.Breaker{payment.GatewayToss: opts.breaker},
		Metrics:  opts.metrics,
		// The key rule's quiet period, short for tests: the client's
		// timeout above is what a real one must exceed.
		KeyQuiet: 300 * time.Millisecond,
		Webhooks: opts.webhooks,
		Recheck:  opts.recheck, ReadySweepAfter: opts.readySweepAfter,
		WebhookLookupInterval: testLookupInterval,
		BooksLag:              opts.booksLag, Deposit: opts.deposit,
	}
	if cfg.Webhooks == (relay.WebhookConfig{}) {
		// The receivers are httptest servers on loopback.
		cfg.Webhooks = relay.WebhookConfig{AllowPrivate: true, Schedule: relay.Schedule{Initial: 20 * time.Millisecond, Max: 50 * time.Millisecond}}
	}
	var periodic []*river.PeriodicJob
	if opts.reconcile {
		cfg.ReconcileAfter = time.Millisecond
		periodic = relay.PeriodicJobs(100 * time.Millisecond)
	}
	require.NoError(t, relay.AddWorkers(workers, cfg))
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
		Queues: map[string]river.QueueConfig{
			paymentjob.Queue:        {MaxWorkers: 10},
			paymentjob.WebhookQueue: {MaxWorkers: 5},
		},
		Workers:           workers,
		PeriodicJobs:      periodic,
		FetchPollInterval: 20 * time.Millisecond,
		FetchCooldown:     10 * time.Millisecond,
		Logger:            riverLogger,
		Middleware:        []rivertype.Middleware{jobLogging},
		TestOnly:          true,
	})
	require.NoError(t, err)
	b := &testBundle{pool: pool, store: st, sim: sim, gw: gw, po: po, client: client}
	if !opts.paused {
		b.start(t)
	}
	return b
}

func (b *testBundle) start(t *testing.T) {
	t.Helper()
	require.NoError(t, b.client.Start(context.Background()))
	t.Cleanup(func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, b.client.Stop(stopCtx))
	})
}

// authorize is the customer passing the checkout widget: the gateway now has
// a session for the order.
func (b *testBundle) authorize(t *testing.T, orderID string, amount int64, at *time.Time) string {
	t.Helper()
	auth, err := b.sim.Authorize(gatewaysim.AuthorizeRequest{OrderID: orderID, Amount: amount, OrderName: "Test order", AuthenticatedAt: at})
	require.NoError(t, err)
	return auth.PaymentKey
}

// newPayment creates an intent and returns it with the paymentKey the
// gateway issued for it, not yet confirmed.
func (b *testBundle) newPayment(t *testing.T, amount int64, authenticatedAt *time.Time) (payment.Payment, string) {
	t.Helper()
	orderID := "order-" + uuid.NewString()[:8]
	in := payment.Intent{OrderID: orderID, OrderName: "Test order", Amount: amount, Gateway: payment.GatewayToss}
	require.NoError(t, in.Validate())
	p, created, err := b.store.InsertPayment(context.Background(), b.pool, uuid.NewString(), in)
	require.NoError(t, err)
	require.True(t, created)
	return p, b.authorize(t, orderID, amount, authenticatedAt)
}

// requestConfirm does what the api does on POST /confirm: the state change
// and the job in one transaction.
func (b *testBundle) requestConfirm(t *testing.T, id, paymentKey string, amount int64, opts *river.InsertOpts) {
	t.Helper()
	ctx := context.Background()
	require.NoError(t, pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error {
		p, err := b.store.PaymentForUpdate(ctx, tx, id)
		if err != nil {
			return err
		}
		if _, err := p.RequestConfirm(paymentKey, amount, time.Now()); err != nil {
			return err
		}
		if err := b.store.SavePayment(ctx, tx, &p); err != nil {
			return err
		}
		_, err = b.client.InsertTx(ctx, tx, paymentjob.ConfirmArgs{PaymentID: id}, opts)
		return err
	}))
}

// requestCancel does what the api does on POST /cancel.
func (b *testBundle) requestCancel(t *testing.T, id string, amount int64) payment.Cancel {
	t.Helper()
	ctx := context.Background()
	var c payment.Cancel
	require.NoError(t, pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error {
		p, err := b.store.PaymentForUpdate(ctx, tx, id)
		if err != nil {
			return err
		}
		open, err := b.store.OpenCancels(ctx, tx, id)
		if err != nil {
			return err
		}
		plan, err := p.RequestCancel(uuid.NewString(), "customer asked", amount, open, time.Now())
		if err != nil {
			return err
		}
		if err := b.store.SavePayment(ctx, tx, &p); err != nil {
			return err
		}
		if c, err = b.store.InsertCancel(ctx, tx, plan.Cancel); err != nil {
			return err
		}
		if plan.Enqueue {
			_, err = b.client.InsertTx(ctx, tx, paymentjob.CancelArgs{PaymentID: id, CancelID: c.ID}, nil)
		}
		if err == nil && plan.LookUp {
			_, err = b.client.InsertTx(ctx, tx, paymentjob.LookupArgs{PaymentID: id}, nil)
		}
		return err
	}))
	return c
}

// replayCachedErrors makes the gateway store even its injected errors under
// the Idempotency-Key, so a retry under the same key gets the same answer.
func (b *testBundle) replayCachedErrors(t *testing.T) {
	t.Helper()
	cfg := b.sim.Config()
	cfg.ReplayCachedErrors = true
	require.NoError(t, b.sim.SetConfig(cfg))
}

func (b *testBundle) script(t *testing.T, paymentKey string, op gatewaysim.Operation, steps ...gatewaysim.Step) {
	t.Helper()
	_, err := b.sim.Script(gatewaysim.Script{PaymentKey: paymentKey, Operation: op, Steps: steps})
	require.NoError(t, err)
}

// waitStatus waits until the payment reaches want, failing fast if it
// settles anywhere else.
func (b *testBundle) waitStatus(t *testing.T, id string, want payment.Status) payment.Payment {
	t.Helper()
	var p payment.Payment
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		var err error
		p, err = b.store.PaymentWithHistory(context.Background(), b.pool, payment.Everyone(), id)
		require.NoError(t, err)
		if p.Status == want {
			return p
		}
	}
	require.Failf(t, "payment did not settle", "payment never reached %s; it is %s with attempts %v", want, p.Status, ops(p.Attempts))
	return p
}

// waitDrained waits until no payment job is left to work.
func (b *testBundle) waitDrained(t *testing.T) {
	t.Helper()
	require.Eventually(t, func() bool {
		var n int
		require.NoError(t, b.pool.QueryRow(context.Background(),
			"SELECT count(*) FROM river_job WHERE state NOT IN ('completed', 'cancelled', 'discarded')").Scan(&n))
		return n == 0
	}, 15*time.Second, 10*time.Millisecond)
}

func (b *testBundle) ledger(t *testing.T, paymentKey string) gatewaysim.LedgerEntry {
	t.Helper()
	e, ok := b.sim.LedgerEntry(paymentKey)
	require.True(t, ok)
	return e
}

func ops(attempts []payment.Attempt) []string {
	var out []string
	for _, a := range attempts {
		out = append(out, string(a.Operation)+":"+a.Classification)
	}
	return out
}

func step(kind gatewaysim.StepKind, code string) gatewaysim.Step {
	return gatewaysim.Step{Kind: kind, Code: code}
}

func TestConfirm(t *testing.T) {
	t.Parallel()

	t.Run("Approved", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{})
		p, key := b.newPayment(t, 15000, nil)
		b.requestConfirm(t, p.ID, key, 15000, nil)

		got := b.waitStatus(t, p.ID, payment.StatusConfirmed)
		require.Equal(t, int64(15000), got.ApprovedAmount)
		require.Equal(t, int64(15000), got.BalanceAmount)
		require.NotNil(t, got.ApprovedAt)
		require.Equal(t, []string{"confirm:success"}, ops(got.Attempts))
		a := got.Attempts[0]
		require.Equal(t, got.ConfirmIdempotencyKey, a.IdempotencyKey)
		require.Equal(t, 200, a.HTTPStatus)
		require.NotNil(t, a.FinishedAt)

		e := b.ledger(t, key)
		require.Equal(t, 1, e.Approvals)
		require.Equal(t, "DONE", e.Status)
		b.waitDrained(t)
	})

	t.Run("TransientThenApprovedUnderOneKey", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{})
		p, key := b.newPayment(t, 20000, nil)
		b.script(t, key, gatewaysim.OperationConfirm,
			step(gatewaysim.StepError, "PROVIDER_ERROR"),
			step(gatewaysim.StepError, "FAILED_INTERNAL_SYSTEM_PROCESSING"),
			step(gatewaysim.StepError, "IDEMPOTENT_REQUEST_PROCESSING"))
		b.requestConfirm(t, p.ID, key, 20000, nil)

		got := b.waitStatus(t, p.ID, payment.StatusConfirmed)
		require.Equal(t, []string{"confirm:transient", "confirm:transient", "confirm:transient", "confirm:success"}, ops(got.Attempts))
		for _, a := range got.Attempts {
			require.Equal(t, got.ConfirmIdempotencyKey, a.IdempotencyKey, "every retry replays the one key")
		}
		require.Equal(t, 1, b.ledger(t, key).Approvals)
		for _, r := range b.sim.Requests(key) {
			require.Equal(t, got.ConfirmIdempotencyKey, r.IdempotencyKey)
		}
	})

	t.Run("Declined", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{})
		p, key := b.newPayment(t, 30000, nil)
		b.script(t, key, gatewaysim.OperationConfirm, step(gatewaysim.StepError, "REJECT_CARD_COMPANY"))
		b.requestConfirm(t, p.ID, key, 30000, nil)

		got := b.waitStatus(t, p.ID, payment.StatusFailed)
		require.Equal(t, "REJECT_CARD_COMPANY", got.FailureCode)
		require.Equal(t, []string{"confirm:refused"}, ops(got.Attempts))
		require.Equal(t, 0, b.ledger(t, key).Approvals)
		b.waitDrained(t)
	})

	t.Run("AlreadyProcessedIsLookedUp", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{})
		p, key := b.newPayment(t, 12000, nil)
		// Someone confirmed this payment at the gateway under another key
		// (an earlier deploy with another key scheme, say): our confirm
		// gets ALREADY_PROCESSED_PAYMENT and must take the gateway's word.
		res := b.gw.Confirm(context.Background(), gateway.ConfirmRequest{PaymentKey: key, OrderID: p.OrderID, Amount: 12000}, "other-key")
		require.Equal(t, gateway.ClassSuccess, toss.Classify(res))
		b.requestConfirm(t, p.ID, key, 12000, nil)

		got := b.waitStatus(t, p.ID, payment.StatusConfirmed)
		require.Equal(t, []string{"confirm:unclear", "lookup:success"}, ops(got.Attempts))
		require.Equal(t, "ALREADY_PROCESSED_PAYMENT", got.Attempts[0].GatewayCode)
		require.Equal(t, 1, b.ledger(t, key).Approvals)
	})

	t.Run("UnclearAndNotPerformedEarnsANewKey", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{})
		// The gateway stores even its odd answers under the key, so the
		// same key would get CARD_PROCESSING_ERROR forever.
		b.replayCachedErrors(t)
		p, key := b.newPayment(t, 11000, nil)
		b.script(t, key, gatewaysim.OperationConfirm, step(gatewaysim.StepError, "CARD_PROCESSING_ERROR"))
		b.requestConfirm(t, p.ID, key, 11000, nil)

		// The first odd answer is looked up and asked again under the same
		// key; the same answer again makes the key stuck, and only after the
		// quiet period does a lookup showing no confirm earn a new key.
		got := b.waitStatus(t, p.ID, payment.StatusConfirmed)
		require.Equal(t, []string{"confirm:unclear", "lookup:unclear", "confirm:unclear", "lookup:unclear", "lookup:unclear", "confirm:success"}, ops(got.Attempts))
		require.Equal(t, "confirm-"+p.ID+"-1", got.Attempts[0].IdempotencyKey)
		require.Equal(t, "confirm-"+p.ID+"-1", got.Attempts[2].IdempotencyKey)
		require.Contains(t, got.Attempts[4].Note, "replaced by confirm-"+p.ID+"-2")
		require.GreaterOrEqual(t, got.Attempts[4].RequestedAt.Sub(got.Attempts[2].RequestedAt), 300*time.Millisecond,
			"the lookup that justified the new key came after the quiet period")
		require.Equal(t, "confirm-"+p.ID+"-2", got.Attempts[5].IdempotencyKey)
		require.Equal(t, 2, got.ConfirmKeyGeneration)
		require.Equal(t, 1, b.ledger(t, key).Approvals)
	})

	t.Run("LostResponseReplayedUnderSameKey", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{})
		p, key := b.newPayment(t, 45000, nil)
		// The gateway charges, then the answer never arrives: the relay
		// cannot tell this from a network error before the charge.
		b.script(t, key, gatewaysim.OperationConfirm, step(gatewaysim.StepLost, ""))
		b.requestConfirm(t, p.ID, key, 45000, nil)

		got := b.waitStatus(t, p.ID, payment.StatusConfirmed)
		require.Equal(t, []string{"confirm:transient", "confirm:success"}, ops(got.Attempts))
		require.NotEmpty(t, got.Attempts[0].Error)
		require.Equal(t, 1, b.ledger(t, key).Approvals, "the retry replayed the approval instead of charging again")

		var outcomes []string
		for _, r := range b.sim.Requests(key) {
			require.Equal(t, got.ConfirmIdempotencyKey, r.IdempotencyKey)
			outcomes = append(outcomes, r.Outcome)
		}
		require.Equal(t, []string{"lost", "replayed"}, outcomes)
	})

	t.Run("SessionExpired", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{})
		authenticated := time.Now().Add(-11 * time.Minute)
		p, key := b.newPayment(t, 8000, &authenticated)
		b.requestConfirm(t, p.ID, key, 8000, nil)

		got := b.waitStatus(t, p.ID, payment.StatusExpired)
		require.Equal(t, "NOT_FOUND_PAYMENT_SESSION", got.FailureCode)
		require.Equal(t, 0, b.ledger(t, key).Approvals)
	})

	t.Run("RetryBudgetSpentIsUnknownNotFailed", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{})
		p, key := b.newPayment(t, 9000, nil)
		b.script(t, key, gatewaysim.OperationConfirm,
			step(gatewaysim.StepError, "FAILED_INTERNAL_SYSTEM_PROCESSING"),
			step(gatewaysim.StepError, "FAILED_INTERNAL_SYSTEM_PROCESSING"))
		b.requestConfirm(t, p.ID, key, 9000, &river.InsertOpts{MaxAttempts: 2})

		got := b.waitStatus(t, p.ID, payment.StatusUnknown)
		require.Equal(t, "FAILED_INTERNAL_SYSTEM_PROCESSING", got.FailureCode)
		// Two 5xx and the budget is spent: unknown, for the reconciler.
		require.Equal(t, []string{"confirm:transient", "confirm:transient"}, ops(got.Attempts))
		require.Zero(t, b.ledger(t, key).Approvals)
		b.waitDrained(t)
	})

	t.Run("CachedErrorReplayedUnderOneKeyEarnsANewKey", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{})
		b.replayCachedErrors(t)
		p, key := b.newPayment(t, 13000, nil)
		// One 500, which the gateway then replays for every retry under the
		// key: without a new key this payment would never confirm.
		b.script(t, key, gatewaysim.OperationConfirm, step(gatewaysim.StepError, "FAILED_INTERNAL_SYSTEM_PROCESSING"))
		b.requestConfirm(t, p.ID, key, 13000, nil)

		got := b.waitStatus(t, p.ID, payment.StatusConfirmed)
		require.Equal(t, []string{"confirm:transient", "confirm:transient", "lookup:unclear", "confirm:success"}, ops(got.Attempts))
		require.Contains(t, got.Attempts[2].Note, "replaced by confirm-"+p.ID+"-2")
		require.Equal(t, "confirm-"+p.ID+"-2", got.Attempts[3].IdempotencyKey)
		require.Equal(t, 1, b.ledger(t, key).Approvals)
	})

	t.Run("WrongSecretKeyNeverFailsThePayment", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{secretKey: "test_sk_not_the_right_one"})
		p, key := b.newPayment(t, 7000, nil)
		b.requestConfirm(t, p.ID, key, 7000, nil)

		require.Eventually(t, func() bool {
			got, err := b.store.PaymentWithHistory(context.Background(), b.pool, payment.Everyone(), p.ID)
			require.NoError(t, err)
			return len(got.Attempts) > 0 && got.Attempts[0].Classification == string(gateway.ClassMisconfigured)
		}, 10*time.Second, 10*time.Millisecond)
		got, err := b.store.Payment(context.Background(), b.pool, p.ID)
		require.NoError(t, err)
		require.Equal(t, payment.StatusConfirming, got.Status)

		// Snoozed until our configuration is fixed, without spending the
		// payment's attempts.
		require.Eventually(t, func() bool {
			var state string
			var attempt int
			require.NoError(t, b.pool.QueryRow(context.Background(),
				"SELECT state, attempt FROM river_job WHERE kind = 'payment_confirm'").Scan(&state, &attempt))
			// A snooze shorter than River's scheduler interval leaves the job
			// available with a future scheduled_at rather than scheduled.
			return (state == "scheduled" || state == "available") && attempt == 0
		}, 10*time.Second, 10*time.Millisecond)
	})

	t.Run("CancelWhileConfirmingRunsAfterApproval", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{})
		p, key := b.newPayment(t, 25000, nil)
		// Hold the confirm at the gateway so the cancel lands mid-flight.
		b.script(t, key, gatewaysim.OperationConfirm, gatewaysim.Step{Kind: gatewaysim.StepDelay, Delay: gatewaysim.Duration(300 * time.Millisecond)})
		b.requestConfirm(t, p.ID, key, 25000, nil)
		c := b.requestCancel(t, p.ID, 0)
		require.Equal(t, payment.CancelWaiting, c.Status)

		got := b.waitStatus(t, p.ID, payment.StatusCanceled)
		require.Equal(t, []string{"confirm:success", "cancel:success"}, ops(got.Attempts))
		require.Equal(t, payment.CancelDone, got.Cancels[0].Status)
		e := b.ledger(t, key)
		require.Equal(t, 1, e.Approvals)
		require.Equal(t, int64(0), e.BalanceAmount)
		require.Len(t, e.Refunds, 1)
		require.Equal(t, c.IdempotencyKey, e.Refunds[0].IdempotencyKey)
	})

	t.Run("CancelWhileConfirmingVoidIfDeclined", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{paused: true})
		p, key := b.newPayment(t, 25000, nil)
		b.script(t, key, gatewaysim.OperationConfirm, step(gatewaysim.StepError, "REJECT_CARD_PAYMENT"))
		b.requestConfirm(t, p.ID, key, 25000, nil)
		// The payment is confirming, so the cancel waits for the outcome.
		c := b.requestCancel(t, p.ID, 0)
		require.Equal(t, payment.CancelWaiting, c.Status)
		b.start(t)

		got := b.waitStatus(t, p.ID, payment.StatusFailed)
		require.Equal(t, payment.CancelVoid, got.Cancels[0].Status, "nothing was charged, so nothing to refund")
		require.Equal(t, []string{"confirm:refused"}, ops(got.Attempts))
		e := b.ledger(t, key)
		require.Equal(t, 0, e.Approvals)
		require.Empty(t, e.Refunds)
		b.waitDrained(t)
	})
}

// confirmed takes a fresh payment to confirmed through the relay.
func (b *testBundle) confirmed(t *testing.T, amount int64) (payment.Payment, string) {
	t.Helper()
	p, key := b.newPayment(t, amount, nil)
	b.requestConfirm(t, p.ID, key, amount, nil)
	return b.waitStatus(t, p.ID, payment.StatusConfirmed), key
}

func TestCancel(t *testing.T) {
	t.Parallel()

	t.Run("Full", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{})
		p, key := b.confirmed(t, 15000)
		c := b.requestCancel(t, p.ID, 0)

		got := b.waitStatus(t, p.ID, payment.StatusCanceled)
		require.Equal(t, int64(0), got.BalanceAmount)
		require.Equal(t, int64(15000), got.CanceledAmount)
		require.Equal(t, payment.CancelDone, got.Cancels[0].Status)
		require.Equal(t, int64(15000), got.Cancels[0].CanceledAmount)
		require.NotEmpty(t, got.Cancels[0].TransactionKey)

		e := b.ledger(t, key)
		require.Equal(t, "CANCELED", e.Status)
		require.Len(t, e.Refunds, 1)
		require.Equal(t, c.IdempotencyKey, e.Refunds[0].IdempotencyKey)
		b.waitDrained(t)
	})

	t.Run("PartialThenRest", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{})
		p, key := b.confirmed(t, 15000)
		b.requestCancel(t, p.ID, 5000)

		got := b.waitStatus(t, p.ID, payment.StatusPartiallyCanceled)
		require.Equal(t, int64(10000), got.BalanceAmount)
		require.Equal(t, int64(5000), got.CanceledAmount)
		require.Equal(t, int64(10000), b.ledger(t, key).BalanceAmount)

		b.requestCancel(t, p.ID, 0)
		got = b.waitStatus(t, p.ID, payment.StatusCanceled)
		require.Equal(t, int64(0), got.BalanceAmount)
		require.Equal(t, int64(10000), got.Cancels[1].CanceledAmount)
		e := b.ledger(t, key)
		require.Equal(t, int64(0), e.BalanceAmount)
		require.Len(t, e.Refunds, 2)
	})

	t.Run("LostResponseRefundsOnce", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{})
		p, key := b.confirmed(t, 15000)
		b.script(t, key, gatewaysim.OperationCancel, step(gatewaysim.StepLost, ""))
		b.requestCancel(t, p.ID, 0)

		got := b.waitStatus(t, p.ID, payment.StatusCanceled)
		require.Equal(t, []string{"confirm:success", "cancel:transient", "cancel:success"}, ops(got.Attempts))
		require.Len(t, b.ledger(t, key).Refunds, 1, "the retry replayed the refund instead of refunding again")
	})

	t.Run("Refused", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{})
		p, key := b.confirmed(t, 15000)
		b.script(t, key, gatewaysim.OperationCancel, step(gatewaysim.StepError, "NOT_CANCELABLE_PAYMENT"))
		b.requestCancel(t, p.ID, 0)

		require.Eventually(t, func() bool {
			cs, err := b.store.Cancels(context.Background(), b.pool, p.ID)
			require.NoError(t, err)
			return cs[0].Status == payment.CancelFailed
		}, 10*time.Second, 10*time.Millisecond)
		got := b.waitStatus(t, p.ID, payment.StatusConfirmed)
		require.Equal(t, "NOT_CANCELABLE_PAYMENT", got.Cancels[0].FailureCode)
		require.Empty(t, b.ledger(t, key).Refunds)
	})

	t.Run("CachedErrorReplayedUnderOneKeyEarnsANewKey", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{})
		p, key := b.confirmed(t, 15000)
		b.replayCachedErrors(t)
		b.script(t, key, gatewaysim.OperationCancel, step(gatewaysim.StepError, "FAILED_REFUND_PROCESS"))
		c := b.requestCancel(t, p.ID, 4000)

		got := b.waitStatus(t, p.ID, payment.StatusPartiallyCanceled)
		require.Equal(t, []string{"confirm:success", "cancel:transient", "cancel:transient", "lookup:success", "cancel:success"}, ops(got.Attempts))
		require.Contains(t, got.Attempts[3].Note, "replaced by "+c.IdempotencyKey+"-2")
		e := b.ledger(t, key)
		require.Len(t, e.Refunds, 1, "one refund, under the new key")
		require.Equal(t, c.IdempotencyKey+"-2", e.Refunds[0].IdempotencyKey)
		require.Equal(t, int64(11000), e.BalanceAmount)
		require.Equal(t, int64(11000), got.BalanceAmount)
	})

	// A cancel refused as the second within a second (another cancel of
	// the payment was just taken up), its refusal stored under the key and
	// replayed for every retry: once the quiet period has passed the key is
	// stuck like any other, where it used to keep the cancel for ever.
	t.Run("ConsecutiveRequestRefusalReplayedEarnsANewKey", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{})
		p, key := b.confirmed(t, 15000)
		b.replayCachedErrors(t)
		b.script(t, key, gatewaysim.OperationCancel, step(gatewaysim.StepError, "FORBIDDEN_CONSECUTIVE_REQUEST"))
		c := b.requestCancel(t, p.ID, 4000)

		got := b.waitStatus(t, p.ID, payment.StatusPartiallyCanceled)
		require.Equal(t, []string{"confirm:success", "cancel:transient", "cancel:transient", "lookup:success", "cancel:success"}, ops(got.Attempts))
		require.Contains(t, got.Attempts[3].Note, "replaced by "+c.IdempotencyKey+"-2")
		e := b.ledger(t, key)
		require.Len(t, e.Refunds, 1, "one refund, under the new key")
		require.Equal(t, c.IdempotencyKey+"-2", e.Refunds[0].IdempotencyKey)
		require.Equal(t, int64(11000), got.BalanceAmount)
	})

	t.Run("CachedUnclearAnswerEarnsANewKey", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{})
		p, key := b.confirmed(t, 15000)
		b.replayCachedErrors(t)
		b.script(t, key, gatewaysim.OperationCancel, step(gatewaysim.StepError, "UNKNOWN_PAYMENT_ERROR"))
		c := b.requestCancel(t, p.ID, 0)

		got := b.waitStatus(t, p.ID, payment.StatusCanceled)
		require.Equal(t, []string{
			"confirm:success",
			"cancel:unclear", "lookup:success", // no refund; one odd answer is not yet a stuck key
			"cancel:unclear", "lookup:success", // the same answer again: the key is stuck
			"lookup:success", // after the quiet period, still no refund: a new key
			"cancel:success",
		}, ops(got.Attempts))
		require.Contains(t, got.Attempts[5].Note, "replaced by "+c.IdempotencyKey+"-2")
		e := b.ledger(t, key)
		require.Len(t, e.Refunds, 1)
		require.Equal(t, c.IdempotencyKey+"-2", e.Refunds[0].IdempotencyKey)
	})

	t.Run("TransientThenDone", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{})
		p, key := b.confirmed(t, 15000)
		b.script(t, key, gatewaysim.OperationCancel,
			step(gatewaysim.StepError, "FAILED_REFUND_PROCESS"),
			step(gatewaysim.StepError, "COMMON_ERROR"))
		c := b.requestCancel(t, p.ID, 0)

		got := b.waitStatus(t, p.ID, payment.StatusCanceled)
		require.Equal(t, []string{"confirm:success", "cancel:transient", "cancel:transient", "cancel:success"}, ops(got.Attempts))
		for _, a := range got.Attempts[1:] {
			require.Equal(t, c.IdempotencyKey, a.IdempotencyKey)
		}
		require.Len(t, b.ledger(t, key).Refunds, 1)
	})
}

// TestHeldCancel is the partial cancel that was refunded twice: the gateway
// holds the cancel past the relay's timeout and applies it later, answering
// 409 IDEMPOTENT_REQUEST_PROCESSING to the same key meanwhile. Two 409s once
// looked like a key stuck on a cached error; a lookup still showed the old
// balance, the cancel moved to a new key, and both requests landed. The key
// rule alone stops that (the gateway here ignores refundableAmount), and so
// does refundableAmount alone (internal/gatewaysim's
// TestRefundableAmountAloneStopsDoubleRefund).
func TestHeldCancel(t *testing.T) {
	t.Parallel()

	for _, ignoreRefundable := range []bool{false, true} {
		name := "KeyRuleAndRefundableAmount"
		if ignoreRefundable {
			name = "KeyRuleAlone"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			hold := time.Second
			b := setup(t, setupOpts{gatewayTimeout: 200 * time.Millisecond})
			p, key := b.confirmed(t, 15000)
			cfg := b.sim.Config()
			cfg.HoldRate, cfg.HoldFor = 1, gatewaysim.Duration(hold)
			cfg.IgnoreRefundableAmount = ignoreRefundable
			require.NoError(t, b.sim.SetConfig(cfg))

			c := b.requestCancel(t, p.ID, 3000)
			b.waitStatus(t, p.ID, payment.StatusPartiallyCanceled)
			// Long enough for any second request to have been held and
			// applied as well.
			time.Sleep(2 * hold)

			got, err := b.store.PaymentWithHistory(context.Background(), b.pool, payment.Everyone(), p.ID)
			require.NoError(t, err)
			e := b.ledger(t, key)
			require.Len(t, e.Refunds, 1, "one refund for one cancel")
			require.Equal(t, int64(12000), e.BalanceAmount)
			require.Equal(t, int64(12000), got.BalanceAmount)
			require.Equal(t, int64(3000), got.Cancels[0].CanceledAmount)
			processing := 0
			for _, a := range got.Attempts {
				if a.Operation != payment.OperationCancel {
					continue
				}
				require.Equal(t, c.IdempotencyKey, a.IdempotencyKey, "never a second key while a request may still run")
				if a.GatewayCode == "IDEMPOTENT_REQUEST_PROCESSING" {
					processing++
				}
			}
			require.GreaterOrEqual(t, processing, 2, "the gateway said 'still processing' more than once")
		})
	}
}
