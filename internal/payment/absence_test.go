package payment

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// readyPortOne is a PortOne intent as the api creates it: its paymentId
// bound from the start.
func readyPortOne() Payment {
	p := readyPayment()
	p.Gateway = GatewayPortOne
	p.PaymentKey = DefaultPaymentKey(p.ID)
	p.StoredStatus = StatusReady
	return p
}

func TestIntentPaymentKey(t *testing.T) {
	t.Parallel()

	for _, tt := range []struct {
		name    string
		in      Intent
		wantErr string
		want    string
	}{
		{"TossMakesItsOwn", Intent{Gateway: GatewayToss}, "", ""},
		{"PortOneDefault", Intent{Gateway: GatewayPortOne}, "", "pay-p1"},
		{"PortOneGiven", Intent{Gateway: GatewayPortOne, PaymentKey: "pay-order-1"}, "", "pay-order-1"},
		{"TossRefused", Intent{Gateway: GatewayToss, PaymentKey: "pk_1"}, "only for a gateway", ""},
		{"BadCharacters", Intent{Gateway: GatewayPortOne, PaymentKey: "a/b"}, "printable ASCII", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			in := tt.in
			in.OrderID, in.OrderName, in.Amount = "order-1", "Book", 1000
			err := in.Validate()
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				require.Equal(t, KindInvalid, ErrorOf(err).Kind)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, in.PaymentKeyAtCreate("p1"))
		})
	}

	t.Run("RepeatWithoutKeyIsSame", func(t *testing.T) {
		t.Parallel()
		p := readyPortOne()
		in := Intent{OrderID: p.OrderID, OrderName: p.OrderName, Amount: p.Amount, Currency: p.Currency, Gateway: p.Gateway}
		require.True(t, in.Same(p), "a repeat that leaves the key to the api is the same intent")
		in.PaymentKey = "pay-other"
		require.False(t, in.Same(p))
	})
}

func TestRequestConfirmBoundKey(t *testing.T) {
	t.Parallel()

	p := readyPortOne()
	_, err := p.RequestConfirm("pay-someone-elses", p.Amount, now)
	require.Equal(t, CodePaymentKeyConflict, ErrorOf(err).Code, "another PortOne payment can never be booked for this order")
	require.Equal(t, StatusReady, p.Status)

	changed, err := p.RequestConfirm(p.PaymentKey, p.Amount, now)
	require.NoError(t, err)
	require.True(t, changed)
	require.Equal(t, StatusConfirming, p.Status)
}

func TestRequestCancelReady(t *testing.T) {
	t.Parallel()

	t.Run("TossVoidsAtOnce", func(t *testing.T) {
		t.Parallel()
		p := readyPayment()
		p.Gateway = GatewayToss
		plan, err := p.RequestCancel("c1", "changed mind", 0, nil, now)
		require.NoError(t, err)
		require.Equal(t, StatusCanceled, p.Status)
		require.Equal(t, CancelVoid, plan.Cancel.Status)
		require.False(t, plan.LookUp || plan.Enqueue)
	})

	t.Run("PortOneWaitsForALookup", func(t *testing.T) {
		t.Parallel()
		p := readyPortOne()
		plan, err := p.RequestCancel("c1", "changed mind", 0, nil, now)
		require.NoError(t, err)
		require.Equal(t, StatusCanceling, p.Status, "the customer may have paid already")
		require.Equal(t, CancelWaiting, plan.Cancel.Status)
		require.True(t, plan.LookUp)
		require.False(t, plan.Enqueue)
		require.True(t, p.AwaitsConfirm(), "no approval is known yet")
		require.NoError(t, p.CheckTransition())

		p.VoidUnpaid(&plan.Cancel, now)
		require.Equal(t, StatusCanceled, p.Status)
		require.Equal(t, CancelVoid, plan.Cancel.Status)
		require.True(t, p.RestsOnAbsence(), "a void on our side is provisional")
	})

	t.Run("PortOnePartialRefused", func(t *testing.T) {
		t.Parallel()
		p := readyPortOne()
		_, err := p.RequestCancel("c1", "part", 100, nil, now)
		require.Error(t, err)
		require.Equal(t, StatusReady, p.Status)
	})
}

