package gateway

import (
	"errors"
	"strings"
	"time"
)

// Class is how the relay reads one gateway answer: what it may conclude and
// what it does next. The values are recorded on attempt rows, so they never
// change meaning.
type Class string

// The answer classes. See "How the relay reads answers" in docs/design.md.
const (
	// ClassSuccess: a 2xx with a Payment that was charged (Toss's DONE,
	// CANCELED, PARTIAL_CANCELED; PortOne's PAID, CANCELLED,
	// PARTIAL_CANCELLED), or a performed cancel. The relay records the
	// outcome and checks the amount.
	ClassSuccess Class = "success"
	// ClassTransient: no usable answer, or the gateway said "try again". The
	// relay retries with the same Idempotency-Key, with backoff.
	ClassTransient Class = "transient"
	// ClassUnclear: the gateway may or may not have done the work. The relay
	// looks the payment up and takes the gateway's word.
	ClassUnclear Class = "unclear"
	// ClassRefused: a definite refusal. The relay records the failure and
	// does not retry.
	ClassRefused Class = "refused"
	// ClassSessionExpired: the customer's authentication is older than the
	// gateway's confirm window (NOT_FOUND_PAYMENT_SESSION).
	ClassSessionExpired Class = "session_expired"
	// ClassMisconfigured: our side is wrong (keys, base URL, a request the
	// client refused to send). The relay retries later and alerts; it never
	// fails the customer's payment for our mistake.
	ClassMisconfigured Class = "misconfigured"
	// ClassPending: the gateway's record shows a payment the customer has
	// not finished paying for (PortOne's READY, PAY_PENDING,
	// VIRTUAL_ACCOUNT_ISSUED). Only a gateway whose confirm is a lookup
	// answers it. The relay asks again with backoff: a payment still not
	// started past the confirm deadline is expired, anything else still
	// pending when the retry budget is spent is unknown.
	ClassPending Class = "pending"
)

// Classes returns every answer class, in the order of the design doc's
// table: the one list the metrics and the console export.
func Classes() []Class {
	return []Class{ClassSuccess, ClassTransient, ClassUnclear, ClassRefused, ClassSessionExpired,
		ClassMisconfigured, ClassPending}
}

// PrefixRow classifies every code that starts with Prefix.
type PrefixRow struct {
	Prefix string
	Class  Class
}

// StatusRow classifies an HTTP status in [Lo, Hi] when the answer carries no
// code the table knows.
type StatusRow struct {
	Lo, Hi int
	Class  Class
}

// Table is one gateway's answer classification: the one place that decides
// what that gateway's answers mean (STYLE habit 4). Each gateway package
// declares one; Classify only walks it. docs/design.md transcribes them
// side by side.
type Table struct {
	// PaymentStatuses classifies a 2xx carrying a Payment, by the gateway's
	// own status word; a status not listed is unclear.
	PaymentStatuses map[string]Class
	// Codes classifies exact error codes. They win over prefixes and statuses.
	Codes map[string]Class
	// Prefixes are tried in order when no exact code matched.
	Prefixes []PrefixRow
	// Statuses are tried in order when no code matched, or there was none;
	// first match wins. A status no row covers is unclear.
	Statuses []StatusRow
	// StillRunning are the codes that say a request under the
	// Idempotency-Key may still be in progress at the gateway, so the key
	// rule never abandons a key on them (KeyAnswer.StillRunning).
	StillRunning map[string]bool
	// KeyRetention is how long the gateway keeps an Idempotency-Key's
	// first answer, from the first request sent under it. A key older
	// than that protects nothing: a request under it is a fresh one, so
	// the relay never relies on it replaying (docs/design.md, "Key
	// retention").
	KeyRetention time.Duration
}

// CommonStatuses are the HTTP status rows both gateways share: what an
// answer without a code the table knows means, whoever sent it.
var CommonStatuses = []StatusRow{
	// No response arrived (network error, timeout): the request may or
	// may not have reached the gateway, and a retry under the same key
	// replays whatever it did.
	{0, 0, ClassTransient},
	// A 2xx whose body is not a usable Payment: the gateway may have done
	// the work, so only a lookup can tell.
	{200, 299, ClassUnclear},
	// The clients do not follow redirects; neither gateway API sends one,
	// so a redirect means our base URL points somewhere else.
	{300, 399, ClassMisconfigured},
	// A 401 is about our credentials whatever code (or none) it carries.
	{401, 401, ClassMisconfigured},
	// A request timeout (typically from a proxy) and rate limiting say
	// "not now", not "no".
	{408, 408, ClassTransient},
	{429, 429, ClassTransient},
	{400, 499, ClassRefused},
	{500, 599, ClassTransient},
}

// Classify reads one Result. A Payment is classified by its status, an error
// body by its code (exact, then prefix), and everything else, including codes
// the table does not know, by HTTP status. A request the client refused to
// send for our configuration (ErrNotSent) is our bug, so it is misconfigured
// rather than retried as transient forever; one it refused for the payment's
// amounts (ErrAmountsRefused) is a refusal, never misconfigured: nothing of
// ours needs fixing, and the cancel fails through the domain instead.
func (t *Table) Classify(r Result) Class {
	switch {
	case r.Payment != nil:
		if c, ok := t.PaymentStatuses[r.Payment.Status]; ok {
			return c
		}
		return ClassUnclear
	case r.Err != nil && errors.Is(r.Err, ErrAmountsRefused):
		return ClassRefused
	case r.Err != nil && errors.Is(r.Err, ErrNotSent):
		return ClassMisconfigured
	case r.Code != "":
		if c, ok := t.Codes[r.Code]; ok {
			return c
		}
		for _, row := range t.Prefixes {
			if strings.HasPrefix(r.Code, row.Prefix) {
				return row.Class
			}
		}
	}
	for _, row := range t.Statuses {
		if r.HTTPStatus >= row.Lo && r.HTTPStatus <= row.Hi {
			return row.Class
		}
	}
	// Only an impossible status (1xx, 6xx+) gets here; nothing is known, so
	// ask the gateway.
	return ClassUnclear
}
