package toss

import (
	"time"

	"github.com/payment-outbox/payment-outbox/internal/gateway"
)

// answers is the Toss classification table; docs/design.md transcribes it
// beside PortOne's (internal/gateway/portone).
var answers = gateway.Table{
	PaymentStatuses: map[string]gateway.Class{
		StatusDone:            gateway.ClassSuccess,
		StatusCanceled:        gateway.ClassSuccess,
		StatusPartialCanceled: gateway.ClassSuccess,
		// READY, IN_PROGRESS, WAITING_FOR_DEPOSIT, ABORTED and EXPIRED are
		// deliberately absent, so they read as unclear. A confirm or cancel
		// that returns 2xx with one of them did not do what we asked, but it
		// is not a definite refusal either: an IN_PROGRESS payment may still
		// be approved, and ABORTED after an approval could mean a concurrent
		// change. The relay looks the payment up and decides from the whole
		// Payment, not from this one word.
	},
	Codes: map[string]gateway.Class{
		"PROVIDER_ERROR":                    gateway.ClassTransient,
		"FAILED_INTERNAL_SYSTEM_PROCESSING": gateway.ClassTransient,
		"COMMON_ERROR":                      gateway.ClassTransient,
		"FAILED_REFUND_PROCESS":             gateway.ClassTransient,
		"FAILED_METHOD_HANDLING_CANCEL":     gateway.ClassTransient,
		// The key's first request is still running at the gateway; the
		// same key later replays its answer.
		"IDEMPOTENT_REQUEST_PROCESSING": gateway.ClassTransient,
		// The gateway refused a second cancel for the payment within about a
		// second without processing it; the same cancel later goes through.
		"FORBIDDEN_CONSECUTIVE_REQUEST": gateway.ClassTransient,

		"ALREADY_PROCESSED_PAYMENT":                 gateway.ClassUnclear,
		"ALREADY_CANCELED_PAYMENT":                  gateway.ClassUnclear,
		"UNKNOWN_PAYMENT_ERROR":                     gateway.ClassUnclear,
		"CARD_PROCESSING_ERROR":                     gateway.ClassUnclear,
		"FAILED_PAYMENT_INTERNAL_SYSTEM_PROCESSING": gateway.ClassUnclear,
		// The gateway's balance is not the refundableAmount we sent, so it
		// refunded nothing this time; but the balance moved, so our cancel
		// (an earlier attempt answered too late) or another one already
		// happened. Only a lookup says which. Not a refusal: retrying is
		// pointless, but failing the cancel could hide a refund that landed.
		"NOT_MATCHES_REFUNDABLE_AMOUNT": gateway.ClassUnclear,

		"BELOW_MINIMUM_AMOUNT": gateway.ClassRefused,
		"FDS_ERROR":            gateway.ClassRefused,

		"NOT_FOUND_PAYMENT_SESSION": gateway.ClassSessionExpired,

		"UNAUTHORIZED_KEY":            gateway.ClassMisconfigured,
		"INVALID_API_KEY":             gateway.ClassMisconfigured, // wins over the INVALID_ prefix
		"INCORRECT_BASIC_AUTH_FORMAT": gateway.ClassMisconfigured,
	},
	Prefixes: []gateway.PrefixRow{
		{Prefix: "REJECT_", Class: gateway.ClassRefused},
		{Prefix: "INVALID_", Class: gateway.ClassRefused},
		{Prefix: "EXCEED_", Class: gateway.ClassRefused},
		{Prefix: "NOT_CANCELABLE_", Class: gateway.ClassRefused},
	},
	Statuses: gateway.CommonStatuses,
	// FORBIDDEN_CONSECUTIVE_REQUEST is not one: it refuses this request,
	// unprocessed, because another cancel of the payment was taken up
	// within the second before. That other request (ours under an older
	// key, or staff's in the console) is done once the key rule's quiet
	// period has passed, so the same refusal replayed twice under a key is
	// a key stuck on a stored answer like any other (docs/design.md
	// section 6), where counting it as "still running" kept a cancel on it
	// for ever.
	StillRunning: map[string]bool{
		"IDEMPOTENT_REQUEST_PROCESSING": true,
	},
	// "멱등키는 처음 요청에 사용한 날부터 15일 간 유효합니다" (docs/design.md
	// cites the page).
	KeyRetention: KeyRetention,
}

// KeyRetention is how long Toss keeps an Idempotency-Key: 15 days from
// the first request under it.
const KeyRetention = 15 * 24 * time.Hour

// Classify reads one answer of the Toss API by the Toss table.
func Classify(r gateway.Result) gateway.Class {
	return answers.Classify(r)
}

// Classify implements relay.Gateway: the Toss table.
func (c *Client) Classify(r gateway.Result) gateway.Class { return answers.Classify(r) }

// StillRunning implements relay.Gateway: whether a Toss error code says a
// request under the key may still be running.
func (c *Client) StillRunning(code string) bool { return answers.StillRunning[code] }

// KeyRetention implements relay.Gateway: how long Toss keeps an
// Idempotency-Key (the table's, unless Config.KeyRetention overrides it).
func (c *Client) KeyRetention() time.Duration { return c.keyRetention }
