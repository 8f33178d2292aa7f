package relay_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/payment-outbox/payment-outbox/internal/gateway"
	"github.com/payment-outbox/payment-outbox/internal/gateway/toss"
	"github.com/payment-outbox/payment-outbox/internal/gatewaysim"
	"github.com/payment-outbox/payment-outbox/internal/payment"
	"github.com/payment-outbox/payment-outbox/internal/paymentjob"
	"github.com/payment-outbox/payment-outbox/internal/relay"
)

// force writes a payment state directly: the position a relay that gave up
// (or died) would have left it in.
func (b *testBundle) force(t *testing.T, id string, fn func(p *payment.Payment)) {
	t.Helper()
	ctx := context.Background()
	require.NoError(t, pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error {
		p, err := b.store.PaymentForUpdate(ctx, tx, id)
		if err != nil {
			return err
		}
		fn(&p)
		return b.store.SavePayment(ctx, tx, &p)
	}))
}

func TestReconciler(t *testing.T) {
	t.Parallel()

	t.Run("UnknownButChargedBecomesConfirmed", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{paused: true, reconcile: true})
		p, key := b.newPayment(t, 17000, nil)
		b.force(t, p.ID, func(p *payment.Payment) { _, _ = p.RequestConfirm(key, 17000, time.Now()) })
		b.force(t, p.ID, func(p *payment.Payment) { p.GiveUpConfirm("no_answer", "retry budget spent") })
		// The gateway did charge (the relay's last answer was lost).
		res := b.gw.Confirm(context.Background(), gateway.ConfirmRequest{PaymentKey: key, OrderID: p.OrderID, Amount: 17000}, "confirm-"+p.ID+"-1")
		require.Equal(t, gateway.ClassSuccess, toss.Classify(res))
		b.start(t)

		got := b.waitStatus(t, p.ID, payment.StatusConfirmed)
		require.Equal(t, int64(17000), got.BalanceAmount)
		require.Equal(t, []string{"lookup:success"}, ops(got.Attempts))
		require.Equal(t, 1, b.ledger(t, key).Approvals)
	})

	// A payment the reconciler finds stuck that also has a lookup request
	// waiting: one lookup in the pass's insert, not two (River refuses a
	// batch naming one unique job twice, and every pass failed with it).
	t.Run("StuckWithAWaitingLookupRequest", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{paused: true, reconcile: true})
		p, key := b.newPayment(t, 17000, nil)
		b.force(t, p.ID, func(p *payment.Payment) { _, _ = p.RequestConfirm(key, 17000, time.Now()) })
		b.force(t, p.ID, func(p *payment.Payment) { p.GiveUpConfirm("no_answer", "retry budget spent") })
		_, err := b.pool.Exec(context.Background(), "UPDATE payments SET lookup_wanted_at = now() - interval '1 hour' WHERE id = $1", p.ID)
		require.NoError(t, err)
		res := b.gw.Confirm(context.Background(), gateway.ConfirmRequest{PaymentKey: key, OrderID: p.OrderID, Amount: 17000}, "confirm-"+p.ID+"-1")
		require.Equal(t, gateway.ClassSuccess, toss.Classify(res))
		b.start(t)

		got := b.waitStatus(t, p.ID, payment.StatusConfirmed)
		require.Equal(t, int64(17000), got.BalanceAmount)
		var failed int
		require.NoError(t, b.pool.QueryRow(context.Background(),
			"SELECT count(*) FROM river_job WHERE kind = 'payment_reconcile' AND errors IS NOT NULL").Scan(&failed))
		require.Zero(t, failed, "no reconciler pass failed")
	})

	t.Run("UnknownNeverChargedExpiresWithTheSession", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{paused: true, reconcile: true})
		authenticated := time.Now().Add(-11 * time.Minute)
		p, key := b.newPayment(t, 5000, &authenticated)
		b.force(t, p.ID, func(p *payment.Payment) { _, _ = p.RequestConfirm(key, 5000, time.Now()) })
		b.force(t, p.ID, func(p *payment.Payment) { p.GiveUpConfirm("no_answer", "retry budget spent") })
		b.start(t)

		got := b.waitStatus(t, p.ID, payment.StatusExpired)
		require.Zero(t, b.ledger(t, key).Approvals)
		require.Equal(t, "EXPIRED", got.FailureCode)
	})

	t.Run("UnknownCancelThatHappenedIsDone", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{reconcile: true})
		p, key := b.confirmed(t, 15000)
		ctx := context.Background()
		// A cancel the relay gave up on (unknown) although the gateway did
		// refund under its key.
		cancelID := uuid.NewString()
		res := b.gw.Cancel(ctx, key, gateway.CancelRequest{Reason: "customer asked", Amount: 6000, RefundableAmount: 15000}, payment.CancelIdempotencyKey(cancelID))
		require.Equal(t, gateway.ClassSuccess, toss.Classify(res))
		require.NoError(t, pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error {
			locked, err := b.store.PaymentForUpdate(ctx, tx, p.ID)
			if err != nil {
				return err
			}
			plan, err := locked.RequestCancel(cancelID, "customer asked", 6000, nil, time.Now())
			if err != nil {
				return err
			}
			// Saved as the api would, then given up on as a relay that
			// spent its budget would.
			if err := b.store.SavePayment(ctx, tx, &locked); err != nil {
				return err
			}
			c, err := b.store.InsertCancel(ctx, tx, plan.Cancel)
			if err != nil {
				return err
			}
			locked.GiveUpCancel(&c, "no_answer", "retry budget spent")
			if err := b.store.SavePayment(ctx, tx, &locked); err != nil {
				return err
			}
			return b.store.SaveCancel(ctx, tx, &c)
		}))

		got := b.waitStatus(t, p.ID, payment.StatusPartiallyCanceled)
		require.Equal(t, int64(9000), got.BalanceAmount)
		require.Equal(t, payment.CancelDone, got.Cancels[0].Status)
		require.Equal(t, int64(6000), got.Cancels[0].CanceledAmount)
		require.Len(t, b.ledger(t, key).Refunds, 1)
	})

	// giveUpCancel records a full cancel as a relay that spent its budget
	// would have left it: the payment and the cancel unknown. answers, if
	// any, are requests sent under its key (status and code, a minute ago).
	giveUpCancel := func(t *testing.T, b *testBundle, paymentID string, answers ...[2]any) payment.Cancel {
		ctx := context.Background()
		var c payment.Cancel
		require.NoError(t, pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error {
			locked, err := b.store.PaymentForUpdate(ctx, tx, paymentID)
			if err != nil {
				return err
			}
			plan, err := locked.RequestCancel(uuid.NewString(), "customer asked", 0, nil, time.Now())
			if err != nil {
				return err
			}
			// Saved as the api would, then given up on as the relay would.
			if err := b.store.SavePayment(ctx, tx, &locked); err != nil {
				return err
			}
			if c, err = b.store.InsertCancel(ctx, tx, plan.Cancel); err != nil {
				return err
			}
			sent := time.Now().Add(-time.Minute)
			for _, ans := range answers {
				a := payment.Attempt{PaymentID: paymentID, CancelID: c.ID, Operation: payment.OperationCancel,
					IdempotencyKey: c.IdempotencyKey, RequestedAt: sent}
				if a.ID, err = b.store.StartAttempt(ctx, tx, a); err != nil {
					return err
				}
				a.FinishedAt, a.HTTPStatus, a.GatewayCode = &sent, ans[0].(int), ans[1].(string)
				if err := b.store.FinishAttempt(ctx, tx, a); err != nil {
					return err
				}
			}
			locked.GiveUpCancel(&c, "no_answer", "retry budget spent")
			if err := b.store.SavePayment(ctx, tx, &locked); err != nil {
				return err
			}
			return b.store.SaveCancel(ctx, tx, &c)
		}))
		return c
	}

	t.Run("UnknownCancelThatDidNotHappenIsSentAgainUnderItsKey", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{reconcile: true})
		p, key := b.confirmed(t, 15000)
		// Its last answers were timeouts: a request may still be running
		// under the key, so the key rule keeps it.
		giveUpCancel(t, b, p.ID, [2]any{0, ""}, [2]any{0, ""})

		got := b.waitStatus(t, p.ID, payment.StatusCanceled)
		c := got.Cancels[0]
		require.Equal(t, payment.CancelDone, c.Status)
		require.Equal(t, payment.CancelIdempotencyKey(c.ID), c.IdempotencyKey)
		e := b.ledger(t, key)
		require.Len(t, e.Refunds, 1)
		require.Equal(t, c.IdempotencyKey, e.Refunds[0].IdempotencyKey)
		var noted bool
		for _, a := range got.Attempts {
			noted = noted || strings.Contains(a.Note, "sent again under the same key "+c.IdempotencyKey)
		}
		require.True(t, noted, "the lookup that sent it again says so")
	})

	t.Run("UnknownCancelOnAStuckKeyIsSentAgainUnderANewKey", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{reconcile: true})
		p, key := b.confirmed(t, 15000)
		// The same definite answer twice, long enough ago: the gateway is
		// done with the key, and the lookup shows no refund.
		giveUpCancel(t, b, p.ID, [2]any{500, "FAILED_REFUND_PROCESS"}, [2]any{500, "FAILED_REFUND_PROCESS"})

		got := b.waitStatus(t, p.ID, payment.StatusCanceled)
		c := got.Cancels[0]
		require.Equal(t, payment.CancelDone, c.Status)
		require.Equal(t, payment.CancelIdempotencyKey(c.ID)+"-2", c.IdempotencyKey)
		e := b.ledger(t, key)
		require.Len(t, e.Refunds, 1)
		require.Equal(t, c.IdempotencyKey, e.Refunds[0].IdempotencyKey)
		var noted bool
		for _, a := range got.Attempts {
			noted = noted || strings.Contains(a.Note, "sent again under "+c.IdempotencyKey+" (was ")
		}
		require.True(t, noted, "the lookup that justified the new key says so")
	})

	t.Run("RefundOutsideTheRelayIsAdopted", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{})
		p, key := b.confirmed(t, 15000)
		res := b.gw.Cancel(context.Background(), key, gateway.CancelRequest{Reason: "refunded in the gateway console", Amount: 3000, RefundableAmount: 15000}, "console-1")
		require.Equal(t, gateway.ClassSuccess, toss.Classify(res))
		// A webhook (or an operator) asks for a lookup.
		_, err := b.client.Insert(context.Background(), paymentjob.LookupArgs{PaymentID: p.ID}, nil)
		require.NoError(t, err)

		got := b.waitStatus(t, p.ID, payment.StatusPartiallyCanceled)
		require.Equal(t, int64(12000), got.BalanceAmount)
		require.Equal(t, int64(3000), got.CanceledAmount)
	})

	t.Run("DuplicateLookupsCollapse", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{paused: true})
		p, _ := b.newPayment(t, 1000, nil)
		for range 5 {
			_, err := b.client.Insert(context.Background(), paymentjob.LookupArgs{PaymentID: p.ID}, nil)
			require.NoError(t, err)
		}
		var n int
		require.NoError(t, b.pool.QueryRow(context.Background(), "SELECT count(*) FROM river_job WHERE kind = 'payment_lookup'").Scan(&n))
		require.Equal(t, 1, n)
	})
}

