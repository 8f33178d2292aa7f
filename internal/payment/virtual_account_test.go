package payment

import (
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
		{StatusWaitingForDeposit, StatusUnknown, false},
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
