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