// approvesOtherAmount is a gateway that approves, then reports another
// amount than was asked: a gateway bug the relay must not keep money over.
type approvesOtherAmount struct {
	relay.Gateway
}

func (g approvesOtherAmount) Confirm(ctx context.Context, req gateway.ConfirmRequest, key string) gateway.Result {
	res := g.Gateway.Confirm(ctx, req, key)
	if res.Payment != nil {
		p := *res.Payment
		p.TotalAmount += 500
		p.BalanceAmount += 500
		res.Payment = &p
	}
	return res
}

func TestCompensation(t *testing.T) {
	t.Parallel()

	t.Run("ApprovedAmountDiffers", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{wrap: func(g relay.Gateway) relay.Gateway { return approvesOtherAmount{g} }})
		p, key := b.newPayment(t, 15000, nil)
		b.requestConfirm(t, p.ID, key, 15000, nil)

		got := b.waitStatus(t, p.ID, payment.StatusCanceled)
		// The approval's amounts are not the gateway's (it holds 15000, not
		// 15500): the compensation's refundableAmount is refused, a lookup
		// shows no refund at all, so ours was not performed: the gateway's
		// balance is adopted and the cancel sent with it, under a new key at
		// once (another balance is another request).
		require.Equal(t, []string{
			"confirm:success",
			"cancel:unclear", "lookup:success",
			"cancel:success",
		}, ops(got.Attempts))
		require.Equal(t, "NOT_MATCHES_REFUNDABLE_AMOUNT", got.Attempts[1].GatewayCode)
		require.Contains(t, got.Attempts[2].Note, "adopted balance 15000")
		require.Equal(t, payment.NextCancelIdempotencyKey(got.Cancels[0].ID, payment.CancelIdempotencyKey(got.Cancels[0].ID)), got.Attempts[3].IdempotencyKey)
		require.Len(t, got.Cancels, 1)
		require.Equal(t, payment.CancelCompensation, got.Cancels[0].Kind)
		require.Contains(t, got.Cancels[0].Reason, "15500")
		require.Equal(t, "approval_mismatch", got.FailureCode, "the history says why")
		e := b.ledger(t, key)
		require.Equal(t, 1, e.Approvals)
		require.Equal(t, int64(0), e.BalanceAmount, "the whole approval went back")
	})

	t.Run("RowWriteFailsAfterRefundIsRetriedUnderSameKey", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{})
		p, key := b.confirmed(t, 15000)
		ctx := context.Background()
		// Our database refuses to record any finished cancel, as if it went
		// away right after the gateway refunded.
		_, err := b.pool.Exec(ctx, "ALTER TABLE payment_cancels ADD CONSTRAINT chaos_no_done CHECK (status <> 'done')")
		require.NoError(t, err)
		c := b.requestCancel(t, p.ID, 0)
		require.Eventually(t, func() bool {
			return len(b.ledger(t, key).Refunds) == 1 && len(b.sim.Requests(key)) >= 3
		}, 10*time.Second, 10*time.Millisecond, "the gateway refunded and the relay retried")
		_, err = b.pool.Exec(ctx, "ALTER TABLE payment_cancels DROP CONSTRAINT chaos_no_done")
		require.NoError(t, err)

		got := b.waitStatus(t, p.ID, payment.StatusCanceled)
		require.Equal(t, payment.CancelDone, got.Cancels[0].Status)
		e := b.ledger(t, key)
		require.Len(t, e.Refunds, 1, "every retry replayed the one refund")
		for _, r := range b.sim.Requests(key) {
			if r.Operation == gatewaysim.OperationCancel {
				require.Equal(t, c.IdempotencyKey, r.IdempotencyKey)
			}
		}
	})

	t.Run("RowWriteFailsAfterApprovalIsRetriedUnderSameKey", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{})
		ctx := context.Background()
		_, err := b.pool.Exec(ctx, "ALTER TABLE payments ADD CONSTRAINT chaos_no_confirmed CHECK (status <> 'confirmed')")
		require.NoError(t, err)
		p, key := b.newPayment(t, 9900, nil)
		b.requestConfirm(t, p.ID, key, 9900, nil)
		require.Eventually(t, func() bool {
			return b.ledger(t, key).Approvals == 1 && len(b.sim.Requests(key)) >= 3
		}, 10*time.Second, 10*time.Millisecond)
		_, err = b.pool.Exec(ctx, "ALTER TABLE payments DROP CONSTRAINT chaos_no_confirmed")
		require.NoError(t, err)

		b.waitStatus(t, p.ID, payment.StatusConfirmed)
		require.Equal(t, 1, b.ledger(t, key).Approvals)
	})
}

