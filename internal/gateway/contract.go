// Package gateway is the contract between the relay and the payment
// gateways, and the vocabulary every gateway client speaks: the Result of one
// call, the answer classes and the Table that maps a gateway's answers to
// them, the Phase a gateway's record is in, the neutral Payment, Cancel and
// Transaction types, the requests (ConfirmRequest, CancelRequest) and the key
// rule (KeyAnswer, KeyAbandonable).
//
// It holds no client. Each gateway is its own package beside it
// (internal/gateway/toss, internal/gateway/portone) that converts its wire
// format to these types and declares its own Table; the HTTP plumbing they
// share is internal/gateway/httpcall. This package imports none of them
// (docs/design.md section 13, "Adding a third gateway").
package gateway

import (
	"errors"
	"fmt"

	"github.com/payment-outbox/payment-outbox/internal/payment"
)

// ErrNotSent is wrapped by Result.Err when a client refused to send a
// request because it was malformed for reasons of our own making (no
// Idempotency-Key on a POST, an empty paymentKey or reason, a non-positive
// confirm amount). It is always a bug on our side: the gateway was never
// called, and Classify reads it as ClassMisconfigured.
var ErrNotSent = errors.New("request not sent")

// ErrAmountsRefused is wrapped by Result.Err when the client refused to send
// a cancel because of the payment's amounts: no positive refundable balance
// (nothing left to refund), or a cancel for more than it. The gateway was
// never called; nothing in our configuration is wrong, so Classify reads it
// as ClassRefused and the relay fails the cancel through the domain
// (payment.Cancel.Misfit), never as misconfigured.
var ErrAmountsRefused = errors.New("request not sent: the payment's amounts do not allow it")

// ConfirmRequest is what a confirm is about: the payment the customer
// authenticated (or paid, for PortOne), for exactly this amount.
type ConfirmRequest struct {
	PaymentKey string
	OrderID    string
	Amount     int64
	// Currency is the intent's currency. Toss's confirm takes none (its
	// card confirm is in KRW); PortOne's verification compares it.
	Currency string
	// PaymentToken is PortOne's paymentToken in manual confirm; empty
	// otherwise. Toss takes none.
	PaymentToken payment.Token
}

// CancelRequest is the body of a cancel.
type CancelRequest struct {
	// Reason is required by the gateway.
	Reason string
	// Amount is the amount to refund; 0 refunds the whole balance.
	Amount int64
	// RefundableAmount is the balance our records say the gateway holds
	// before this cancel. It is required: the gateway refunds nothing and
	// answers NOT_MATCHES_REFUNDABLE_AMOUNT when its balance differs, so a
	// cancel retried under a new key after an earlier one did land cannot
	// refund twice.
	RefundableAmount int64
	// RefundAccount is the customer's account a refund of a deposited
	// virtual-account payment goes to (Toss's refundReceiveAccount,
	// PortOne's refundAccount); nil for every other payment.
	RefundAccount *payment.RefundAccount
	// Unpaid says the cancel closes a virtual account nothing was
	// deposited into: it refunds nothing, so it carries no amounts (Toss
	// cancels the WAITING_FOR_DEPOSIT payment; PortOne closes the account,
	// POST /payments/{id}/virtual-account/close).
	Unpaid bool
}

// AmountsRefused is the Result of a request a client refused to send for
// the payment's amounts (ErrAmountsRefused); every gateway client uses it.
func AmountsRefused(op payment.Operation, err error) Result {
	return Result{Err: fmt.Errorf("error validating %s request: %w: %w", op, err, ErrAmountsRefused)}
}
