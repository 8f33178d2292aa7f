package chaos

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/payment-outbox/payment-outbox/internal/gatewaysim"
)

func TestCancelIDOfKey(t *testing.T) {
	const id = "01a22b07-31af-79bd-9360-733a3288a7ed"
	for _, key := range []string{"cancel-" + id, "cancel-" + id + "-2", "cancel-" + id + "-17"} {
		got, ok := cancelIDOfKey(key)
		require.True(t, ok, key)
		require.Equal(t, id, got)
	}
	for _, key := range []string{
		"", "cancel-", "confirm-" + id + "-1", "cancel-" + id + "-1", "cancel-" + id + "-02",
		"cancel-" + id + "-x", "cancel-" + id + "x", "cancel-not-a-uuid-but-thirty-six-chars!", "cancel-fault-2",
	} {
		_, ok := cancelIDOfKey(key)
		require.False(t, ok, key)
	}
}

const (
	payID    = "01a22b07-0000-7000-8000-000000000001"
	partial  = "01a22b07-0000-7000-8000-0000000000c1"
	whole    = "01a22b07-0000-7000-8000-0000000000c2"
	stranger = "01a22b07-0000-7000-8000-0000000000c9"
)

// moneyFixture is a payment of 10000 with a partial cancel of 3000 and a
// whole cancel of the rest, both done, and the gateway's ledger agreeing.
func moneyFixture() (*state, map[string]gatewaysim.LedgerEntry) {
	at := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	p := &ourPayment{id: payID, status: "canceled", paymentKey: "pk_1", amount: 10000, balance: 0, canceledAmount: 10000}
	c1 := &ourCancel{id: partial, paymentID: payID, kind: "customer", status: "done", key: "cancel-" + partial, amount: 3000, canceledAmount: 3000}
	c2 := &ourCancel{id: whole, paymentID: payID, kind: "customer", status: "done", key: "cancel-" + whole + "-2", canceledAmount: 7000}
	p.cancels = []*ourCancel{c1, c2}
	st := &state{
		payments:    map[string]*ourPayment{payID: p},
		cancels:     map[string]*ourCancel{partial: c1, whole: c2},
		paymentJobs: map[string][]string{},
		cancelJobs:  map[string][]string{},
	}
	gw := map[string]gatewaysim.LedgerEntry{"pk_1": {
		PaymentKey: "pk_1", Status: "CANCELED", TotalAmount: 10000, BalanceAmount: 0, Approvals: 1,
		Refunds: []gatewaysim.Refund{
			{Amount: 3000, IdempotencyKey: "cancel-" + partial, At: at},
			{Amount: 7000, IdempotencyKey: "cancel-" + whole + "-2", At: at.Add(time.Second)},
		},
	}}
	return st, gw
}

func violationsOf(st *state, gw map[string]gatewaysim.LedgerEntry) (*Report, string) {
	rep := &Report{}
	checkMoney(st, gw, rep)
	return rep, strings.Join(rep.Violations, "\n")
}

func TestCheckMoneyAgreeing(t *testing.T) {
	rep, v := violationsOf(moneyFixture())
	require.Empty(t, v)
	require.Equal(t, CheckCounts{Refunds: 2, Cancels: 2}, rep.Checked)
}

