package payment

import (
	"strings"
	"testing"
	"time"
)

func TestResendFailedCancel(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	refused := func(kind CancelKind, status Status) (Payment, Cancel) {
		p := Payment{ID: "p", Status: status, StoredStatus: status, ApprovedAt: &now, ApprovedAmount: 16000, BalanceAmount: 16000}
		c := Cancel{ID: "c", Kind: kind, Status: CancelFailed, StoredStatus: CancelFailed,
			IdempotencyKey: CancelIdempotencyKey("c"), FailureCode: "NOT_CANCELABLE_PAYMENT", CompletedAt: &now}
		return p, c
	}

	p, c := refused(CancelCompensation, StatusUnknown)
	old, next, err := p.ResendFailedCancel(&c)
	if err != nil {
		t.Fatal(err)
	}
	if old == next || next != NextCancelIdempotencyKey("c", old) {
		t.Fatalf("keys %s → %s: want the next key", old, next)
	}
	if p.Status != StatusCanceling || c.Status != CancelPending || c.FailureCode != "" || c.CompletedAt != nil {
		t.Fatalf("got payment %s, cancel %s %q %v", p.Status, c.Status, c.FailureCode, c.CompletedAt)
	}
	if err := p.CheckTransition(); err != nil {
		t.Fatal(err)
	}
	if err := c.CheckTransition(); err != nil {
		t.Fatal("failed → pending is a legal cancel move:", err)
	}

	for _, tt := range []struct {
		name   string
		kind   CancelKind
		status Status
		cancel CancelStatus
		amount int64
		code   string
	}{
		{"CustomerCancelOnUnknown", CancelByCustomer, StatusUnknown, CancelFailed, 0, CodeInvalidState},
		{"Canceling", CancelCompensation, StatusCanceling, CancelFailed, 0, CodeInvalidState},
		{"NotRefused", CancelByCustomer, StatusConfirmed, CancelDone, 0, CodeInvalidState},
		{"MoreThanBalance", CancelByCustomer, StatusConfirmed, CancelFailed, 20000, CodeCancelExceeds},
	} {
		p, c := refused(tt.kind, tt.status)
		c.Status, c.Amount = tt.cancel, tt.amount
		if _, _, err := p.ResendFailedCancel(&c); err == nil || ErrorOf(err).Code != tt.code {
			t.Errorf("%s: got %v, want %s", tt.name, err, tt.code)
		} else if p.Status != tt.status || c.Status != tt.cancel {
			t.Errorf("%s: a refused resend changed the payment or cancel", tt.name)
		}
	}
}

func TestAcknowledgeEndsWithAMove(t *testing.T) {
	t.Parallel()
	now := time.Now()
	p := Payment{Status: StatusConfirmed, StoredStatus: StatusConfirmed}
	if err := p.Acknowledge(now); ErrorOf(err).Code != CodeInvalidState {
		t.Fatalf("only unknown is acknowledged: %v", err)
	}
	p = Payment{Status: StatusUnknown, StoredStatus: StatusUnknown}
	if err := p.Acknowledge(now); err != nil || !p.Acknowledged() {
		t.Fatal(err)
	}
	p.EndStaleAcknowledgement()
	if !p.Acknowledged() {
		t.Fatal("a save in the same status keeps it")
	}
	p.Status = StatusConfirmed
	p.EndStaleAcknowledgement()
	if p.Acknowledged() {
		t.Fatal("a move ends it")
	}
}

func TestValidateReason(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"", "   ", strings.Repeat("x", OperatorReasonMaxLen+1), "a\x00b"} {
		if ValidateReason(bad) == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if err := ValidateReason("refunded by phone,\nticket 4411"); err != nil {
		t.Error(err)
	}
}
