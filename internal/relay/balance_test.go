package relay_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/payment-outbox/payment-outbox/internal/gateway"
	"github.com/payment-outbox/payment-outbox/internal/gatewaysim"
	"github.com/payment-outbox/payment-outbox/internal/payflow"
	"github.com/payment-outbox/payment-outbox/internal/payment"
	"github.com/payment-outbox/payment-outbox/internal/relay"
)

// windowOpts is a relay whose retry after a lost answer comes after the
// gateway forgot the cancel's key: retries 1s apart, keys kept 500ms (the
// 3 hours of PortOne, scaled down). relayKnows says whether the relay's
// clients are told the scaled retention too; either way a retry must not
// rely on the key.
func windowOpts(relayKnows bool) setupOpts {
	opts := setupOpts{schedule: relay1s, simKeyRetention: 500 * time.Millisecond}
	if relayKnows {
		opts.clientKeyRetention = opts.simKeyRetention
	}
	return opts
}

var relay1s = relay.Schedule{Initial: time.Second, Max: time.Second}

// waitRefunds waits until the gateway's ledger shows n refunds.
func (b *testBundle) waitRefunds(t *testing.T, key string, n int) gatewaysim.LedgerEntry {
	t.Helper()
	var e gatewaysim.LedgerEntry
	require.Eventually(t, func() bool {
		e = b.ledger(t, key)
		return len(e.Refunds) >= n
	}, 10*time.Second, 5*time.Millisecond)
	return e
}

func notes(attempts []payment.Attempt) string {
	var out []string
	for _, a := range attempts {
		if a.Note != "" {
			out = append(out, a.Note)
		}
	}
	return strings.Join(out, " | ")
}

// TestCancelAfterKeyWindow is hole 2 of issue 16: a PortOne partial cancel
// of 3,000 on 10,000 is performed and its answer lost; the relay's retry
// comes after PortOne forgot the key, and meanwhile shop staff refunded
// 2,000 in the console. The balance, 5,000, is neither ours nor what our
// cancel leaves; sending the cancel again against it refunded 3,000 twice.
// The gateway's list of cancels proves ours was performed.
func TestCancelAfterKeyWindow(t *testing.T) {
	t.Parallel()
	for name, relayKnows := range map[string]bool{"RelayKnowsTheRetention": true, "KeyForgottenUnawares": false} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, windowOpts(relayKnows))
			p, id := b.portOneConfirmed(t, 10_000)
			b.script(t, id, gatewaysim.OperationCancel, step(gatewaysim.StepLost, ""))
			c := b.requestCancel(t, p.ID, 3_000)
			b.waitRefunds(t, id, 1)
			_, err := b.sim.ConsoleCancel(gatewaysim.ConsoleCancelRequest{PaymentKey: id, Amount: 2_000, Reason: "staff refund"})
			require.NoError(t, err)

			got := b.waitStatus(t, p.ID, payment.StatusPartiallyCanceled)
			b.waitDrained(t)
			e := b.ledger(t, id)
			require.Len(t, e.Refunds, 2, "ours once and the console's; never ours twice")
			require.Equal(t, int64(5_000), e.BalanceAmount)
			require.Equal(t, c.IdempotencyKey, e.Refunds[0].IdempotencyKey)
			require.True(t, e.Refunds[1].Console)

			got, err = b.store.PaymentWithHistory(context.Background(), b.pool, payment.Everyone(), p.ID)
			require.NoError(t, err)
			require.Equal(t, payment.StatusPartiallyCanceled, got.Status)
			require.Equal(t, int64(5_000), got.BalanceAmount)
			require.Equal(t, int64(5_000), got.CanceledAmount)
			require.Equal(t, payment.CancelDone, got.Cancels[0].Status)
			require.Equal(t, int64(3_000), got.Cancels[0].CanceledAmount, "the cancel's own refund, not the console's")
			require.Equal(t, e.Refunds[0].TransactionKey, got.Cancels[0].TransactionKey)
			require.Contains(t, notes(got.Attempts), "recorded done")
			for _, a := range got.Attempts {
				if a.Operation == payment.OperationCancel {
					require.Equal(t, c.IdempotencyKey, a.IdempotencyKey, "no resend under another key")
					require.Equal(t, int64(10_000), a.RefundableAmount)
				}
			}
		})
	}
}

