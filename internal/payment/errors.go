package payment

import (
	"errors"
	"fmt"
)

// Kind groups errors by what the caller should do about them. Each kind maps to
// one HTTP status in exactly one place (internal/httpapi).
type Kind string

// The error kinds.
const (
	KindInvalid       Kind = "invalid"       // the request is malformed
	KindNotFound      Kind = "not_found"     // no such payment
	KindConflict      Kind = "conflict"      // contradicts what was already recorded
	KindUnprocessable Kind = "unprocessable" // well-formed but not acceptable for this payment
	KindInternal      Kind = "internal"
)

// Stable machine-readable codes. Clients branch on these, so they never change.
const (
	CodeInvalidRequest     = "invalid_request"
	CodeNotFound           = "payment_not_found"
	CodeOrderConflict      = "order_conflict"
	CodePaymentKeyConflict = "payment_key_conflict"
	CodeInvalidState       = "invalid_state"
	CodeAmountMismatch     = "amount_mismatch"
	CodeCancelInProgress   = "cancel_in_progress"
	CodeCancelExceeds      = "cancel_amount_exceeds_balance"
	// CodeRefundAccountRequired: a refund of a deposited virtual-account
	// payment needs the customer's refund account, and none was given.
	CodeRefundAccountRequired = "refund_account_required"
	// CodePaymentUnknown: the payment's last gateway operation has no known
	// outcome yet; the relay is asking the gateway, and a cancel must wait
	// for its answer.
	CodePaymentUnknown = "payment_unknown"
	// CodeStaleWrite: a save found the row changed since it was read, or the
	// change is not a legal move; the caller's decision rests on facts that
	// no longer hold.
	CodeStaleWrite = "stale_write"
	CodeInternal   = "internal"
	// CodeChargeUnwanted is a payment's failure code when the gateway
	// charged it after the shop had canceled it, or after we had recorded
	// it failed or expired with its cancel voided: the charge is refunded by
	// a compensating cancel (Payment.ApplyUnwantedCharge).
	CodeChargeUnwanted = "charge_unwanted"
	// CodeJobNotFound: no outbox job has the id an operator named (River
	// deletes finished jobs after a while).
	CodeJobNotFound = "job_not_found"
)

// Error is a domain error: a kind for the transport, a stable code for
// machines and a message for people.
type Error struct {
	Kind    Kind
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Errorf returns a domain error with a formatted message.
func Errorf(kind Kind, code, format string, args ...any) *Error {
	return &Error{Kind: kind, Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorOf unwraps err to a domain error; any other error is internal, and its
// text is not exposed.
func ErrorOf(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Kind: KindInternal, Code: CodeInternal, Message: "internal error"}
}
