package relay_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/payment-outbox/payment-outbox/internal/gatewaysim"
	"github.com/payment-outbox/payment-outbox/internal/payflow"
	"github.com/payment-outbox/payment-outbox/internal/payment"
)

// quickDeposit looks up waiting payments every 50ms, and lets an account
// expire 50ms after its due date.
var quickDeposit = payment.DepositSchedule{Far: 50 * time.Millisecond, Near: 50 * time.Millisecond,
	Close: 50 * time.Millisecond, Grace: 50 * time.Millisecond}

// newTossAccount creates a Toss intent whose customer chose a virtual
// account, and has the relay confirm it.
func (b *testBundle) newTossAccount(t *testing.T, amount int64) (payment.Payment, string) {
	t.Helper()
	orderID := "order-" + uuid.NewString()[:8]
	in := payment.Intent{OrderID: orderID, OrderName: "Test order", Amount: amount, Gateway: payment.GatewayToss}
	require.NoError(t, in.Validate())
	p, created, err := b.store.InsertPayment(context.Background(), b.pool, uuid.NewString(), in)
	require.NoError(t, err)
	require.True(t, created)
	auth, err := b.sim.Authorize(gatewaysim.AuthorizeRequest{OrderID: orderID, Amount: amount, Method: gatewaysim.MethodVirtualAccount})
	require.NoError(t, err)
	b.requestConfirm(t, p.ID, auth.PaymentKey, amount, nil)
	return p, auth.PaymentKey
}

// flow is a payflow.Flow on the test's outbox, for the api's use cases.
func (b *testBundle) flow(t *testing.T) *payflow.Flow {
	t.Helper()
	f, err := payflow.New(payflow.Config{Store: b.store, Outbox: b.client})
	require.NoError(t, err)
	return f
}

// cancelTo does what POST /cancel does, with a refund account.
func (b *testBundle) cancelTo(t *testing.T, id string, refund *payment.RefundAccount) (payment.Payment, error) {
	t.Helper()
	var p payment.Payment
	err := pgx.BeginFunc(context.Background(), b.pool, func(tx pgx.Tx) error {
		var err error
		p, err = b.flow(t).Cancel(context.Background(), tx, payment.Everyone(), id, uuid.NewString(), "customer asked", 0, refund)
		return err
	})
	return p, err
}

// lookupAsked does what a verified gateway webhook does: asks for a lookup.
func (b *testBundle) lookupAsked(t *testing.T, p payment.Payment) {
	t.Helper()
	require.NoError(t, pgx.BeginFunc(context.Background(), b.pool, func(tx pgx.Tx) error {
		_, err := b.flow(t).RequestLookup(context.Background(), tx, p)
		return err
	}))
}

