package portone

import (
	"time"

	"github.com/payment-outbox/payment-outbox/internal/gateway"
)

// The PortOne V2 error types the table names: each is the "type" of an error
// body, as PortOne's OpenAPI document and server SDKs list them for
// GET /payments/{paymentId}, POST /payments/{paymentId}/cancel and POST
// /payments/{paymentId}/confirm (ConfirmPaymentError), and the
// Idempotency-Key's own error (docs/design.md cites them).
const (
	CodeInvalidRequest                                 = "INVALID_REQUEST"
	CodeUnauthorized                                   = "UNAUTHORIZED"
	CodeForbidden                                      = "FORBIDDEN"
	CodePaymentNotFound                                = "PAYMENT_NOT_FOUND"
	CodePaymentNotPaid                                 = "PAYMENT_NOT_PAID"
	CodePaymentAlreadyCancelled                        = "PAYMENT_ALREADY_CANCELLED"
	CodeCancellableAmountConsistencyBroken             = "CANCELLABLE_AMOUNT_CONSISTENCY_BROKEN"
	CodeCancelAmountExceedsCancellableAmount           = "CANCEL_AMOUNT_EXCEEDS_CANCELLABLE_AMOUNT"
	CodeSumOfPartsExceedsCancelAmount                  = "SUM_OF_PARTS_EXCEEDS_CANCEL_AMOUNT"
	CodeCancelTaxFreeAmountExceedsCancellableTaxFree   = "CANCEL_TAX_FREE_AMOUNT_EXCEEDS_CANCELLABLE_TAX_FREE_AMOUNT"
	CodeCancelTaxAmountExceedsCancellableTaxAmount     = "CANCEL_TAX_AMOUNT_EXCEEDS_CANCELLABLE_TAX_AMOUNT"
	CodeNegativePromotionAdjustedCancelAmount          = "NEGATIVE_PROMOTION_ADJUSTED_CANCEL_AMOUNT"
	CodePromotionDiscountRetainOptionShouldNotBeChange = "PROMOTION_DISCOUNT_RETAIN_OPTION_SHOULD_NOT_BE_CHANGED"
	CodePgProvider                                     = "PG_PROVIDER"
	CodeIdempotencyOutstandingRequest                  = "IDEMPOTENCY_OUTSTANDING_REQUEST"
	// The manual confirm's own: 409 already paid, 409 the verification
	// parameters (totalAmount, currency, ...) differ from the authenticated
	// payment, 400 an invalid paymentToken.
	CodeAlreadyPaid         = "ALREADY_PAID"
	CodeInformationMismatch = "INFORMATION_MISMATCH"
	CodeInvalidPaymentToken = "INVALID_PAYMENT_TOKEN"
)

// answers is the PortOne classification table; docs/design.md transcribes
// it beside Toss's (internal/gateway/toss/classify.go).
var answers = gateway.Table{
	PaymentStatuses: map[string]gateway.Class{
		// PAID is success whatever its amount: the relay records the
		// approval and payment.ApplyApproval refunds one for another amount
		// or currency by a compensating cancel, as for Toss.
		StatusPaid:             gateway.ClassSuccess,
		StatusPartialCancelled: gateway.ClassSuccess,
		StatusCancelled:        gateway.ClassSuccess,
		// The customer's payment failed in the browser: a definite no.
		StatusFailed: gateway.ClassRefused,
		// Not paid yet: asked again until the relay's open deadline
		// (READY: the customer walked away, expired) or its retry budget
		// (a deposit or a PG's approval awaited, unknown).
		StatusReady:                gateway.ClassPending,
		StatusPayPending:           gateway.ClassPending,
		StatusPending:              gateway.ClassPending,
		StatusVirtualAccountIssued: gateway.ClassPending,
	},
	Codes: map[string]gateway.Class{
		// The PG answered with an error: a working PortOne relaying a
		// provider's trouble, like Toss's PROVIDER_ERROR. Retried under the
		// same key; if PortOne stored the answer, the key rule moves on.
		CodePgProvider: gateway.ClassTransient,
		// The key's first request is still running at PortOne.
		CodeIdempotencyOutstandingRequest: gateway.ClassTransient,

		// PortOne's cancellable amount is not the currentCancellableAmount
		// we sent: it cancelled nothing this time, but the balance moved, by
		// our own earlier attempt or another cancel. Only a lookup says
		// which (Toss's NOT_MATCHES_REFUNDABLE_AMOUNT).
		CodeCancellableAmountConsistencyBroken: gateway.ClassUnclear,
		// Already fully cancelled: perhaps by our own earlier attempt.
		CodePaymentAlreadyCancelled: gateway.ClassUnclear,
		// A manual confirm for a payment already paid: by our own earlier
		// confirm whose answer was lost and whose key PortOne no longer
		// replays, or by someone else. Only the record says for how much.
		CodeAlreadyPaid: gateway.ClassUnclear,

		CodeInvalidRequest:                                 gateway.ClassRefused,
		CodePaymentNotFound:                                gateway.ClassRefused,
		CodePaymentNotPaid:                                 gateway.ClassRefused,
		CodeCancelAmountExceedsCancellableAmount:           gateway.ClassRefused,
		CodeSumOfPartsExceedsCancelAmount:                  gateway.ClassRefused,
		CodeCancelTaxFreeAmountExceedsCancellableTaxFree:   gateway.ClassRefused,
		CodeCancelTaxAmountExceedsCancellableTaxAmount:     gateway.ClassRefused,
		CodeNegativePromotionAdjustedCancelAmount:          gateway.ClassRefused,
		CodePromotionDiscountRetainOptionShouldNotBeChange: gateway.ClassRefused,
		// Manual confirm: the customer authenticated another amount or
		// currency than the intent's, so PortOne charged nothing; and a
		// token PortOne does not take (wrong, or lapsed: PortOne's guide
		// warns that a confirm left waiting too long can fail, and
		// documents no other error for it). Our retries of a confirm that
		// did charge stay under its key and replay its answer, so neither
		// is the echo of our own charge.
		CodeInformationMismatch: gateway.ClassRefused,
		CodeInvalidPaymentToken: gateway.ClassRefused,

		// Our secret is wrong, or lacks the permission for the store: ours
		// to fix, never the customer's payment to fail.
		CodeUnauthorized: gateway.ClassMisconfigured,
		CodeForbidden:    gateway.ClassMisconfigured,
	},
	Statuses: gateway.CommonStatuses,
	StillRunning: map[string]bool{
		CodeIdempotencyOutstandingRequest: true,
	},
	// PortOne keeps a key's answer for 3 hours (its REST API introduction;
	// docs/design.md cites it).
	KeyRetention: KeyRetention,
}

// KeyRetention is how long PortOne keeps an Idempotency-Key: 3 hours.
const KeyRetention = 3 * time.Hour
