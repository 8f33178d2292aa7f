package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/payment-outbox/payment-outbox/internal/dbtest"
	"github.com/payment-outbox/payment-outbox/internal/payment"
	"github.com/payment-outbox/payment-outbox/internal/store"
	"github.com/payment-outbox/payment-outbox/internal/webhook"
)

// TestSavePaymentChange: a save that changes the status lists the enabled
// endpoints for its event, in the save's own statement; a save that keeps
// the status lists none.
func TestSavePaymentChange(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.Pool(t)
	st := store.New()

	p := insertPayment(t, st, pool)
	confirming, err := st.InsertWebhookEndpoint(ctx, pool, webhook.Endpoint{
		ID: uuid.NewString(), URL: "https://shop.example/a", Events: []string{webhook.EventType(payment.StatusConfirming)}, Secret: "whsec_dGVzdA==",
	}, webhook.DefaultMaxEndpoints)
	require.NoError(t, err)
	_, err = st.InsertWebhookEndpoint(ctx, pool, webhook.Endpoint{
		ID: uuid.NewString(), URL: "https://shop.example/b", Events: []string{webhook.EventType(payment.StatusConfirmed)}, Secret: "whsec_dGVzdA==",
	}, webhook.DefaultMaxEndpoints)
	require.NoError(t, err)
	disabled, err := st.InsertWebhookEndpoint(ctx, pool, webhook.Endpoint{
		ID: uuid.NewString(), URL: "https://shop.example/c", Events: webhook.EventTypes(), Secret: "whsec_dGVzdA==",
	}, webhook.DefaultMaxEndpoints)
	require.NoError(t, err)
	_, err = st.DisableWebhookEndpoint(ctx, pool, payment.Everyone(), disabled.ID)
	require.NoError(t, err)

	_, err = p.RequestConfirm("pk_change", 5000, time.Now())
	require.NoError(t, err)
	endpoints, err := st.SavePaymentChange(ctx, pool, &p)
	require.NoError(t, err)
	require.Equal(t, []string{confirming.ID}, endpoints)

	// Acknowledging changes no status: nothing to tell.
	now := time.Now()
	p.AcknowledgedAt = &now
	endpoints, err = st.SavePaymentChange(ctx, pool, &p)
	require.NoError(t, err)
	require.Empty(t, endpoints)
}

// TestLockSeesCancelsOfThePreviousHolder: PaymentForUpdateWithOpenCancels
// sends the lock and the cancels' read in one round trip, yet the read runs
// after the lock is granted: a cancel committed by the transaction that held
// the lock while we waited is in the answer (one statement would read with
// the snapshot taken before the wait, and miss it).
func TestLockSeesCancelsOfThePreviousHolder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.Pool(t)
	st := store.New()

	p := insertPayment(t, st, pool)
	_, err := p.RequestConfirm("pk_lock", 5000, time.Now())
	require.NoError(t, err)
	require.NoError(t, st.SavePayment(ctx, pool, &p))

	holder, err := pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = holder.Rollback(ctx) }()
	_, err = st.PaymentForUpdate(ctx, holder, p.ID)
	require.NoError(t, err)

	type locked struct {
		open []payment.Cancel
		err  error
	}
	got := make(chan locked, 1)
	go func() {
		var l locked
		l.err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			var err error
			_, l.open, err = st.PaymentForUpdateWithOpenCancels(ctx, tx, p.ID)
			return err
		})
		got <- l
	}()
	// Let the second transaction reach the lock and wait on it.
	require.Eventually(t, func() bool {
		var waiting bool
		require.NoError(t, pool.QueryRow(ctx,
			"SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database())").Scan(&waiting))
		return waiting
	}, 5*time.Second, 5*time.Millisecond)

	c, err := st.InsertCancel(ctx, holder, payment.Cancel{ID: uuid.NewString(), PaymentID: p.ID, Kind: payment.CancelByCustomer,
		Reason: "r", Status: payment.CancelWaiting, IdempotencyKey: "cancel-lock"})
	require.NoError(t, err)
	require.NoError(t, holder.Commit(ctx))

	l := <-got
	require.NoError(t, l.err)
	require.Len(t, l.open, 1)
	require.Equal(t, c.ID, l.open[0].ID)
}
