package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/payment-outbox/payment-outbox/internal/dbtest"
	"github.com/payment-outbox/payment-outbox/internal/payment"
	"github.com/payment-outbox/payment-outbox/internal/store"
	"github.com/payment-outbox/payment-outbox/internal/webhook"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// insertPayment inserts a ready 5,000 KRW Toss payment under a fresh order.
func insertPayment(t *testing.T, st *store.Store, db store.DBTX) payment.Payment {
	t.Helper()
	in := payment.Intent{OrderID: "order-" + uuid.NewString()[:8], OrderName: "Tea", Amount: 5000, Gateway: payment.GatewayToss}
	require.NoError(t, in.Validate())
	p, _, err := st.InsertPayment(context.Background(), db, uuid.NewString(), in)
	require.NoError(t, err)
	return p
}

// TestGuardedSave holds SavePayment and SaveCancel to "no silent
// overwrite": a save computed from a status the row no longer has, or a move
// the transition table does not list, fails with stale_write and writes
// nothing.
func TestGuardedSave(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.Pool(t)
	st := store.New()

	p := insertPayment(t, st, pool)

	// Two writers read the same ready payment; the first confirms it.
	first, second := p, p
	_, err := first.RequestConfirm("pk_guard", 5000, time.Now())
	require.NoError(t, err)
	require.NoError(t, st.SavePayment(ctx, pool, &first))
	require.Equal(t, payment.StatusConfirming, first.StoredStatus, "the saved row is the new baseline")

	// The second, still believing it ready, cancels it: that would undo a
	// confirm whose job is in the outbox.
	_, err = second.RequestCancel(uuid.NewString(), "changed my mind", 0, nil, time.Now())
	require.NoError(t, err)
	err = st.SavePayment(ctx, pool, &second)
	require.Equal(t, payment.CodeStaleWrite, payment.ErrorOf(err).Code)
	got, err := st.Payment(ctx, pool, p.ID)
	require.NoError(t, err)
	require.Equal(t, payment.StatusConfirming, got.Status)

	// A move the table does not list is refused before any SQL.
	got.Status = payment.StatusReady
	err = st.SavePayment(ctx, pool, &got)
	require.Equal(t, payment.CodeStaleWrite, payment.ErrorOf(err).Code)

	// Cancels are guarded the same way.
	got, err = st.Payment(ctx, pool, p.ID)
	require.NoError(t, err)
	got.GiveUpConfirm("no_answer", "test")
	require.NoError(t, st.SavePayment(ctx, pool, &got))
	c := payment.Cancel{ID: uuid.NewString(), PaymentID: p.ID, Kind: payment.CancelByCustomer, Reason: "r",
		Status: payment.CancelWaiting, IdempotencyKey: "cancel-guard"}
	c, err = st.InsertCancel(ctx, pool, c)
	require.NoError(t, err)
	stale := c
	c.Status = payment.CancelVoid
	require.NoError(t, st.SaveCancel(ctx, pool, &c))
	stale.Status = payment.CancelPending
	err = st.SaveCancel(ctx, pool, &stale)
	require.Equal(t, payment.CodeStaleWrite, payment.ErrorOf(err).Code, "waiting was already void")
	c.Status = payment.CancelPending
	err = st.SaveCancel(ctx, pool, &c)
	require.Equal(t, payment.CodeStaleWrite, payment.ErrorOf(err).Code, "void is final")
}

// TestWebhookAttemptOnSettledDelivery is a delivery job's run that River
// gave up on (its relay frozen past the rescue) waking after another run
// delivered: its failure must not turn "succeeded" back into "pending",
// which left the delivery pending with no job (found by the chaos suite).
func TestWebhookAttemptOnSettledDelivery(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.Pool(t)
	st := store.New()

	p := insertPayment(t, st, pool)
	e, err := st.InsertWebhookEndpoint(ctx, pool, webhook.Endpoint{
		ID: uuid.NewString(), URL: "https://shop.example/webhooks", Events: webhook.EventTypes(), Secret: "whsec_dGVzdA==",
	}, webhook.DefaultMaxEndpoints)
	require.NoError(t, err)
	d, err := st.InsertWebhookDelivery(ctx, pool, webhook.Delivery{
		ID: uuid.NewString(), EndpointID: e.ID, EventID: "msg_1", EventType: "payment.confirmed", PaymentID: p.ID, Payload: []byte(`{}`),
	})
	require.NoError(t, err)

	_, err = st.RecordWebhookAttempt(ctx, pool, d.ID, webhook.DeliverySucceeded, 204, "")
	require.NoError(t, err)
	_, err = st.RecordWebhookAttempt(ctx, pool, d.ID, webhook.DeliveryPending, 0, "context deadline exceeded")
	require.ErrorIs(t, err, store.ErrDeliverySettled)
	got, err := st.WebhookDelivery(ctx, pool, d.ID)
	require.NoError(t, err)
	require.Equal(t, webhook.DeliverySucceeded, got.Status)
	require.Equal(t, 1, got.Attempts)
}

// TestPaymentsLeft: of the payments asked about, only those whose status is
// none of the given ones come back; an unknown id is simply absent.
func TestPaymentsLeft(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.Pool(t)
	st := store.New()

	newPayment := func() payment.Payment {
		p := insertPayment(t, st, pool)
		_, err := p.RequestConfirm("pk_"+p.OrderID, 5000, time.Now())
		require.NoError(t, err)
		require.NoError(t, st.SavePayment(ctx, pool, &p))
		return p
	}
	stays, settles := newPayment(), newPayment()
	settles.GiveUpConfirm("no_answer", "test")
	require.NoError(t, st.SavePayment(ctx, pool, &settles))

	inFlight := []payment.Status{payment.StatusConfirming, payment.StatusCanceling}
	left, err := st.PaymentsLeft(ctx, pool, []string{stays.ID, settles.ID, uuid.NewString()}, inFlight)
	require.NoError(t, err)
	require.Equal(t, []string{settles.ID}, left)

	_, err = st.PaymentsLeft(ctx, pool, []string{"not-a-uuid"}, inFlight)
	require.Error(t, err)
}
