package payment

import (
	"strings"
	"testing"
	"time"
)

func TestVirtualAccountTransitions(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		from, to Status
		ok       bool
	}{
		{StatusConfirming, StatusWaitingForDeposit, true},
		{StatusUnknown, StatusWaitingForDeposit, true},
		{StatusWaitingForDeposit, StatusConfirmed, true},
		{StatusWaitingForDeposit, StatusExpired, true},
		{StatusWaitingForDeposit, StatusCanceling, true},
		{StatusWaitingForDeposit, StatusCanceled, true},
		{StatusCanceling, StatusWaitingForDeposit, true},
		{StatusWaitingForDeposit, StatusUnknown, true},
		{StatusWaitingForDeposit, StatusFailed, false},
		{StatusReady, StatusWaitingForDeposit, false},
		{StatusConfirmed, StatusWaitingForDeposit, false},
	} {
		if got := CanTransition(tc.from, tc.to); got != tc.ok {
			t.Errorf("CanTransition(%s, %s) = %v, want %v", tc.from, tc.to, got, tc.ok)
		}
	}
	for _, s := range AttentionStatuses() {
		if s == StatusWaitingForDeposit {
			t.Error("waiting_for_deposit must not be an attention status")
		}
	}
	if StatusWaitingForDeposit.Terminal() || !StatusWaitingForDeposit.Valid() {
		t.Error("waiting_for_deposit is a valid, non-terminal state")
	}
}

func TestRequestCancelTo(t *testing.T) {
	t.Parallel()
	now := time.Now()
	acct := &VirtualAccount{Bank: "88", AccountNumber: "79019639679511", DueDate: now.Add(time.Hour)}
	good := &RefundAccount{Bank: "88", AccountNumber: "11012345678", HolderName: "김토스"}
	for _, tc := range []struct {
		name     string
		p        Payment
		refund   *RefundAccount
		wantCode string
		want     Status
	}{
		{"card with an account", Payment{Status: StatusConfirmed, BalanceAmount: 100, ApprovedAt: &now}, good, CodeInvalidRequest, ""},
		{"deposited without one", Payment{Status: StatusConfirmed, BalanceAmount: 100, ApprovedAt: &now, VirtualAccount: acct}, nil, CodeRefundAccountRequired, ""},
		{"deposited with a bad one", Payment{Status: StatusConfirmed, BalanceAmount: 100, ApprovedAt: &now, VirtualAccount: acct},
			&RefundAccount{Bank: "88", AccountNumber: "110-12345", HolderName: "김토스"}, CodeInvalidRequest, ""},
		{"deposited with one", Payment{Status: StatusConfirmed, BalanceAmount: 100, ApprovedAt: &now, VirtualAccount: acct}, good, "", StatusCanceling},
		{"waiting with one", Payment{Status: StatusWaitingForDeposit, Amount: 100, VirtualAccount: acct}, good, CodeInvalidRequest, ""},
		{"waiting closes", Payment{Status: StatusWaitingForDeposit, Amount: 100, VirtualAccount: acct}, nil, "", StatusCanceling},
	} {
		p := tc.p
		before := p.Status
		plan, err := p.RequestCancelTo("c1", "asked", 0, tc.refund, nil, now)
		if tc.wantCode != "" {
			if ErrorOf(err).Code != tc.wantCode || p.Status != before {
				t.Errorf("%s: err %v, status %s; want code %s and nothing changed", tc.name, err, p.Status, tc.wantCode)
			}
			continue
		}
		if err != nil || p.Status != tc.want || !plan.Enqueue {
			t.Errorf("%s: err %v, status %s, enqueue %v", tc.name, err, p.Status, plan.Enqueue)
		}
		if tc.refund != nil && (plan.Cancel.RefundLast4 != "5678" || plan.Cancel.RefundAccount == nil) {
			t.Errorf("%s: refund account not kept on the cancel", tc.name)
		}
	}
}

