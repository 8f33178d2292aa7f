package payment

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var now = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

func readyPayment() Payment {
	return Payment{ID: "11111111-1111-1111-1111-111111111111", OrderID: "order-1", OrderName: "Book", Amount: 15000, Currency: "KRW", Status: StatusReady}
}

func confirmedPayment() Payment {
	p := readyPayment()
	_, _ = p.RequestConfirm("pk_1", 15000, now)
	p.ApplyApproval(Approval{OrderID: p.OrderID, TotalAmount: 15000, BalanceAmount: 15000}, nil, "comp", now)
	return p
}

func TestRequestConfirm(t *testing.T) {
	t.Parallel()

	t.Run("FromReady", func(t *testing.T) {
		t.Parallel()
		p := readyPayment()
		changed, err := p.RequestConfirm("pk_1", 15000, now)
		require.NoError(t, err)
		require.True(t, changed)
		require.Equal(t, StatusConfirming, p.Status)
		require.Equal(t, "confirm-"+p.ID+"-1", p.ConfirmIdempotencyKey)
	})

	t.Run("RepeatSameKeyChangesNothing", func(t *testing.T) {
		t.Parallel()
		p := readyPayment()
		_, _ = p.RequestConfirm("pk_1", 15000, now)
		before := p
		changed, err := p.RequestConfirm("pk_1", 15000, now.Add(time.Minute))
		require.NoError(t, err)
		require.False(t, changed)
		require.Equal(t, before, p)
	})

	t.Run("AmountMismatch", func(t *testing.T) {
		t.Parallel()
		p := readyPayment()
		_, err := p.RequestConfirm("pk_1", 100, now)
		require.Equal(t, CodeAmountMismatch, ErrorOf(err).Code)
		require.Equal(t, StatusReady, p.Status)
	})

	t.Run("OtherKeyConflicts", func(t *testing.T) {
		t.Parallel()
		p := readyPayment()
		_, _ = p.RequestConfirm("pk_1", 15000, now)
		_, err := p.RequestConfirm("pk_2", 15000, now)
		require.Equal(t, CodePaymentKeyConflict, ErrorOf(err).Code)
		require.Equal(t, "pk_1", p.PaymentKey)
	})
}

func TestRequestCancel(t *testing.T) {
	t.Parallel()

	t.Run("ReadyCancelsWithoutGateway", func(t *testing.T) {
		t.Parallel()
		p := readyPayment()
		plan, err := p.RequestCancel("c1", "changed mind", 0, nil, now)
		require.NoError(t, err)
		require.False(t, plan.Enqueue)
		require.Equal(t, StatusCanceled, p.Status)
		require.Equal(t, CancelVoid, plan.Cancel.Status)
	})

	t.Run("ConfirmingWaits", func(t *testing.T) {
		t.Parallel()
		p := readyPayment()
		_, _ = p.RequestConfirm("pk_1", 15000, now)
		plan, err := p.RequestCancel("c1", "changed mind", 0, nil, now)
		require.NoError(t, err)
		require.False(t, plan.Enqueue)
		require.Equal(t, StatusConfirming, p.Status)
		require.Equal(t, CancelWaiting, plan.Cancel.Status)
	})

	t.Run("ConfirmedEnqueues", func(t *testing.T) {
		t.Parallel()
		p := confirmedPayment()
		plan, err := p.RequestCancel("c1", "partial", 5000, nil, now)
		require.NoError(t, err)
		require.True(t, plan.Enqueue)
		require.Equal(t, StatusCanceling, p.Status)
		require.Equal(t, "cancel-c1", plan.Cancel.IdempotencyKey)
	})

	t.Run("OverBalance", func(t *testing.T) {
		t.Parallel()
		p := confirmedPayment()
		_, err := p.RequestCancel("c1", "too much", 15001, nil, now)
		require.Equal(t, CodeCancelExceeds, ErrorOf(err).Code)
		require.Equal(t, StatusConfirmed, p.Status)
	})

	t.Run("OneAtATime", func(t *testing.T) {
		t.Parallel()
		p := confirmedPayment()
		_, err := p.RequestCancel("c2", "again", 0, []Cancel{{ID: "c1", Status: CancelPending}}, now)
		require.Equal(t, CodeCancelInProgress, ErrorOf(err).Code)
	})

	t.Run("TerminalRefuses", func(t *testing.T) {
		t.Parallel()
		p := readyPayment()
		p.Status = StatusFailed
		_, err := p.RequestCancel("c1", "why", 0, nil, now)
		require.Equal(t, CodeInvalidState, ErrorOf(err).Code)
	})
}