// TestConsoleRefundLeavesLess is hole 3 of issue 16: after a refund in the
// gateway's console leaves less than a pending partial cancel asks for, or
// nothing, the cancel was adopted against a balance the clients refuse to
// build a request for, read as misconfigured, and stuck in canceling for
// ever. It fails with its own code, the payment stands as the gateway holds
// it, and nothing is sent.
func TestConsoleRefundLeavesLess(t *testing.T) {
	t.Parallel()
	for _, gw := range []string{payment.GatewayToss, payment.GatewayPortOne} {
		for name, tc := range map[string]struct {
			console int64 // 0: the whole balance
			balance int64
			status  payment.Status
			code    string
		}{
			"LessThanTheCancel": {9_000, 1_000, payment.StatusPartiallyCanceled, payment.CodeCancelExceedsBalanceNow},
			"Nothing":           {0, 0, payment.StatusCanceled, payment.CodeNothingToRefund},
		} {
			t.Run(gw+"/"+name, func(t *testing.T) {
				t.Parallel()
				b := setup(t, setupOpts{})
				var (
					p   payment.Payment
					key string
				)
				if gw == payment.GatewayToss {
					p, key = b.confirmed(t, 10_000)
				} else {
					p, key = b.portOneConfirmed(t, 10_000)
				}
				_, err := b.sim.ConsoleCancel(gatewaysim.ConsoleCancelRequest{PaymentKey: key, Amount: tc.console})
				require.NoError(t, err)
				b.requestCancel(t, p.ID, 3_000)

				got := b.waitStatus(t, p.ID, tc.status)
				b.waitDrained(t)
				got, err = b.store.PaymentWithHistory(context.Background(), b.pool, payment.Everyone(), p.ID)
				require.NoError(t, err)
				require.Equal(t, tc.status, got.Status)
				require.Equal(t, tc.balance, got.BalanceAmount)
				require.Equal(t, payment.CancelFailed, got.Cancels[0].Status)
				require.Equal(t, tc.code, got.Cancels[0].FailureCode)
				sent := 0
				for _, a := range got.Attempts {
					require.NotEqual(t, string(gateway.ClassMisconfigured), a.Classification, "never misconfigured")
					if a.Operation == payment.OperationCancel {
						sent++
					}
				}
				require.Equal(t, 1, sent, "the refused cancel only: nothing is sent against a balance it no longer fits")
				e := b.ledger(t, key)
				require.Len(t, e.Refunds, 1, "the console's refund only")
				require.Equal(t, tc.balance, e.BalanceAmount)
			})
		}
	}
}

