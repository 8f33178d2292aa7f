package payflow_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/stretchr/testify/require"

	"github.com/payment-outbox/payment-outbox/internal/dbtest"
	"github.com/payment-outbox/payment-outbox/internal/payflow"
	"github.com/payment-outbox/payment-outbox/internal/payment"
	"github.com/payment-outbox/payment-outbox/internal/store"
)

// lookupBundle is a Flow on a fresh database whose clock the test moves.
type lookupBundle struct {
	pool  *pgxpool.Pool
	store *store.Store
	flow  *payflow.Flow
	now   time.Time
}

const every = 10 * time.Second

func setupLookups(t *testing.T) *lookupBundle {
	t.Helper()
	pool := dbtest.Pool(t)
	outbox, err := river.NewClient(riverpgxv5.New(pool), &river.Config{})
	require.NoError(t, err)
	// Two seconds into an interval, so the test's steps stay in it.
	b := &lookupBundle{pool: pool, store: store.New(), now: time.Now().Truncate(every).Add(2 * time.Second)}
	b.flow, err = payflow.New(payflow.Config{Store: b.store, Outbox: outbox, Now: func() time.Time { return b.now },
		WebhookLookupInterval: every})
	require.NoError(t, err)
	return b
}

func (b *lookupBundle) portOnePayment(t *testing.T) payment.Payment {
	t.Helper()
	orderID := "order-" + uuid.NewString()[:8]
	in := payment.Intent{OrderID: orderID, OrderName: "Tea", Amount: 5000, Gateway: payment.GatewayPortOne, PaymentKey: "pay-" + orderID}
	require.NoError(t, in.Validate())
	p, _, err := b.store.InsertPayment(context.Background(), b.pool, uuid.NewString(), in)
	require.NoError(t, err)
	require.NotEmpty(t, p.PaymentKey)
	return p
}

func (b *lookupBundle) request(t *testing.T, p payment.Payment) bool {
	t.Helper()
	var inserted bool
	require.NoError(t, pgx.BeginFunc(context.Background(), b.pool, func(tx pgx.Tx) error {
		var err error
		inserted, err = b.flow.RequestLookup(context.Background(), tx, p)
		return err
	}))
	return inserted
}

// lookupJob is one lookup job of the payment as River holds it.
type lookupJob struct {
	id          int64
	state       string
	scheduledAt time.Time
}

func (b *lookupBundle) jobs(t *testing.T, p payment.Payment) []lookupJob {
	t.Helper()
	rows, err := b.pool.Query(context.Background(),
		"SELECT id, state, scheduled_at FROM river_job WHERE kind = 'payment_lookup' AND args->>'paymentId' = $1 ORDER BY id", p.ID)
	require.NoError(t, err)
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (lookupJob, error) {
		var j lookupJob
		return j, r.Scan(&j.id, &j.state, &j.scheduledAt)
	})
	require.NoError(t, err)
	return out
}

// setState moves a job as the relay's River would: running when a worker
// took it, completed when it finished.
func (b *lookupBundle) setState(t *testing.T, id int64, state string) {
	t.Helper()
	q := "UPDATE river_job SET state = 'running', attempt = 1, attempted_at = now() WHERE id = $1"
	if state == "completed" {
		q = "UPDATE river_job SET state = 'completed', finalized_at = now() WHERE id = $1"
	}
	_, err := b.pool.Exec(context.Background(), q, id)
	require.NoError(t, err)
}