func TestCheckMoneyFindsHoles(t *testing.T) {
	t.Run("a cancel refunded twice, under its first and its next key", func(t *testing.T) {
		st, gw := moneyFixture()
		e := gw["pk_1"]
		e.Refunds = append(e.Refunds[:1:1], gatewaysim.Refund{Amount: 3000, IdempotencyKey: "cancel-" + partial + "-2", At: e.Refunds[0].At.Add(time.Millisecond)}, e.Refunds[1])
		gw["pk_1"] = e
		_, v := violationsOf(st, gw)
		require.Contains(t, v, "cancel "+partial+" (customer, done, asked 3000")
		require.Contains(t, v, "refunded 2 times")
	})
	t.Run("a partial cancel refunded more than it asked", func(t *testing.T) {
		st, gw := moneyFixture()
		gw["pk_1"].Refunds[0].Amount = 3500
		_, v := violationsOf(st, gw)
		require.Contains(t, v, "was refunded 3500")
		require.Contains(t, v, "not the 3000 it asked")
	})
	t.Run("a whole cancel refunded other than the balance then", func(t *testing.T) {
		st, gw := moneyFixture()
		gw["pk_1"].Refunds[1].Amount = 6000
		_, v := violationsOf(st, gw)
		require.Contains(t, v, "not the balance of 7000 it had then")
	})
	t.Run("done without a refund, and a refund for a cancel not done", func(t *testing.T) {
		st, gw := moneyFixture()
		st.cancels[whole].status = "pending"
		e := gw["pk_1"]
		e.Refunds = e.Refunds[1:]
		gw["pk_1"] = e
		_, v := violationsOf(st, gw)
		require.Contains(t, v, "cancel "+partial+" (customer, done, asked 3000, refunded 3000")
		require.Contains(t, v, "is done, but the gateway refunded nothing for it")
		require.Contains(t, v, "is pending, yet the gateway refunded 7000")
	})
	t.Run("refunds under keys that are not ours or name no cancel of ours", func(t *testing.T) {
		st, gw := moneyFixture()
		e := gw["pk_1"]
		e.Refunds = append(e.Refunds, gatewaysim.Refund{Amount: 1, IdempotencyKey: "", At: e.Refunds[1].At},
			gatewaysim.Refund{Amount: 1, IdempotencyKey: "cancel-" + stranger, At: e.Refunds[1].At})
		gw["pk_1"] = e
		_, v := violationsOf(st, gw)
		require.Contains(t, v, `under key "", which is no cancel key of ours`)
		require.Contains(t, v, "for a cancel of which we have no row")
	})
	t.Run("a payment left unknown excuses its open cancels from matching, not its refunds", func(t *testing.T) {
		st, gw := moneyFixture()
		st.payments[payID].status = "unknown"
		st.cancels[whole].status = "unknown"
		rep, v := violationsOf(st, gw)
		require.Empty(t, v)
		require.Equal(t, 1, rep.Checked.Unsettled)
	})
}

func TestCheckMoneyConsoleRefunds(t *testing.T) {
	t.Run("a console refund between our cancels lowers the balance the whole cancel is held to", func(t *testing.T) {
		st, gw := moneyFixture()
		e := gw["pk_1"]
		console := gatewaysim.Refund{Amount: 2000, Console: true, At: e.Refunds[0].At.Add(time.Millisecond)}
		e.Refunds = []gatewaysim.Refund{e.Refunds[0], console, e.Refunds[1]}
		e.Refunds[2].Amount = 5000
		gw["pk_1"] = e
		st.cancels[whole].canceledAmount = 5000
		rep, v := violationsOf(st, gw)
		require.Empty(t, v)
		require.Equal(t, 1, rep.Unasked.ConsoleRefunds)
		require.EqualValues(t, 2000, rep.Unasked.ConsoleRefundAmount)
		require.Equal(t, 2, rep.Checked.Refunds, "the console's refund is no cancel of ours")
	})
	t.Run("a whole cancel that refunded the console's share again", func(t *testing.T) {
		st, gw := moneyFixture()
		e := gw["pk_1"]
		e.Refunds = []gatewaysim.Refund{e.Refunds[0], {Amount: 2000, Console: true, At: e.Refunds[0].At.Add(time.Millisecond)}, e.Refunds[1]}
		gw["pk_1"] = e
		_, v := violationsOf(st, gw)
		require.Contains(t, v, "not the balance of 5000 it had then")
		require.Contains(t, v, "the gateway refunded 12000 in all, more than our cancels asked (8000) plus the console's refunds (2000)")
	})
	t.Run("a Toss console refund of the whole cancel's amount taken for it", func(t *testing.T) {
		st, gw := moneyFixture()
		e := gw["pk_1"]
		e.Gateway = gatewaysim.GatewayToss
		e.Refunds[1] = gatewaysim.Refund{Amount: 7000, Console: true, TransactionKey: "tx-console", At: e.Refunds[1].At}
		gw["pk_1"] = e
		st.cancels[whole].transactionKey = "tx-console"
		rep, v := violationsOf(st, gw)
		require.Empty(t, v)
		require.Equal(t, 1, rep.Unasked.ConsoleRefundsTakenAsOurs)

		// Not for PortOne, whose cancellations say who made them, nor
		// under another transaction key or amount.
		e.Gateway = gatewaysim.GatewayPortOne
		gw["pk_1"] = e
		_, v = violationsOf(st, gw)
		require.Contains(t, v, "is done, but the gateway refunded nothing for it")
		e.Gateway = gatewaysim.GatewayToss
		gw["pk_1"] = e
		st.cancels[whole].transactionKey = "tx-other"
		_, v = violationsOf(st, gw)
		require.Contains(t, v, "is done, but the gateway refunded nothing for it")
	})
}