// TestUnexplainedBalanceGoesToAPerson: the gateway's list cannot tell
// whether our cancel was performed (here two refunds of its amount after
// its first request, whose balance was recorded before the relay kept it),
// so the cancel and the payment go to unknown with the reason, never a
// resend; an operator's decision settles it through a lookup.
func TestUnexplainedBalanceGoesToAPerson(t *testing.T) {
	t.Parallel()
	for _, decision := range []payment.CancelDecision{payment.CancelDecisionDone, payment.CancelDecisionResend, payment.CancelDecisionAbandon} {
		t.Run(string(decision), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			b := setup(t, windowOpts(true))
			p, key := b.confirmed(t, 10_000)
			b.script(t, key, gatewaysim.OperationCancel, step(gatewaysim.StepLost, ""))
			c := b.requestCancel(t, p.ID, 3_000)
			b.waitRefunds(t, key, 1)
			// A row written before attempts kept their refundableAmount.
			_, err := b.pool.Exec(ctx, "UPDATE payment_attempts SET refundable_amount = NULL WHERE cancel_id = $1", c.ID)
			require.NoError(t, err)
			_, err = b.sim.ConsoleCancel(gatewaysim.ConsoleCancelRequest{PaymentKey: key, Amount: 3_000})
			require.NoError(t, err)

			got := b.waitStatus(t, p.ID, payment.StatusUnknown)
			require.Equal(t, payment.CancelUnknown, got.Cancels[0].Status)
			require.Equal(t, payment.CodeUnexplainedBalance, got.Cancels[0].FailureCode)
			require.Contains(t, got.Cancels[0].FailureMessage, "could each be this cancel")
			require.Len(t, b.ledger(t, key).Refunds, 2, "nothing sent on a guess")

			f, op := b.operator(t)
			attention, err := f.AttentionPayments(ctx, b.pool, payment.AttentionStatuses(), payflow.AttentionQuery{Before: time.Now().Add(time.Hour), Limit: 1000})
			require.NoError(t, err)
			listed := false
			for _, a := range attention {
				listed = listed || a.Payment.ID == p.ID
			}
			require.True(t, listed, "in the attention list")

			a := act(t, b, func(ctx context.Context, tx pgx.Tx) (payment.OperatorAction, error) {
				return f.SettleCancel(ctx, tx, op, p.ID, "", decision, "checked the gateway's console")
			})
			done := b.waitOutcome(t, p.ID, a.ID)
			require.Equal(t, payment.ActionSettleCancel, done.Action)
			require.NotContains(t, done.Outcome, "not carried out")

			e := b.ledger(t, key)
			switch decision {
			case payment.CancelDecisionDone:
				got = b.waitStatus(t, p.ID, payment.StatusPartiallyCanceled)
				require.Equal(t, payment.CancelDone, got.Cancels[0].Status)
				require.Len(t, e.Refunds, 2)
			case payment.CancelDecisionResend:
				got = b.waitStatus(t, p.ID, payment.StatusPartiallyCanceled)
				require.Equal(t, payment.CancelDone, got.Cancels[0].Status)
				e = b.waitRefunds(t, key, 3)
				require.Equal(t, payment.NextCancelIdempotencyKey(c.ID, c.IdempotencyKey), e.Refunds[2].IdempotencyKey, "a new key at once")
				require.Equal(t, int64(1_000), e.BalanceAmount)
			case payment.CancelDecisionAbandon:
				got = b.waitStatus(t, p.ID, payment.StatusPartiallyCanceled)
				require.Equal(t, payment.CancelFailed, got.Cancels[0].Status)
				require.Equal(t, payment.CodeAbandonedByOperator, got.Cancels[0].FailureCode)
				require.Len(t, e.Refunds, 2)
			}
			b.waitDrained(t)
			require.Equal(t, b.ledger(t, key).BalanceAmount, got.BalanceAmount, "ours is the gateway's")
		})
	}

	t.Run("DecisionTheRecordDoesNotBearOut", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		b := setup(t, windowOpts(true))
		p, key := b.confirmed(t, 10_000)
		b.script(t, key, gatewaysim.OperationCancel, step(gatewaysim.StepLost, ""))
		c := b.requestCancel(t, p.ID, 3_000)
		b.waitRefunds(t, key, 1)
		_, err := b.pool.Exec(ctx, "UPDATE payment_attempts SET refundable_amount = NULL WHERE cancel_id = $1", c.ID)
		require.NoError(t, err)
		_, err = b.sim.ConsoleCancel(gatewaysim.ConsoleCancelRequest{PaymentKey: key, Amount: 3_000})
		require.NoError(t, err)
		b.waitStatus(t, p.ID, payment.StatusUnknown)
		// Staff refund the rest meanwhile: a resend no longer fits.
		_, err = b.sim.ConsoleCancel(gatewaysim.ConsoleCancelRequest{PaymentKey: key})
		require.NoError(t, err)

		f, op := b.operator(t)
		a := act(t, b, func(ctx context.Context, tx pgx.Tx) (payment.OperatorAction, error) {
			return f.SettleCancel(ctx, tx, op, p.ID, "", payment.CancelDecisionResend, "checked")
		})
		done := b.waitOutcome(t, p.ID, a.ID)
		require.Contains(t, done.Outcome, "not carried out")
		got, err := b.store.PaymentWithHistory(ctx, b.pool, payment.Everyone(), p.ID)
		require.NoError(t, err)
		require.Equal(t, payment.StatusUnknown, got.Status, "a decision the record refuses changes nothing")
		require.Equal(t, payment.CancelUnknown, got.Cancels[0].Status)
		require.Len(t, b.ledger(t, key).Refunds, 3, "nothing sent")
	})
}

// TestConfirmAfterKeyWindow: a Toss confirm whose answer was lost is
// retried after the gateway forgot its key. A request under it would be a
// fresh confirm, which Toss may answer NOT_FOUND_PAYMENT_SESSION (the
// session is long gone), and the payment the first request charged was
// recorded expired. Past the key's retention the relay looks the payment
// up first.
func TestConfirmAfterKeyWindow(t *testing.T) {
	t.Parallel()
	b := setup(t, windowOpts(true))
	p, key := b.newPayment(t, 10_000, nil)
	b.script(t, key, gatewaysim.OperationConfirm,
		step(gatewaysim.StepLost, ""),
		step(gatewaysim.StepError, "NOT_FOUND_PAYMENT_SESSION"))
	b.requestConfirm(t, p.ID, key, 10_000, nil)

	got := b.waitStatus(t, p.ID, payment.StatusConfirmed)
	require.Equal(t, []string{"confirm:transient", "lookup:success"}, ops(got.Attempts), "looked up, never sent under the forgotten key")
	require.Equal(t, int64(10_000), got.BalanceAmount)
	require.Equal(t, 1, b.ledger(t, key).Approvals)
}