func TestApplyApproval(t *testing.T) {
	t.Parallel()

	t.Run("Keeps", func(t *testing.T) {
		t.Parallel()
		p := readyPayment()
		_, _ = p.RequestConfirm("pk_1", 15000, now)
		c := p.ApplyApproval(Approval{OrderID: p.OrderID, TotalAmount: 15000, BalanceAmount: 15000, Method: "카드"}, nil, "comp", now)
		require.Nil(t, c)
		require.Equal(t, StatusConfirmed, p.Status)
		require.Equal(t, int64(15000), p.BalanceAmount)
	})

	t.Run("AmountMismatchCompensates", func(t *testing.T) {
		t.Parallel()
		p := readyPayment()
		_, _ = p.RequestConfirm("pk_1", 15000, now)
		c := p.ApplyApproval(Approval{OrderID: p.OrderID, TotalAmount: 15500, BalanceAmount: 15500}, nil, "comp", now)
		require.NotNil(t, c)
		require.Equal(t, CancelCompensation, c.Kind)
		require.Equal(t, CancelPending, c.Status)
		require.Zero(t, c.Amount, "compensation refunds the whole approval")
		require.Equal(t, StatusCanceling, p.Status)
		require.Contains(t, p.FailureMessage, "15500")
	})

	t.Run("CurrencyMismatchCompensates", func(t *testing.T) {
		t.Parallel()
		p := readyPayment()
		_, _ = p.RequestConfirm("pk_1", 15000, now)
		c := p.ApplyApproval(Approval{Currency: "USD", TotalAmount: 15000, BalanceAmount: 15000}, nil, "comp", now)
		require.NotNil(t, c)
		require.Equal(t, CancelCompensation, c.Kind)
		require.Equal(t, StatusCanceling, p.Status)
		require.Contains(t, p.FailureMessage, "USD")
	})

	t.Run("AlreadyRefundedAtGateway", func(t *testing.T) {
		t.Parallel()
		p := readyPayment()
		_, _ = p.RequestConfirm("pk_1", 15000, now)
		waiting := &Cancel{ID: "c1", Status: CancelWaiting}
		c := p.ApplyApproval(Approval{OrderID: p.OrderID, TotalAmount: 15000, BalanceAmount: 0}, waiting, "comp", now)
		require.Same(t, waiting, c)
		require.Equal(t, CancelVoid, c.Status, "nothing left to refund")
		require.Equal(t, StatusCanceled, p.Status)
		require.Equal(t, int64(15000), p.CanceledAmount)

		p = readyPayment()
		_, _ = p.RequestConfirm("pk_1", 15000, now)
		require.Nil(t, p.ApplyApproval(Approval{OrderID: p.OrderID, TotalAmount: 15000, BalanceAmount: 9000}, nil, "comp", now))
		require.Equal(t, StatusPartiallyCanceled, p.Status)
	})

	t.Run("WaitingCancelRuns", func(t *testing.T) {
		t.Parallel()
		p := readyPayment()
		_, _ = p.RequestConfirm("pk_1", 15000, now)
		waiting := &Cancel{ID: "c1", Status: CancelWaiting}
		c := p.ApplyApproval(Approval{OrderID: p.OrderID, TotalAmount: 15000, BalanceAmount: 15000}, waiting, "comp", now)
		require.Same(t, waiting, c)
		require.Equal(t, CancelPending, c.Status)
		require.Equal(t, StatusCanceling, p.Status)
	})
}