func TestCheckLedger(t *testing.T) {
	const neverConfirmed = "01a22b07-0000-7000-8000-000000000002"
	ledgerFixture := func() (*state, map[string]gatewaysim.LedgerEntry) {
		st, gw := moneyFixture()
		st.payments[payID].gateway, st.payments[payID].orderID = gatewayToss, "order-1"
		e := gw["pk_1"]
		e.Gateway, e.OrderID = gatewayToss, "order-1"
		gw["pk_1"] = e
		// Paid in PortOne's browser SDK and never confirmed with us: our
		// row has no paymentKey, only the order.
		st.payments[neverConfirmed] = &ourPayment{id: neverConfirmed, status: "ready", orderID: "order-2", gateway: gatewayPortOne, amount: 5000, balance: 5000}
		gw["pay-2"] = gatewaysim.LedgerEntry{Gateway: gatewayPortOne, PaymentKey: "pay-2", OrderID: "order-2", Status: "PAID", TotalAmount: 5000, BalanceAmount: 5000, Approvals: 1}
		return st, gw
	}
	ledgerViolations := func(st *state, gw map[string]gatewaysim.LedgerEntry) (*Report, string) {
		rep := &Report{}
		checkLedger(st, gw, rep)
		return rep, strings.Join(rep.Violations, "\n")
	}

	t.Run("charged at the gateway, ready here", func(t *testing.T) {
		rep, v := ledgerViolations(ledgerFixture())
		require.Equal(t, 1, rep.Unasked.ChargedUnsettled)
		require.Contains(t, v, "payment "+neverConfirmed+" (portone, order order-2, paymentKey pay-2): charged at the gateway and not settled here: the gateway says PAID holding 5000, we say ready")
		require.NotContains(t, v, payID)
	})
	t.Run("adopted", func(t *testing.T) {
		st, gw := ledgerFixture()
		p := st.payments[neverConfirmed]
		p.status, p.paymentKey = "confirmed", "pay-2"
		rep, v := ledgerViolations(st, gw)
		require.Empty(t, v)
		require.Zero(t, rep.Unasked.ChargedUnsettled)
	})
	t.Run("canceled here without the refund there", func(t *testing.T) {
		st, gw := ledgerFixture()
		st.payments[neverConfirmed].status = "canceled"
		rep, v := ledgerViolations(st, gw)
		require.Equal(t, 1, rep.Unasked.ChargedUnsettled)
		require.Contains(t, v, "we say canceled")
	})
	t.Run("a console refund we did not adopt", func(t *testing.T) {
		st, gw := ledgerFixture()
		st.payments[neverConfirmed].status, st.payments[neverConfirmed].paymentKey = "confirmed", "pay-2"
		e := gw["pay-2"]
		e.Status, e.BalanceAmount = "PARTIAL_CANCELLED", 3000
		e.Refunds = []gatewaysim.Refund{{Amount: 2000, Console: true}}
		gw["pay-2"] = e
		_, v := ledgerViolations(st, gw)
		require.Contains(t, v, "we say confirmed, balance 5000, canceled 0; the gateway says PARTIAL_CANCELLED, balance 3000, canceled 2000 (refunds: 2000 in the console")
	})
	t.Run("charged and no row of ours", func(t *testing.T) {
		st, gw := ledgerFixture()
		delete(st.payments, neverConfirmed)
		rep, v := ledgerViolations(st, gw)
		require.Equal(t, 1, rep.Unasked.ChargedUnsettled)
		require.Contains(t, v, "paymentKey pay-2 (portone, order order-2): the gateway charged it (PAID, balance 5000) and no row of ours holds it")
	})
	t.Run("money claimed that was never charged", func(t *testing.T) {
		st, gw := ledgerFixture()
		st.payments[neverConfirmed].status = "confirmed"
		e := gw["pay-2"]
		e.Status, e.Approvals, e.BalanceAmount = "READY", 0, 0
		gw["pay-2"] = e
		_, v := ledgerViolations(st, gw)
		require.Contains(t, v, "we say confirmed (balance 5000), the gateway never charged it (READY)")
	})
}