func TestApplyUnwantedCharge(t *testing.T) {
	t.Parallel()

	for _, tt := range []struct {
		name       string
		status     Status
		balance    int64
		wantStatus Status
		wantComp   bool
	}{
		{"CanceledThenPaid", StatusCanceled, 15000, StatusCanceling, true},
		{"ExpiredThenPaid", StatusExpired, 15000, StatusCanceling, true},
		{"PaidAndRefundedAtTheGateway", StatusCanceled, 0, StatusCanceled, false},
		{"PaidPartlyRefunded", StatusFailed, 5000, StatusCanceling, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := readyPortOne()
			p.Status, p.StoredStatus = tt.status, tt.status
			comp := p.ApplyUnwantedCharge(Approval{TotalAmount: 15000, BalanceAmount: tt.balance}, "comp1", "why", now)
			require.Equal(t, tt.wantStatus, p.Status)
			require.NoError(t, p.CheckTransition())
			require.Equal(t, int64(15000), p.ApprovedAmount)
			require.Equal(t, tt.balance, p.BalanceAmount)
			require.Equal(t, 15000-tt.balance, p.CanceledAmount)
			if !tt.wantComp {
				require.Nil(t, comp)
				return
			}
			require.NotNil(t, comp)
			require.Equal(t, CancelCompensation, comp.Kind)
			require.Equal(t, CancelPending, comp.Status)
			require.Zero(t, comp.Amount, "all of it goes back")
			require.Equal(t, CodeChargeUnwanted, p.FailureCode)
		})
	}
}

func TestPlanRecheck(t *testing.T) {
	t.Parallel()
	r := Recheck{Window: 24 * time.Hour, First: 5 * time.Minute, MaxGap: 2 * time.Hour}

	t.Run("GuessedStateStartsAWindow", func(t *testing.T) {
		t.Parallel()
		p := readyPortOne()
		p.StoredStatus, p.Status = StatusConfirming, StatusExpired
		p.PlanRecheck(now, r)
		require.Equal(t, now.Add(24*time.Hour), *p.RecheckUntil)
		require.Equal(t, now.Add(5*time.Minute), *p.NextRecheckAt)

		// Saved again in the same status later: the window keeps running.
		p.StoredStatus = StatusExpired
		p.PlanRecheck(now.Add(time.Hour), r)
		require.Equal(t, now.Add(24*time.Hour), *p.RecheckUntil)
	})

	t.Run("ChargedOrTossHasNone", func(t *testing.T) {
		t.Parallel()
		toss := readyPayment()
		toss.Gateway, toss.Status = GatewayToss, StatusExpired
		toss.PlanRecheck(now, r)
		require.Nil(t, toss.RecheckUntil, "Toss charges only at our confirm: its expiry is the gateway's word")

		p := readyPortOne()
		until, next := now.Add(time.Hour), now
		p.StoredStatus, p.Status, p.RecheckUntil, p.NextRecheckAt = StatusExpired, StatusConfirmed, &until, &next
		p.ApprovedAt = &now
		p.PlanRecheck(now, r)
		require.Nil(t, p.RecheckUntil)
		require.Nil(t, p.NextRecheckAt)
	})

	t.Run("GapsGrowAndAreBounded", func(t *testing.T) {
		t.Parallel()
		require.Equal(t, now.Add(5*time.Minute), r.Next(now.Add(-time.Minute), now), "at least First")
		require.Equal(t, now.Add(30*time.Minute), r.Next(now.Add(-time.Hour), now), "half the age")
		require.Equal(t, now.Add(2*time.Hour), r.Next(now.Add(-20*time.Hour), now), "at most MaxGap")
	})
}