func TestApplyCancelResult(t *testing.T) {
	t.Parallel()

	p := confirmedPayment()
	plan, err := p.RequestCancel("c1", "partial", 5000, nil, now)
	require.NoError(t, err)
	c := plan.Cancel
	p.ApplyCancelResult(&c, 10000, "tx1", now)
	require.Equal(t, StatusPartiallyCanceled, p.Status)
	require.Equal(t, int64(5000), c.CanceledAmount)
	require.Equal(t, int64(5000), p.CanceledAmount)

	plan, err = p.RequestCancel("c2", "rest", 0, nil, now)
	require.NoError(t, err)
	c = plan.Cancel
	p.ApplyCancelResult(&c, 0, "tx2", now)
	require.Equal(t, StatusCanceled, p.Status)
	require.Equal(t, int64(10000), c.CanceledAmount)
	require.Equal(t, int64(15000), p.CanceledAmount)
}

func TestApplyCancelRefusal(t *testing.T) {
	t.Parallel()

	p := confirmedPayment()
	plan, _ := p.RequestCancel("c1", "no", 0, nil, now)
	c := plan.Cancel
	p.ApplyCancelRefusal(&c, "NOT_CANCELABLE_PAYMENT", "nope", now)
	require.Equal(t, StatusConfirmed, p.Status)
	require.Equal(t, CancelFailed, c.Status)
}

func TestTransitionsTable(t *testing.T) {
	t.Parallel()
	require.True(t, CanTransition(StatusReady, StatusConfirming))
	// We said "no charge" and the gateway charged: its record wins.
	require.True(t, CanTransition(StatusFailed, StatusConfirmed))
	require.False(t, CanTransition(StatusFailed, StatusExpired))
	// Canceled on our word before any charge was seen, then charged: the
	// charge goes back by compensation. Nothing else leaves canceled.
	require.True(t, CanTransition(StatusCanceled, StatusCanceling))
	require.False(t, CanTransition(StatusCanceled, StatusConfirmed))
	require.False(t, CanTransition(StatusConfirmed, StatusReady))
	require.True(t, CanCancelTransition(CancelUnknown, CancelPending))
	require.False(t, CanCancelTransition(CancelDone, CancelPending))
	require.False(t, CanCancelTransition(CancelVoid, CancelPending))
	for from, tos := range transitions {
		require.True(t, from.Valid())
		for _, to := range tos {
			require.True(t, to.Valid(), "%s -> %s", from, to)
		}
	}
}

func TestValidateOrderID(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"abcdef", "ORDER_2026-11-21_0001", "a-b_c-", "0123456789012345678901234567890123456789012345678901234567890123"} {
		require.NoError(t, ValidateOrderID(ok), ok)
	}
	for _, bad := range []string{"", "abcde", "주문번호123456", "order 1234", "x'; drop table payments;--", "01234567890123456789012345678901234567890123456789012345678901234"} {
		require.Error(t, ValidateOrderID(bad), bad)
	}
}

// TestConfirmRules: AwaitsConfirm, ConfirmPending and CanRetry differ only
// where docs/design.md says they do (a canceling ready intent; a canceling
// payment's cancel).
func TestConfirmRules(t *testing.T) {
	approved := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		status                    Status
		approved                  bool
		awaits, pending, canRetry bool
	}{
		{StatusReady, false, false, false, false},
		{StatusConfirming, false, true, true, true},
		{StatusUnknown, false, true, true, true},
		{StatusUnknown, true, false, false, false},
		{StatusCanceling, false, true, false, true},
		{StatusCanceling, true, false, false, true},
		{StatusConfirmed, true, false, false, false},
		{StatusFailed, false, false, false, false},
		{StatusWaitingForDeposit, false, false, false, false},
	} {
		p := Payment{Status: tc.status}
		if tc.approved {
			p.ApprovedAt = &approved
		}
		name := fmt.Sprintf("%s/approved=%v", tc.status, tc.approved)
		if got := p.AwaitsConfirm(); got != tc.awaits {
			t.Errorf("%s: AwaitsConfirm = %v, want %v", name, got, tc.awaits)
		}
		if got := p.ConfirmPending(); got != tc.pending {
			t.Errorf("%s: ConfirmPending = %v, want %v", name, got, tc.pending)
		}
		if got := p.CanRetry(); got != tc.canRetry {
			t.Errorf("%s: CanRetry = %v, want %v", name, got, tc.canRetry)
		}
	}
}