func TestCheckStuck(t *testing.T) {
	st, _ := moneyFixture()
	st.payments["p-unknown"] = &ourPayment{id: "p-unknown", status: "unknown", gateway: gatewayToss, orderID: "order-u"}
	rep := &Report{}
	checkStuck(st, rep)
	require.Equal(t, []string{"payment p-unknown (toss, order order-u) is stuck in unknown after the drain"}, rep.Violations)
}

func TestCheckOrphans(t *testing.T) {
	st, _ := moneyFixture()
	const confirming, canceling, unknownListed, unknownHidden = "p-confirming", "p-canceling", "p-unknown-listed", "p-unknown-hidden"
	for _, id := range []string{confirming, canceling, unknownListed, unknownHidden} {
		status := strings.Split(id, "-")[1]
		st.payments[id] = &ourPayment{id: id, status: status}
	}
	st.paymentJobs[confirming] = []string{"payment_confirm #1"}
	// canceling with its cancel pending but no job anywhere: both orphans.
	c := &ourCancel{id: "c-pending", paymentID: canceling, kind: "customer", status: "pending", key: "cancel-c-pending"}
	st.cancels[c.id] = c
	st.payments[canceling].cancels = []*ourCancel{c}
	// A cancel waiting on a listed unknown payment is excused; one waiting
	// on a settled payment is an orphan.
	st.cancels["c-waiting-unknown"] = &ourCancel{id: "c-waiting-unknown", paymentID: unknownListed, status: "waiting"}
	st.cancels["c-waiting-lost"] = &ourCancel{id: "c-waiting-lost", paymentID: payID, status: "waiting"}

	rep := &Report{}
	checkOrphans(st, map[string]bool{unknownListed: true}, rep)
	v := strings.Join(rep.Violations, "\n")
	require.Contains(t, v, "payment p-canceling is canceling and no live job will move it")
	require.Contains(t, v, "cancel c-pending (customer, pending")
	require.Contains(t, v, "payment p-unknown-hidden is unknown, has no live job, and the attention list does not show it")
	require.Contains(t, v, "cancel c-waiting-lost")
	require.NotContains(t, v, "p-confirming")
	require.NotContains(t, v, "c-waiting-unknown")
	require.Equal(t, CheckCounts{Owed: 7, WithJob: 1, Listed: 2, Orphans: 4}, rep.Checked)
}