func TestBreaker(t *testing.T) {
	t.Parallel()

	br := relay.NewBreaker(relay.BreakerConfig{Threshold: 3, Cooldown: 300 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	b := setup(t, setupOpts{breaker: br})
	cfg := b.sim.Config()
	cfg.Down = true
	require.NoError(t, b.sim.SetConfig(cfg))

	var ids []string
	for range 10 {
		p, key := b.newPayment(t, 2000, nil)
		b.requestConfirm(t, p.ID, key, 2000, nil)
		ids = append(ids, p.ID)
	}
	require.Eventually(t, func() bool { return br.State() == relay.BreakerOpen }, 10*time.Second, 5*time.Millisecond)

	// While the gateway is down the relay barely calls it and burns no
	// attempts: jobs snooze.
	time.Sleep(time.Second)
	var calls, maxAttempt int
	require.NoError(t, b.pool.QueryRow(context.Background(), "SELECT count(*) FROM payment_attempts").Scan(&calls))
	require.NoError(t, b.pool.QueryRow(context.Background(),
		"SELECT coalesce(max(attempt), 0) FROM river_job WHERE kind = 'payment_confirm'").Scan(&maxAttempt))
	require.Less(t, calls, 15, "threshold calls plus a probe per cooldown, not a storm")
	// Two 503s under a key, then the key rule and the breaker both snooze.
	require.LessOrEqual(t, maxAttempt, 3)

	cfg.Down = false
	require.NoError(t, b.sim.SetConfig(cfg))
	for _, id := range ids {
		b.waitStatus(t, id, payment.StatusConfirmed)
	}
	require.Equal(t, relay.BreakerClosed, br.State())
}

// TestOrphans is the cancel whose job River discarded (a plain error on its
// last attempt, or a relay crash during it): the cancel stayed pending and
// the payment canceling for ever. The reconciler now puts such work back.
func TestOrphans(t *testing.T) {
	t.Parallel()

	discard := func(t *testing.T, b *testBundle, kind string) {
		t.Helper()
		tag, err := b.pool.Exec(context.Background(),
			"UPDATE river_job SET state = 'discarded', finalized_at = now() WHERE kind = $1 AND state = 'available'", kind)
		require.NoError(t, err)
		require.Equal(t, int64(1), tag.RowsAffected())
	}

	t.Run("PendingCancelWithoutAJobIsSentAgain", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{reconcile: true})
		p, key := b.confirmed(t, 15000)
		require.NoError(t, b.client.Stop(context.Background()))
		c := b.requestCancel(t, p.ID, 4000)
		discard(t, b, "payment_cancel")
		b.start(t)

		got := b.waitStatus(t, p.ID, payment.StatusPartiallyCanceled)
		require.Equal(t, payment.CancelDone, got.Cancels[0].Status)
		require.Equal(t, c.IdempotencyKey, got.Cancels[0].IdempotencyKey, "under its current key")
		require.Len(t, b.ledger(t, key).Refunds, 1)
	})

	t.Run("ConfirmingWithoutAJobIsConfirmed", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{paused: true, reconcile: true})
		p, key := b.newPayment(t, 8000, nil)
		b.requestConfirm(t, p.ID, key, 8000, nil)
		discard(t, b, "payment_confirm")
		b.start(t)

		got := b.waitStatus(t, p.ID, payment.StatusConfirmed)
		require.Equal(t, "confirm-"+p.ID+"-1", got.ConfirmIdempotencyKey)
		require.Equal(t, 1, b.ledger(t, key).Approvals)
	})
}
