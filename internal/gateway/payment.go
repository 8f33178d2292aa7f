package gateway

import (
	"time"

	"github.com/payment-outbox/payment-outbox/internal/payment"
)

// Phase is where a gateway's record of a payment stands, in the relay's
// words: each gateway client maps its own status words to one, so the relay
// settles payments of every gateway by the same rules.
type Phase string

// The phases.
const (
	// PhaseUnknown: a status the client does not know. The relay settles
	// nothing from it.
	PhaseUnknown Phase = ""
	// PhaseOpen: not charged; the customer may still finish (Toss READY,
	// IN_PROGRESS; PortOne READY).
	PhaseOpen Phase = "open"
	// PhaseWaiting: underway but not charged yet, money may still arrive
	// (Toss WAITING_FOR_DEPOSIT; PortOne PAY_PENDING, VIRTUAL_ACCOUNT_ISSUED).
	PhaseWaiting Phase = "waiting"
	// PhaseCharged: charged, refunds (if any) already out of the balance
	// (Toss DONE, CANCELED, PARTIAL_CANCELED; PortOne PAID, CANCELLED,
	// PARTIAL_CANCELLED).
	PhaseCharged Phase = "charged"
	// PhaseFailed: will never be charged (Toss ABORTED; PortOne FAILED).
	PhaseFailed Phase = "failed"
	// PhaseExpired: the gateway's session is gone (Toss EXPIRED).
	PhaseExpired Phase = "expired"
)

// Payment is a gateway's record of one payment, as the relay reads it: what
// every gateway client converts its own record to (the fields are named
// after the Toss Payment object the outbox first spoke). Fields a gateway
// sends and this type does not name are ignored, so a gateway can add fields
// without breaking us.
type Payment struct {
	PaymentKey string
	OrderID    string
	OrderName  string
	// Status is the gateway's own word (DONE, PAID, ...), kept for the
	// attempt row and the classification table; Phase is what it means.
	Status             string
	Phase              Phase
	Method             string
	Currency           string
	LastTransactionKey string

	// TotalAmount is what the customer was charged; BalanceAmount is what is
	// still refundable after cancels.
	TotalAmount   int64
	BalanceAmount int64

	// RequestedAt and ApprovedAt keep the offset the gateway sent. They are
	// zero when the gateway sent null (approvedAt before approval) or a value
	// that does not parse: a timestamp is never a reason to doubt an answer.
	RequestedAt time.Time
	ApprovedAt  time.Time

	// VirtualAccount is the bank account the gateway issued for a payment
	// by bank transfer (Toss's virtualAccount, PortOne's
	// PaymentMethodVirtualAccount); nil for every other method.
	VirtualAccount *payment.VirtualAccount
	// AccountExpired is the gateway's own word that the virtual account
	// no longer takes a deposit (Toss's virtualAccount.expired).
	AccountExpired bool
	// Secret is Toss's Payment.secret, which its DEPOSIT_CALLBACK carries
	// for the receiver to check; empty for PortOne.
	Secret string

	// FailureReason is why a failed payment failed, in the gateway's words
	// (PortOne's failure.reason); empty when it gave none.
	FailureReason string

	Cancels []Cancel
}

// Cancel is one entry of a Payment's cancels: one refund the gateway performed
// (or attempted, see CancelStatus).
type Cancel struct {
	TransactionKey   string
	CancelReason     string
	CancelStatus     string
	CancelAmount     int64
	RefundableAmount int64
	CanceledAt       time.Time
	// Trigger is where the gateway says the refund came from, where it
	// says so (PortOne's PaymentCancellation.trigger: API, CONSOLE,
	// PORTONE_ADMIN, CHARGEBACK); empty for Toss, which does not.
	Trigger string
}

// TriggerAPI is the Trigger of a refund requested through the merchant's
// API, the only origin one of our cancels can have.
const TriggerAPI = "API"
