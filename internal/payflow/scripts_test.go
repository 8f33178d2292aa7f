package payflow_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/payment-outbox/payment-outbox/internal/payflow"
	"github.com/payment-outbox/payment-outbox/internal/payment"
	"github.com/payment-outbox/payment-outbox/internal/store"
)

// The use cases' own scripts against real Postgres, with an insert-only
// River client as the outbox (setupLookups): what each saves and what it
// puts into the outbox, in the caller's transaction.

// intent inserts a ready payment of gateway for 15000.
func (b *lookupBundle) intent(t *testing.T, gateway string) payment.Payment {
	t.Helper()
	orderID := "order-" + uuid.NewString()[:8]
	in := payment.Intent{OrderID: orderID, OrderName: "Tea", Amount: 15000, Gateway: gateway}
	if gateway == payment.GatewayPortOne {
		in.PaymentKey = "pay-" + orderID
	}
	require.NoError(t, in.Validate())
	p, _, err := b.store.InsertPayment(context.Background(), b.pool, uuid.NewString(), in)
	require.NoError(t, err)
	return p
}

// inTx runs fn in a committed transaction.
func (b *lookupBundle) inTx(t *testing.T, fn func(ctx context.Context, tx pgx.Tx) error) {
	t.Helper()
	require.NoError(t, pgx.BeginFunc(context.Background(), b.pool, func(tx pgx.Tx) error {
		return fn(context.Background(), tx)
	}))
}

// outbox lists the kinds of the payment's jobs, and the cancel each cancel
// job is for, in insert order.
func (b *lookupBundle) outbox(t *testing.T, paymentID string) []string {
	t.Helper()
	rows, err := b.pool.Query(context.Background(),
		"SELECT kind || coalesce(':' || (args->>'cancelId'), '') FROM river_job WHERE args->>'paymentId' = $1 ORDER BY id", paymentID)
	require.NoError(t, err)
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	return out
}

func (b *lookupBundle) reload(t *testing.T, id string) (payment.Payment, []payment.Cancel) {
	t.Helper()
	p, err := b.store.Payment(context.Background(), b.pool, id)
	require.NoError(t, err)
	cs, err := b.store.Cancels(context.Background(), b.pool, id)
	require.NoError(t, err)
	return p, cs
}

func (b *lookupBundle) cancel(t *testing.T, p payment.Payment, amount int64) string {
	t.Helper()
	id := uuid.NewString()
	b.inTx(t, func(ctx context.Context, tx pgx.Tx) error {
		_, err := b.flow.Cancel(ctx, tx, payment.Everyone(), p.ID, id, "customer asked", amount, nil)
		return err
	})
	return id
}

func (b *lookupBundle) confirmToss(t *testing.T, p payment.Payment) {
	t.Helper()
	b.inTx(t, func(ctx context.Context, tx pgx.Tx) error {
		_, err := b.flow.Confirm(ctx, tx, payment.Everyone(), p.ID, "pk-"+p.OrderID, p.Amount, "")
		return err
	})
}

func (b *lookupBundle) approve(t *testing.T, p payment.Payment, balance int64) payflow.Change {
	t.Helper()
	var ch payflow.Change
	b.inTx(t, func(ctx context.Context, tx pgx.Tx) error {
		var err error
		ch, err = b.flow.RecordApproval(ctx, tx, p.ID, approval(p, balance))
		return err
	})
	return ch
}

func approval(p payment.Payment, balance int64) payment.Approval {
	return payment.Approval{OrderID: p.OrderID, Currency: "KRW", TotalAmount: p.Amount, BalanceAmount: balance,
		Method: "card", ApprovedAt: time.Now().Truncate(time.Second)}
}

// settle runs Settle on the payment as the lookup worker does: locked by
// the Flow, then settled from rec.
func (b *lookupBundle) settle(t *testing.T, flow *payflow.Flow, id string, rec payment.Record) payflow.Change {
	t.Helper()
	var ch payflow.Change
	b.inTx(t, func(ctx context.Context, tx pgx.Tx) error {
		p, err := flow.PaymentForUpdate(ctx, tx, id)
		if err != nil {
			return err
		}
		ch, err = flow.Settle(ctx, tx, &p, rec, payflow.SettleOptions{})
		return err
	})
	return ch
}