// TestWrongDepositHeld: a deposit of another amount is not kept, and its
// compensation is never sent without the customer's refund account: it is
// held (failed, refund_account_required) with the payment in unknown; a
// plain resend or a cancel without the account is refused; the account
// sends it; a card payment's compensation is not held.
func TestWrongDepositHeld(t *testing.T) {
	t.Parallel()
	now := time.Now()
	good := RefundAccount{Bank: "88", AccountNumber: "11012345678", HolderName: "김토스"}
	waiting := func() Payment {
		return Payment{ID: "p1", Status: StatusWaitingForDeposit, StoredStatus: StatusWaitingForDeposit, Amount: 15000, Gateway: GatewayToss,
			VirtualAccount: &VirtualAccount{Bank: "88", AccountNumber: "79019639679511", DueDate: now.Add(time.Hour)}}
	}
	p := waiting()
	c := p.ApplyApproval(Approval{TotalAmount: 1000, BalanceAmount: 1000, ApprovedAt: now}, nil, "c1", now)
	if c == nil || c.Kind != CancelCompensation || c.Status != CancelFailed || c.FailureCode != CodeRefundAccountRequired {
		t.Fatalf("compensation %+v: want held, failed with %s", c, CodeRefundAccountRequired)
	}
	if p.Status != StatusUnknown || p.FailureCode != CodeRefundAccountRequired || !p.WaitsForRefundAccount() {
		t.Fatalf("payment %s %s: want unknown with %s", p.Status, p.FailureCode, CodeRefundAccountRequired)
	}
	if err := p.CheckTransition(); err != nil {
		t.Fatalf("waiting_for_deposit → unknown must be legal: %v", err)
	}
	if r := AttentionReason(p, c, nil); !strings.Contains(r, CodeRefundAccountRequired) {
		t.Errorf("attention reason %q does not name %s", r, CodeRefundAccountRequired)
	}

	held := *c
	held.StoredStatus = CancelFailed
	q := p
	q.StoredStatus = StatusUnknown
	if _, _, err := q.ResendFailedCancel(&held); ErrorOf(err).Code != CodeRefundAccountRequired || q.Status != StatusUnknown {
		t.Errorf("a resend without the account: err %v, status %s; want refused, nothing changed", err, q.Status)
	}
	if _, err := q.RequestCancelTo("c2", "asked", 0, nil, nil, now); ErrorOf(err).Code != CodeRefundAccountRequired || q.Status != StatusUnknown {
		t.Errorf("a cancel without the account: err %v; want %s", err, CodeRefundAccountRequired)
	}
	bad := good
	bad.AccountNumber = "110-1234"
	if _, _, err := q.ResendFailedCancelTo(&held, bad); ErrorOf(err).Kind != KindInvalid || q.Status != StatusUnknown || held.RefundAccount != nil {
		t.Errorf("a bad account: err %v; want invalid, nothing changed", err)
	}
	if plan, err := q.RequestCancelTo("c2", "asked", 0, &good, nil, now); err != nil || !plan.SendHeld || q.Status != StatusUnknown {
		t.Errorf("a cancel with the account: plan %+v, err %v; want the held compensation sent", plan, err)
	}
	if _, err := q.RequestCancelTo("c2", "asked", 500, &good, nil, now); ErrorOf(err).Kind != KindUnprocessable {
		t.Errorf("a partial cancel of a deposit that cannot be kept: err %v; want unprocessable", err)
	}
	old, next, err := q.ResendFailedCancelTo(&held, good)
	if err != nil || old == next || held.Status != CancelPending || held.RefundAccount == nil || held.RefundLast4 != "5678" {
		t.Fatalf("resend to the account: %s → %s, err %v, cancel %+v", old, next, err, held)
	}
	if q.Status != StatusCanceling || q.FailureCode != "approval_mismatch" {
		t.Errorf("payment %s %s: want canceling, approval_mismatch", q.Status, q.FailureCode)
	}

	card := Payment{ID: "p2", Status: StatusConfirming, Amount: 15000, Gateway: GatewayToss}
	c = card.ApplyApproval(Approval{TotalAmount: 1000, BalanceAmount: 1000, ApprovedAt: now}, nil, "c3", now)
	if c.Status != CancelPending || card.Status != StatusCanceling {
		t.Errorf("a card's compensation is sent at once: cancel %s, payment %s", c.Status, card.Status)
	}
}

func TestDepositSchedule(t *testing.T) {
	t.Parallel()
	s := DefaultDepositSchedule
	due := time.Date(2026, 1, 4, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		now, want time.Time
	}{
		{due.Add(-5 * time.Hour), due.Add(-4 * time.Hour)},
		{due.Add(-90 * time.Minute), due.Add(-time.Hour)},
		{due.Add(-30 * time.Minute), due.Add(-25 * time.Minute)},
		{due.Add(30 * time.Minute), due.Add(35 * time.Minute)},
		{due.Add(2 * time.Hour), due.Add(3 * time.Hour)},
	} {
		if got := s.Next(due, tc.now); !got.Equal(tc.want) {
			t.Errorf("Next(due, %s) = %s, want %s", tc.now, got, tc.want)
		}
	}
}
