package payment

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestSettlePlan: every case of the lookup's decision table, from our
// record and the gateway's, without a database.
func TestSettlePlan(t *testing.T) {
	t.Parallel()
	approvedAt := now.Add(-time.Hour)
	due := now.Add(-2 * time.Hour)
	grace := time.Hour
	account := &VirtualAccount{Bank: "88", AccountNumber: "110-000-000", Holder: "Shop", DueDate: due}
	charge := func(total, balance int64) Approval {
		return Approval{OrderID: "order-1", TotalAmount: total, BalanceAmount: balance}
	}
	pay := func(status Status, approved bool, balance int64) Payment {
		p := readyPayment()
		p.Status, p.Gateway = status, GatewayPortOne
		if approved {
			p.ApprovedAt, p.ApprovedAmount, p.BalanceAmount = &approvedAt, 15000, balance
			p.CanceledAmount = 15000 - balance
		}
		return p
	}
	waitingForDeposit := func(status Status) Payment {
		p := pay(status, false, 0)
		p.VirtualAccount = account
		return p
	}
	cancel := func(status CancelStatus, kind CancelKind, amount int64) Cancel {
		return Cancel{ID: "c-" + string(status), PaymentID: readyPayment().ID, Kind: kind, Status: status, Amount: amount}
	}
	waiting := cancel(CancelWaiting, CancelByCustomer, 0)
	pending := cancel(CancelPending, CancelByCustomer, 5000)
	givenUp := cancel(CancelUnknown, CancelByCustomer, 5000)
	voided := cancel(CancelVoid, CancelByCustomer, 0)

	for _, tc := range []struct {
		name    string
		p       Payment
		rec     Record
		cancels []Cancel
		want    SettlePlan
		// waiting and cancel name the cancel the plan points at, if any.
		waiting, cancel string
	}{
		{name: "DepositAccountClosing", p: waitingForDeposit(StatusCanceling), rec: Record{Approved: true, Approval: charge(15000, 15000)},
			cancels: []Cancel{pending}, want: SettlePlan{}},
		{name: "DepositArrived", p: waitingForDeposit(StatusWaitingForDeposit), rec: Record{Approved: true, Approval: charge(15000, 15000)},
			want: SettlePlan{Step: SettleApproval, Approval: charge(15000, 15000), Note: "the customer's deposit arrived"}},
		{name: "DepositAccountExpired", p: waitingForDeposit(StatusWaitingForDeposit), rec: Record{Unpaid: true, AccountExpired: true},
			want: SettlePlan{Step: SettleExpireDeposit, Code: "DEPOSIT_EXPIRED",
				Message: "no deposit arrived by the virtual account's due date " + due.Format(time.RFC3339) + "; the gateway shows none"}},
		{name: "DepositOverdue", p: waitingForDeposit(StatusWaitingForDeposit), rec: Record{Unpaid: true},
			want: SettlePlan{Step: SettleExpireDeposit, Code: "DEPOSIT_EXPIRED",
				Message: "no deposit arrived by the virtual account's due date " + due.Format(time.RFC3339) + "; the gateway shows none"}},
		{name: "DepositAborted", p: waitingForDeposit(StatusWaitingForDeposit), rec: Record{Aborted: true},
			want: SettlePlan{Step: SettleExpireDeposit, Code: "DEPOSIT_EXPIRED",
				Message: "no deposit arrived by the virtual account's due date " + due.Format(time.RFC3339) + "; the gateway shows none"}},
		{name: "DepositNotYetDue", p: func() Payment {
			p := waitingForDeposit(StatusWaitingForDeposit)
			p.VirtualAccount = &VirtualAccount{DueDate: now.Add(time.Hour)}
			return p
		}(), rec: Record{Unpaid: true}, want: SettlePlan{}},
		{name: "ConfirmFindsAccountIssued", p: pay(StatusUnknown, false, 0), rec: Record{Unpaid: true, Account: account},
			cancels: []Cancel{waiting}, want: SettlePlan{Step: SettleAccountIssued}, waiting: waiting.ID},
		{name: "ReadyIntentCancelPaid", p: pay(StatusCanceling, false, 0), rec: Record{Approved: true, Approval: charge(15000, 15000)},
			cancels: []Cancel{waiting}, want: SettlePlan{Step: SettleApproval, Approval: charge(15000, 15000)}, waiting: waiting.ID},
		{name: "ReadyIntentCancelUnpaid", p: pay(StatusCanceling, false, 0), rec: Record{Unpaid: true},
			cancels: []Cancel{waiting}, want: SettlePlan{Step: SettleVoidUnpaid,
				Note: "the gateway shows nothing paid; the cancel is void (looked up again for late money)"}, waiting: waiting.ID},
		{name: "ReadyIntentCancelStatusUnknown", p: pay(StatusCanceling, false, 0), rec: Record{},
			cancels: []Cancel{waiting}, want: SettlePlan{}},
		{name: "ConfirmApproved", p: pay(StatusConfirming, false, 0), rec: Record{Approved: true, Approval: charge(15000, 15000)},
			cancels: []Cancel{waiting}, want: SettlePlan{Step: SettleApproval, Approval: charge(15000, 15000)}, waiting: waiting.ID},
		{name: "ConfirmAborted", p: pay(StatusUnknown, false, 0), rec: Record{Aborted: true, Unpaid: true},
			want: SettlePlan{Step: SettleRefusal, Status: StatusFailed, Code: "ABORTED", Message: "the gateway aborted the payment"}},
		{name: "ConfirmExpired", p: pay(StatusConfirming, false, 0), rec: Record{Expired: true, Unpaid: true},
			cancels: []Cancel{waiting}, want: SettlePlan{Step: SettleRefusal, Status: StatusExpired, Code: "EXPIRED",
				Message: "the payment session expired at the gateway"}, waiting: waiting.ID},
		{name: "ConfirmStillOpen", p: pay(StatusConfirming, false, 0), rec: Record{Unpaid: true}, want: SettlePlan{}},
		{name: "ReadyPaidNeverConfirmed", p: pay(StatusReady, false, 0), rec: Record{Approved: true, Approval: charge(15000, 15000)},
			want: SettlePlan{Step: SettleApproval, Approval: charge(15000, 15000),
				Note: "the gateway shows the intent paid, though no confirm came; adopted the charge"}},
		{name: "ReadyUnpaid", p: pay(StatusReady, false, 0), rec: Record{Unpaid: true}, want: SettlePlan{}},
		{name: "CanceledThenCharged", p: pay(StatusCanceled, false, 0), rec: Record{Approved: true, Approval: charge(15000, 15000)},
			cancels: []Cancel{voided}, want: SettlePlan{Step: SettleUnwantedCharge, Approval: charge(15000, 15000),
				Note: "the gateway charged a payment the shop had canceled before any charge was seen"}},
		{name: "FailedChargedAfterAll", p: pay(StatusFailed, false, 0), rec: Record{Approved: true, Approval: charge(15000, 15000)},
			want: SettlePlan{Step: SettleApproval, Approval: charge(15000, 15000)}},
		{name: "ExpiredChargedAfterShopCanceled", p: pay(StatusExpired, false, 0), rec: Record{Approved: true, Approval: charge(15000, 15000)},
			cancels: []Cancel{voided}, want: SettlePlan{Step: SettleUnwantedCharge, Approval: charge(15000, 15000),
				Note: "the gateway charged a payment we had recorded expired after the shop canceled it"}},
		{name: "CancelDone", p: pay(StatusCanceling, true, 15000), rec: Record{Approved: true, Approval: charge(15000, 10000), TransactionKey: "tx-1"},
			cancels: []Cancel{pending}, want: SettlePlan{Step: SettleCancelResult, Balance: 10000, TransactionKey: "tx-1"}, cancel: pending.ID},
		{name: "CancelBalanceUnexplained", p: pay(StatusCanceling, true, 15000), rec: Record{Approved: true, Approval: charge(15000, 12000)},
			cancels: []Cancel{pending}, want: SettlePlan{Step: SettleUnexplained, Balance: 12000}, cancel: pending.ID},
		{name: "GivenUpCancelNotRefunded", p: pay(StatusUnknown, true, 15000), rec: Record{Approved: true, Approval: charge(15000, 15000)},
			cancels: []Cancel{givenUp}, want: SettlePlan{Step: SettleResend, Balance: 15000}, cancel: givenUp.ID},
		{name: "PendingCancelStillAtIt", p: pay(StatusCanceling, true, 15000), rec: Record{Approved: true, Approval: charge(15000, 15000)},
			cancels: []Cancel{pending}, want: SettlePlan{}},
		{name: "RefusedCompensationRefundedElsewhere", p: pay(StatusUnknown, true, 15000), rec: Record{Approved: true, Approval: charge(15000, 0)},
			want: SettlePlan{Step: SettleAdoptRefund, Balance: 0,
				Note: "gateway shows a refund the relay did not make: balance 0, ours was 15000"}},
		{name: "RefusedCompensationPartlyRefundedElsewhere", p: pay(StatusUnknown, true, 15000), rec: Record{Approved: true, Approval: charge(15000, 4000)},
			want: SettlePlan{Step: SettleAdoptBalance, Balance: 4000,
				Note: "gateway shows a refund the relay did not make: balance 4000, ours was 15000; the rest of the compensation is still owed"}},
		{name: "RefundedElsewhere", p: pay(StatusConfirmed, true, 15000), rec: Record{Approved: true, Approval: charge(15000, 5000)},
			want: SettlePlan{Step: SettleAdoptRefund, Balance: 5000,
				Note: "gateway shows a refund the relay did not make: balance 5000, ours was 15000"}},
		{name: "PartlyCanceledRefundedElsewhere", p: pay(StatusPartiallyCanceled, true, 10000), rec: Record{Approved: true, Approval: charge(15000, 0)},
			want: SettlePlan{Step: SettleAdoptRefund, Balance: 0,
				Note: "gateway shows a refund the relay did not make: balance 0, ours was 10000"}},
		{name: "ConfirmedAgrees", p: pay(StatusConfirmed, true, 15000), rec: Record{Approved: true, Approval: charge(15000, 15000)}, want: SettlePlan{}},
		{name: "CanceledAgrees", p: pay(StatusCanceled, true, 0), rec: Record{Approved: true, Approval: charge(15000, 0)}, want: SettlePlan{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cancels := append([]Cancel(nil), tc.cancels...)
			before := tc.p
			got := tc.p.SettlePlan(tc.rec, cancels, now, grace)
			require.Equal(t, before, tc.p, "deciding changes nothing")
			require.Equal(t, tc.cancels, cancels, "deciding changes no cancel")
			if tc.waiting == "" {
				require.Nil(t, got.Waiting)
			} else {
				require.NotNil(t, got.Waiting)
				require.Equal(t, tc.waiting, got.Waiting.ID)
				require.Same(t, WaitingCancel(cancels), got.Waiting, "the plan points into the cancels given")
			}
			if tc.cancel == "" {
				require.Nil(t, got.Cancel)
			} else {
				require.NotNil(t, got.Cancel)
				require.Equal(t, tc.cancel, got.Cancel.ID)
			}
			got.Waiting, got.Cancel = nil, nil
			require.Equal(t, tc.want, got)
		})
	}
}