// TestCancelFromReady: a Toss intent never reached the gateway, so its
// cancel ends it on the spot with nothing in the outbox; a PortOne intent
// may have been paid already, so its cancel waits for a lookup.
func TestCancelFromReady(t *testing.T) {
	t.Parallel()

	t.Run("Toss", func(t *testing.T) {
		t.Parallel()
		b := setupLookups(t)
		p := b.intent(t, payment.GatewayToss)
		cid := b.cancel(t, p, 0)
		got, cs := b.reload(t, p.ID)
		require.Equal(t, payment.StatusCanceled, got.Status)
		require.Len(t, cs, 1)
		require.Equal(t, cid, cs[0].ID)
		require.Equal(t, payment.CancelVoid, cs[0].Status)
		require.Empty(t, b.outbox(t, p.ID))
	})

	t.Run("PortOne", func(t *testing.T) {
		t.Parallel()
		b := setupLookups(t)
		p := b.intent(t, payment.GatewayPortOne)
		cid := b.cancel(t, p, 0)
		got, cs := b.reload(t, p.ID)
		require.Equal(t, payment.StatusCanceling, got.Status)
		require.Len(t, cs, 1)
		require.Equal(t, cid, cs[0].ID)
		require.Equal(t, payment.CancelWaiting, cs[0].Status)
		require.Equal(t, []string{"payment_lookup"}, b.outbox(t, p.ID))
	})

	t.Run("PartOfAReadyIntentIsRefused", func(t *testing.T) {
		t.Parallel()
		b := setupLookups(t)
		p := b.intent(t, payment.GatewayToss)
		err := pgx.BeginFunc(context.Background(), b.pool, func(tx pgx.Tx) error {
			_, err := b.flow.Cancel(context.Background(), tx, payment.Everyone(), p.ID, uuid.NewString(), "customer asked", 100, nil)
			return err
		})
		require.Equal(t, payment.CodeInvalidState, payment.ErrorOf(err).Code)
		got, cs := b.reload(t, p.ID)
		require.Equal(t, payment.StatusReady, got.Status)
		require.Empty(t, cs)
		require.Empty(t, b.outbox(t, p.ID))
	})
}

// TestRecordApprovalWithWaitingCancel: the customer's cancel recorded while
// the confirm was in flight waits for its outcome; the approval sends it
// (pending, its job in the outbox) and the payment is canceling.
func TestRecordApprovalWithWaitingCancel(t *testing.T) {
	t.Parallel()
	b := setupLookups(t)
	p := b.intent(t, payment.GatewayToss)
	b.confirmToss(t, p)
	cid := b.cancel(t, p, 0)
	_, cs := b.reload(t, p.ID)
	require.Equal(t, payment.CancelWaiting, cs[0].Status)
	require.Equal(t, []string{"payment_confirm"}, b.outbox(t, p.ID), "a waiting cancel has no job yet")

	ch := b.approve(t, p, p.Amount)
	require.True(t, ch.Applied)
	require.Equal(t, payment.StatusConfirming, ch.From)
	require.Equal(t, payment.StatusCanceling, ch.To)
	require.Nil(t, ch.Compensation, "the customer's own cancel runs, not a compensation")
	got, cs := b.reload(t, p.ID)
	require.Equal(t, payment.StatusCanceling, got.Status)
	require.Len(t, cs, 1)
	require.Equal(t, payment.CancelPending, cs[0].Status)
	require.Equal(t, []string{"payment_confirm", "payment_cancel:" + cid}, b.outbox(t, p.ID))

	// Once more (a replayed job): the payment no longer awaits its confirm,
	// so nothing is written and nothing enqueued.
	again := b.approve(t, p, p.Amount)
	require.False(t, again.Applied)
	require.Equal(t, []string{"payment_confirm", "payment_cancel:" + cid}, b.outbox(t, p.ID))
}