// TestWebhookLookupsPerInterval: the one-lookup-per-interval rule
// (docs/design.md, "A webhook costs at most one lookup per interval"),
// step by step against River's real uniqueness.
func TestWebhookLookupsPerInterval(t *testing.T) {
	t.Parallel()
	b := setupLookups(t)
	p := b.portOnePayment(t)
	start := b.now.Truncate(every)

	require.True(t, b.request(t, p), "the interval's first request: a lookup now")
	require.False(t, b.request(t, p), "it has not started: it will read this request too")
	jobs := b.jobs(t, p)
	require.Len(t, jobs, 1)
	require.Equal(t, "available", jobs[0].state)

	b.setState(t, jobs[0].id, "running")
	b.now = b.now.Add(time.Second)
	require.True(t, b.request(t, p), "this interval's lookup may have read already: the next interval's waits")
	jobs = b.jobs(t, p)
	require.Len(t, jobs, 2)
	require.Equal(t, "scheduled", jobs[1].state)
	require.True(t, jobs[1].scheduledAt.Equal(start.Add(every)), "at the next interval's start, not %s", jobs[1].scheduledAt)
	require.False(t, b.request(t, p), "every later request of the interval shares it")

	b.setState(t, jobs[0].id, "completed")
	require.False(t, b.request(t, p), "a completed lookup counts: still the one waiting")
	require.Len(t, b.jobs(t, p), 2)

	// The next interval: its lookup, already waiting, is the one.
	b.now = start.Add(every + time.Second)
	require.False(t, b.request(t, p))
	b.setState(t, jobs[1].id, "running")
	b.setState(t, jobs[1].id, "completed")
	require.True(t, b.request(t, p), "after it ran, the interval after it")
	jobs = b.jobs(t, p)
	require.Len(t, jobs, 3)
	require.True(t, jobs[2].scheduledAt.Equal(start.Add(2*every)))

	// A lookup that saw an older request leaves a follow-up under the same
	// rule: none while the next interval's lookup waits; the interval after
	// the one that ran when it has.
	stale := b.now.Add(-time.Hour)
	answered := func() bool {
		var again bool
		require.NoError(t, pgx.BeginFunc(context.Background(), b.pool, func(tx pgx.Tx) error {
			var err error
			again, err = b.flow.LookupAnswered(context.Background(), tx, p.ID, &stale)
			return err
		}))
		return again
	}
	require.False(t, answered(), "the next interval's lookup waits already")
	require.Len(t, b.jobs(t, p), 3)
	b.now = start.Add(2*every + time.Second)
	b.setState(t, jobs[2].id, "running")
	b.setState(t, jobs[2].id, "completed")
	require.True(t, answered(), "the waiting request gets the interval after the one that ran")
	jobs = b.jobs(t, p)
	require.Len(t, jobs, 4)
	require.True(t, jobs[3].scheduledAt.Equal(start.Add(3*every)))

	// A payment never sent to the gateway is not asked about.
	toss := payment.Intent{OrderID: "order-" + uuid.NewString()[:8], OrderName: "Tea", Amount: 5000, Gateway: payment.GatewayToss}
	q, _, err := b.store.InsertPayment(context.Background(), b.pool, uuid.NewString(), toss)
	require.NoError(t, err)
	require.False(t, b.request(t, q))
	require.Empty(t, b.jobs(t, q))
}

// TestAcceptDelivery: a signed delivery is taken once until its receipt
// expires; after, its id is taken afresh.
func TestAcceptDelivery(t *testing.T) {
	t.Parallel()
	b := setupLookups(t)
	accept := func(id string, expires time.Time) bool {
		var fresh bool
		require.NoError(t, pgx.BeginFunc(context.Background(), b.pool, func(tx pgx.Tx) error {
			var err error
			fresh, err = b.flow.AcceptDelivery(context.Background(), tx, id, expires)
			return err
		}))
		return fresh
	}
	expires := b.now.Add(5 * time.Minute)
	require.True(t, accept("msg_1", expires))
	require.False(t, accept("msg_1", expires), "a replay")
	require.False(t, accept("msg_1", expires.Add(time.Minute)), "a retry, signed later")
	require.True(t, accept("msg_2", expires), "another delivery")

	b.now = expires.Add(time.Second)
	require.True(t, accept("msg_1", b.now.Add(5*time.Minute)), "expired: taken afresh")
	var n int
	require.NoError(t, b.pool.QueryRow(context.Background(), "SELECT count(*) FROM webhook_receipts").Scan(&n))
	require.Equal(t, 1, n, "msg_2's expired receipt was swept")
}

func TestParseWebhookLookupInterval(t *testing.T) {
	t.Parallel()
	d, err := payflow.ParseWebhookLookupInterval("")
	require.NoError(t, err)
	require.Equal(t, payflow.DefaultWebhookLookupInterval, d)
	d, err = payflow.ParseWebhookLookupInterval("30s")
	require.NoError(t, err)
	require.Equal(t, 30*time.Second, d)
	for _, bad := range []string{"0", "500ms", "2h", "ten seconds", "-5s"} {
		_, err := payflow.ParseWebhookLookupInterval(bad)
		require.ErrorContains(t, err, "WEBHOOK_LOOKUP_INTERVAL", bad)
	}
	outbox, err := river.NewClient(riverpgxv5.New(nil), &river.Config{})
	require.NoError(t, err)
	_, err = payflow.New(payflow.Config{Store: store.New(), Outbox: outbox, WebhookLookupInterval: time.Millisecond})
	require.Error(t, err, "an interval's name (its start in RFC 3339) is in whole seconds")
}