func TestVirtualAccount(t *testing.T) {
	t.Parallel()

	// ready → confirming → waiting_for_deposit → confirmed: the confirm
	// spends one call and completes; the deposit is seen by the lookup a
	// webhook asks for.
	t.Run("TossDepositConfirms", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{})
		p, key := b.newTossAccount(t, 15000)
		got := b.waitStatus(t, p.ID, payment.StatusWaitingForDeposit)
		require.NotNil(t, got.VirtualAccount)
		require.Equal(t, "88", got.VirtualAccount.Bank)
		require.Len(t, got.VirtualAccount.AccountNumber, 14)
		require.False(t, got.VirtualAccount.DueDate.IsZero())
		require.NotEmpty(t, got.DepositSecret.Reveal(), "the confirm answer's secret is kept for the DEPOSIT_CALLBACK")
		require.Empty(t, got.FailureCode)
		require.Len(t, got.Attempts, 1, "the confirm spends no more attempts once the account is issued")
		b.waitDrained(t)
		require.Zero(t, b.ledger(t, key).Approvals)

		_, err := b.sim.Deposit(gatewaysim.DepositRequest{PaymentKey: key})
		require.NoError(t, err)
		b.lookupAsked(t, got)
		got = b.waitStatus(t, p.ID, payment.StatusConfirmed)
		require.Equal(t, int64(15000), got.ApprovedAmount)
		require.Equal(t, int64(15000), got.BalanceAmount)
		require.NotNil(t, got.VirtualAccount, "the account stays on the payment")
		require.Equal(t, 1, b.ledger(t, key).Approvals)
	})

	// The deposit's webhook never comes: the sweep finds it.
	t.Run("LostWebhookCaughtBySweep", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{reconcile: true, deposit: quickDeposit})
		p, key := b.newTossAccount(t, 15000)
		b.waitStatus(t, p.ID, payment.StatusWaitingForDeposit)
		_, err := b.sim.Deposit(gatewaysim.DepositRequest{PaymentKey: key})
		require.NoError(t, err)
		got := b.waitStatus(t, p.ID, payment.StatusConfirmed)
		require.Equal(t, int64(15000), got.BalanceAmount)
	})

	// Never paid: past its due date a lookup shows no deposit, and the
	// payment expires; it never went to unknown on the way.
	t.Run("NeverPaidExpires", func(t *testing.T) {
		t.Parallel()
		// Toss writes the due date to the second, so the grace must
		// outlast that rounding, as the default's ten minutes do.
		sched := quickDeposit
		sched.Grace = 1500 * time.Millisecond
		b := setup(t, setupOpts{reconcile: true, deposit: sched, accountDue: 300 * time.Millisecond})
		p, key := b.newTossAccount(t, 15000)
		b.waitStatus(t, p.ID, payment.StatusWaitingForDeposit)
		got := b.waitStatus(t, p.ID, payment.StatusExpired)
		require.Equal(t, "DEPOSIT_EXPIRED", got.FailureCode)
		require.True(t, time.Now().After(got.VirtualAccount.DueDate))
		require.Equal(t, payment.OperationLookup, got.Attempts[len(got.Attempts)-1].Operation, "ended by a lookup's answer")
		for _, a := range got.Attempts {
			require.NotEqual(t, "unknown", a.Classification)
		}
		require.Zero(t, b.ledger(t, key).Approvals)
		_, err := b.sim.Deposit(gatewaysim.DepositRequest{PaymentKey: key})
		require.Error(t, err, "the gateway takes no deposit past the due date")
	})

	// Refunded after the deposit, to the account the shop gave; the whole
	// number leaves our row once the cancel is done.
	t.Run("RefundToTheAccountGiven", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{})
		p, key := b.newTossAccount(t, 15000)
		got := b.waitStatus(t, p.ID, payment.StatusWaitingForDeposit)
		_, err := b.sim.Deposit(gatewaysim.DepositRequest{PaymentKey: key})
		require.NoError(t, err)
		b.lookupAsked(t, got)
		b.waitStatus(t, p.ID, payment.StatusConfirmed)

		// Without the account: refused, nothing written.
		_, err = b.cancelTo(t, p.ID, nil)
		require.Equal(t, payment.CodeRefundAccountRequired, payment.ErrorOf(err).Code)
		cancels, err := b.store.Cancels(context.Background(), b.pool, p.ID)
		require.NoError(t, err)
		require.Empty(t, cancels)
		// A malformed one: refused too.
		_, err = b.cancelTo(t, p.ID, &payment.RefundAccount{Bank: "88", AccountNumber: "110-123-45678", HolderName: "김토스"})
		require.Equal(t, payment.KindInvalid, payment.ErrorOf(err).Kind)

		_, err = b.cancelTo(t, p.ID, &payment.RefundAccount{Bank: "88", AccountNumber: "11012345678", HolderName: "김토스"})
		require.NoError(t, err)
		got = b.waitStatus(t, p.ID, payment.StatusCanceled)
		require.Len(t, got.Cancels, 1)
		require.Equal(t, payment.CancelDone, got.Cancels[0].Status)
		require.Equal(t, "88", got.Cancels[0].RefundBank)
		require.Equal(t, "5678", got.Cancels[0].RefundLast4)
		require.Nil(t, got.Cancels[0].RefundAccount, "the whole account is gone once the cancel is done")
		var number, holder *string
		require.NoError(t, b.pool.QueryRow(context.Background(),
			"SELECT refund_account_number, refund_holder_name FROM payment_cancels WHERE id = $1", got.Cancels[0].ID).Scan(&number, &holder))
		require.Nil(t, number)
		require.Nil(t, holder)

		e := b.ledger(t, key)
		require.Len(t, e.Refunds, 1)
		require.Equal(t, int64(15000), e.Refunds[0].Amount)
		require.Equal(t, "88 ****5678", e.Refunds[0].RefundAccount)
	})

	// The shop cancels before the deposit: the account is closed through
	// the outbox, nothing refunded, nothing charged.
	t.Run("CancelBeforeDeposit", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{})
		p, key := b.newTossAccount(t, 15000)
		b.waitStatus(t, p.ID, payment.StatusWaitingForDeposit)
		_, err := b.cancelTo(t, p.ID, &payment.RefundAccount{Bank: "88", AccountNumber: "11012345678", HolderName: "김토스"})
		require.Error(t, err, "nothing was deposited: a refund account is refused")
		got, err := b.cancelTo(t, p.ID, nil)
		require.NoError(t, err)
		require.Equal(t, payment.StatusCanceling, got.Status)
		got = b.waitStatus(t, p.ID, payment.StatusCanceled)
		require.Len(t, got.Cancels, 1)
		require.Equal(t, payment.CancelVoid, got.Cancels[0].Status)
		require.Zero(t, got.Cancels[0].CanceledAmount)
		e := b.ledger(t, key)
		require.Zero(t, e.Approvals)
		require.Empty(t, e.Refunds)
		_, err = b.sim.Deposit(gatewaysim.DepositRequest{PaymentKey: key})
		require.Error(t, err, "a closed account takes no deposit")
	})

	// A deposit of another amount is not kept, and its refund needs the
	// customer's account, which nobody has given: the compensation is held,
	// never sent, and the payment waits in unknown with
	// refund_account_required on the attention list. An operator names the
	// account; the compensation goes through the outbox to it, and the
	// deposit is refunded in full, once (docs/design.md section 19).
	t.Run("WrongAmountWaitsForTheAccount", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{reconcile: true, deposit: quickDeposit})
		p, key := b.newTossAccount(t, 15000)
		got := b.waitStatus(t, p.ID, payment.StatusWaitingForDeposit)
		_, err := b.sim.Deposit(gatewaysim.DepositRequest{PaymentKey: key, Amount: 1000})
		require.NoError(t, err)
		b.lookupAsked(t, got)
		got = b.waitStatus(t, p.ID, payment.StatusUnknown)
		require.Equal(t, payment.CodeRefundAccountRequired, got.FailureCode)
		require.Equal(t, int64(1000), got.ApprovedAmount)
		require.Len(t, got.Cancels, 1)
		held := got.Cancels[0]
		require.Equal(t, payment.CancelCompensation, held.Kind)
		require.Equal(t, payment.CancelFailed, held.Status)
		require.Equal(t, payment.CodeRefundAccountRequired, held.FailureCode)

		// Listed for a person, with the reason.
		f, op := b.operator(t)
		listed, err := f.AttentionPayments(context.Background(), b.pool, payment.AttentionStatuses(), payflow.AttentionQuery{Before: time.Now().Add(time.Hour), Limit: 100})
		require.NoError(t, err)
		require.Len(t, listed, 1)
		require.Equal(t, p.ID, listed[0].Payment.ID)
		require.Contains(t, listed[0].Reason, payment.CodeRefundAccountRequired)

		// Never sent without the account: the sweeps and lookups of the
		// reconciler go on, and nothing goes to the gateway but lookups.
		b.waitDrained(t)
		for _, r := range b.sim.Requests(key) {
			require.NotContains(t, r.Path, "/cancel", "no cancel was sent without the account")
		}
		require.Empty(t, b.ledger(t, key).Refunds)
		// A plain resend and a bad account are refused, and change nothing.
		var resendErr error
		_ = pgx.BeginFunc(context.Background(), b.pool, func(tx pgx.Tx) error {
			_, resendErr = f.ResendCancel(context.Background(), tx, op, p.ID, "", "send it again")
			return resendErr
		})
		require.Equal(t, payment.CodeRefundAccountRequired, payment.ErrorOf(resendErr).Code)
		var badErr error
		_ = pgx.BeginFunc(context.Background(), b.pool, func(tx pgx.Tx) error {
			_, badErr = f.RefundAccount(context.Background(), tx, op, p.ID, "", "customer gave it by phone",
				payment.RefundAccount{Bank: "88", AccountNumber: "110-123", HolderName: "김토스"})
			return badErr
		})
		require.Equal(t, payment.KindInvalid, payment.ErrorOf(badErr).Kind)
		require.Equal(t, payment.StatusUnknown, b.waitStatus(t, p.ID, payment.StatusUnknown).Status)

		a := act(t, b, func(ctx context.Context, tx pgx.Tx) (payment.OperatorAction, error) {
			return f.RefundAccount(ctx, tx, op, p.ID, "", "customer gave it by phone",
				payment.RefundAccount{Bank: "88", AccountNumber: "11012345678", HolderName: "김토스"})
		})
		require.Equal(t, payment.ActionRefundAccount, a.Action)
		require.Equal(t, held.ID, a.CancelID)
		require.Equal(t, payment.StatusCanceling, a.StatusAfter)
		require.Contains(t, a.Detail, "88 ****5678")
		require.NotContains(t, a.Detail, "11012345678", "the audit keeps the last four digits only")

		got = b.waitStatus(t, p.ID, payment.StatusCanceled)
		require.Zero(t, got.BalanceAmount)
		require.Equal(t, int64(1000), got.CanceledAmount)
		require.Len(t, got.Cancels, 1)
		require.Equal(t, payment.CancelDone, got.Cancels[0].Status)
		require.Equal(t, int64(1000), got.Cancels[0].CanceledAmount)
		require.Equal(t, "5678", got.Cancels[0].RefundLast4)
		require.Nil(t, got.Cancels[0].RefundAccount, "the whole account is gone once the cancel is done")
		e := b.ledger(t, key)
		require.Equal(t, 1, e.Approvals)
		require.Len(t, e.Refunds, 1, "refunded once")
		require.Equal(t, int64(1000), e.Refunds[0].Amount, "in full")
		require.Equal(t, "88 ****5678", e.Refunds[0].RefundAccount)
		require.Zero(t, e.BalanceAmount)
	})

	// The checkout's own cancel may name the account instead: without it
	// the cancel is refused; with it the held compensation is sent (no
	// second cancel), and the deposit is refunded in full. PortOne here.
	t.Run("WrongAmountCheckoutNamesTheAccount", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{reconcile: true, deposit: quickDeposit})
		p, id := b.newPortOnePayment(t, 15000, gatewaysim.PortOnePayRequest{Status: gatewaysim.PortOneVirtualAccountIssued})
		b.requestConfirm(t, p.ID, id, 15000, nil)
		b.waitStatus(t, p.ID, payment.StatusWaitingForDeposit)
		_, err := b.sim.Deposit(gatewaysim.DepositRequest{PaymentKey: id, Amount: 20000})
		require.NoError(t, err)
		got := b.waitStatus(t, p.ID, payment.StatusUnknown)
		require.Equal(t, payment.CodeRefundAccountRequired, got.FailureCode)

		_, err = b.cancelTo(t, p.ID, nil)
		require.Equal(t, payment.CodeRefundAccountRequired, payment.ErrorOf(err).Code)
		got, err = b.cancelTo(t, p.ID, &payment.RefundAccount{Bank: "KOOKMIN", AccountNumber: "12345678901", HolderName: "Kim Toss"})
		require.NoError(t, err)
		require.Equal(t, payment.StatusCanceling, got.Status)
		require.Len(t, got.Cancels, 1, "the held compensation is sent; no second cancel")
		got = b.waitStatus(t, p.ID, payment.StatusCanceled)
		require.Equal(t, payment.CancelDone, got.Cancels[0].Status)
		e := b.ledger(t, id)
		require.Len(t, e.Refunds, 1)
		require.Equal(t, int64(20000), e.Refunds[0].Amount)
		require.Equal(t, "KOOKMIN ****8901", e.Refunds[0].RefundAccount)
	})

	// PortOne: VIRTUAL_ACCOUNT_ISSUED waits for the deposit, and
	// Transaction.Paid's lookup (or the sweep) confirms it.
	t.Run("PortOneDepositConfirms", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{reconcile: true, deposit: quickDeposit})
		p, id := b.newPortOnePayment(t, 15000, gatewaysim.PortOnePayRequest{Status: gatewaysim.PortOneVirtualAccountIssued})
		b.requestConfirm(t, p.ID, id, 15000, nil)
		got := b.waitStatus(t, p.ID, payment.StatusWaitingForDeposit)
		require.Equal(t, "SHINHAN", got.VirtualAccount.Bank)
		require.False(t, got.VirtualAccount.DueDate.IsZero())
		_, err := b.sim.Deposit(gatewaysim.DepositRequest{PaymentKey: id})
		require.NoError(t, err)
		got = b.waitStatus(t, p.ID, payment.StatusConfirmed)
		require.Equal(t, int64(15000), got.BalanceAmount)
	})

	// PortOne: a cancel before the deposit closes the account (PortOne's
	// cancel would answer PaymentNotPaid).
	t.Run("PortOneCancelBeforeDeposit", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{})
		p, id := b.newPortOnePayment(t, 15000, gatewaysim.PortOnePayRequest{Status: gatewaysim.PortOneVirtualAccountIssued})
		b.requestConfirm(t, p.ID, id, 15000, nil)
		b.waitStatus(t, p.ID, payment.StatusWaitingForDeposit)
		_, err := b.cancelTo(t, p.ID, nil)
		require.NoError(t, err)
		got := b.waitStatus(t, p.ID, payment.StatusCanceled)
		require.Equal(t, payment.CancelVoid, got.Cancels[0].Status)
		require.Zero(t, b.ledger(t, id).Approvals)
		reqs := b.sim.Requests(id)
		require.Equal(t, "/payments/"+id+"/virtual-account/close", reqs[1].Path)
	})

	// PortOne: a refund after the deposit sends refundAccount.
	t.Run("PortOneRefundToTheAccountGiven", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{reconcile: true, deposit: quickDeposit})
		p, id := b.newPortOnePayment(t, 15000, gatewaysim.PortOnePayRequest{Status: gatewaysim.PortOneVirtualAccountIssued})
		b.requestConfirm(t, p.ID, id, 15000, nil)
		b.waitStatus(t, p.ID, payment.StatusWaitingForDeposit)
		_, err := b.sim.Deposit(gatewaysim.DepositRequest{PaymentKey: id})
		require.NoError(t, err)
		b.waitStatus(t, p.ID, payment.StatusConfirmed)
		_, err = b.cancelTo(t, p.ID, &payment.RefundAccount{Bank: "KOOKMIN", AccountNumber: "12345678901", HolderName: "Kim Toss"})
		require.NoError(t, err)
		b.waitStatus(t, p.ID, payment.StatusCanceled)
		e := b.ledger(t, id)
		require.Len(t, e.Refunds, 1)
		require.Equal(t, "KOOKMIN ****8901", e.Refunds[0].RefundAccount)
	})
}