// TestSettleAppliesThePlan: Settle applies what payment.SettlePlan decided,
// saves it and enqueues what it sends (the plan's cases are
// payment.TestSettlePlan's; these are its applications).
func TestSettleAppliesThePlan(t *testing.T) {
	t.Parallel()

	t.Run("RefundedElsewhere", func(t *testing.T) {
		t.Parallel()
		b := setupLookups(t)
		p := b.intent(t, payment.GatewayToss)
		b.confirmToss(t, p)
		b.approve(t, p, p.Amount)
		ch := b.settle(t, b.flow, p.ID, payment.Record{Approved: true, Approval: approval(p, 5000)})
		require.True(t, ch.Applied)
		require.Equal(t, payment.StatusPartiallyCanceled, ch.To)
		require.Equal(t, "gateway shows a refund the relay did not make: balance 5000, ours was 15000", ch.Note)
		got, cs := b.reload(t, p.ID)
		require.Equal(t, payment.StatusPartiallyCanceled, got.Status)
		require.EqualValues(t, 5000, got.BalanceAmount)
		require.Empty(t, cs)
		require.Equal(t, []string{"payment_confirm"}, b.outbox(t, p.ID))
	})

	t.Run("AgreesChangesNothing", func(t *testing.T) {
		t.Parallel()
		b := setupLookups(t)
		p := b.intent(t, payment.GatewayToss)
		b.confirmToss(t, p)
		b.approve(t, p, p.Amount)
		before, _ := b.reload(t, p.ID)
		ch := b.settle(t, b.flow, p.ID, payment.Record{Approved: true, Approval: approval(p, p.Amount)})
		require.False(t, ch.Applied)
		got, _ := b.reload(t, p.ID)
		require.Equal(t, before.UpdatedAt, got.UpdatedAt, "nothing saved")
	})

	t.Run("ReadyIntentVoidedThenCharged", func(t *testing.T) {
		t.Parallel()
		b := setupLookups(t)
		p := b.intent(t, payment.GatewayPortOne)
		cid := b.cancel(t, p, 0)

		// The lookup the cancel waited for finds nothing paid: void.
		ch := b.settle(t, b.flow, p.ID, payment.Record{Unpaid: true})
		require.True(t, ch.Applied)
		require.Equal(t, payment.StatusCanceled, ch.To)
		got, cs := b.reload(t, p.ID)
		require.Equal(t, payment.StatusCanceled, got.Status)
		require.Equal(t, payment.CancelVoid, cs[0].Status)

		// The customer pays under the id after all: all of it goes back by
		// a compensation, inserted and enqueued in the same transaction.
		ch = b.settle(t, b.flow, p.ID, payment.Record{Approved: true, Approval: approval(p, p.Amount)})
		require.True(t, ch.Applied)
		require.Equal(t, payment.StatusCanceling, ch.To)
		require.NotNil(t, ch.Compensation)
		require.Equal(t, "the gateway charged a payment the shop had canceled before any charge was seen", ch.Note)
		got, cs = b.reload(t, p.ID)
		require.Equal(t, payment.StatusCanceling, got.Status)
		require.Len(t, cs, 2)
		require.Equal(t, payment.CancelCompensation, cs[1].Kind)
		require.Equal(t, payment.CancelPending, cs[1].Status)
		require.Equal(t, ch.Compensation.ID, cs[1].ID)
		require.Equal(t, []string{"payment_lookup", "payment_cancel:" + cs[1].ID}, b.outbox(t, p.ID))
		require.NotEqual(t, cid, cs[1].ID)
	})

	t.Run("CancelDone", func(t *testing.T) {
		t.Parallel()
		b := setupLookups(t)
		p := b.intent(t, payment.GatewayToss)
		b.confirmToss(t, p)
		b.approve(t, p, p.Amount)
		cid := b.cancel(t, p, 5000)
		rec := payment.Record{Approved: true, Approval: approval(p, 10000), TransactionKey: "tx-1"}
		ch := b.settle(t, b.flow, p.ID, rec)
		require.True(t, ch.Applied)
		require.Equal(t, payment.StatusPartiallyCanceled, ch.To)
		got, cs := b.reload(t, p.ID)
		require.EqualValues(t, 10000, got.BalanceAmount)
		require.Equal(t, cid, cs[0].ID)
		require.Equal(t, payment.CancelDone, cs[0].Status)
		require.Equal(t, "tx-1", cs[0].TransactionKey)
		require.Equal(t, []string{"payment_confirm", "payment_cancel:" + cid}, b.outbox(t, p.ID), "nothing more enqueued")
	})
}

// TestAnsweringFlow: a Flow bound to an outcome's gateway answers writes
// them in its first payment lock, so they commit with the outcome or not
// at all; an unbound Flow writes none.
func TestAnsweringFlow(t *testing.T) {
	t.Parallel()
	b := setupLookups(t)
	p := b.intent(t, payment.GatewayToss)
	b.confirmToss(t, p)
	ctx := context.Background()
	id, err := b.store.StartAttempt(ctx, b.pool, payment.Attempt{PaymentID: p.ID, Operation: payment.OperationLookup, RequestedAt: time.Now()})
	require.NoError(t, err)
	finished := time.Now()
	answers := &store.Answers{List: []payment.Attempt{{ID: id, FinishedAt: &finished, HTTPStatus: 200, Classification: "success"}}}
	rec := payment.Record{Approved: true, Approval: approval(p, p.Amount)}
	attempt := func() payment.Attempt {
		as, err := b.store.Attempts(ctx, b.pool, p.ID)
		require.NoError(t, err)
		require.Len(t, as, 1)
		return as[0]
	}

	// Unbound: the outcome commits and the answer is not written.
	b.settle(t, b.flow, p.ID, payment.Record{Unpaid: true})
	require.Nil(t, attempt().FinishedAt)

	// Bound, rolled back: neither the outcome nor the answer.
	errRollback := errors.New("rolled back")
	flow := b.flow.Answering(answers)
	err = pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error {
		locked, err := flow.PaymentForUpdate(ctx, tx, p.ID)
		if err != nil {
			return err
		}
		require.True(t, answers.Written, "written in the lock's round trip")
		if _, err := flow.Settle(ctx, tx, &locked, rec, payflow.SettleOptions{}); err != nil {
			return err
		}
		return errRollback
	})
	require.ErrorIs(t, err, errRollback)
	require.Nil(t, attempt().FinishedAt)
	got, _ := b.reload(t, p.ID)
	require.Equal(t, payment.StatusConfirming, got.Status)

	// Bound, committed: both.
	answers.Written = false
	ch := b.settle(t, flow, p.ID, rec)
	require.True(t, answers.Written)
	require.Equal(t, payment.StatusConfirmed, ch.To)
	a := attempt()
	require.NotNil(t, a.FinishedAt)
	require.Equal(t, 200, a.HTTPStatus)
	got, _ = b.reload(t, p.ID)
	require.Equal(t, payment.StatusConfirmed, got.Status)
}
