package gateway

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestClassify(t *testing.T) {
	t.Parallel()

	errNet := errors.New("dial tcp: connection refused")
	code := func(status int, c string) Result { return Result{HTTPStatus: status, Code: c, Message: "m"} }
	bare := func(status int) Result {
		return Result{HTTPStatus: status, Err: fmt.Errorf("HTTP %d without an error code", status)}
	}
	paid := func(status string) Result {
		return Result{HTTPStatus: 200, Payment: &Payment{PaymentKey: "pk", Status: status}}
	}

	tests := []struct {
		name string
		r    Result
		want Class
	}{
		// 2xx with a Payment: by its status.
		{"Done", paid(StatusDone), ClassSuccess},
		{"Canceled", paid(StatusCanceled), ClassSuccess},
		{"PartialCanceled", paid(StatusPartialCanceled), ClassSuccess},
		{"Ready", paid(StatusReady), ClassUnclear},
		{"InProgress", paid(StatusInProgress), ClassUnclear},
		{"WaitingForDeposit", paid(StatusWaitingForDeposit), ClassUnclear},
		{"Aborted", paid(StatusAborted), ClassUnclear},
		{"Expired", paid(StatusExpired), ClassUnclear},
		{"UnknownPaymentStatus", paid("SOMETHING_NEW"), ClassUnclear},
		{"Created201", Result{HTTPStatus: 201, Payment: &Payment{PaymentKey: "pk", Status: StatusDone}}, ClassSuccess},

		// No usable answer.
		{"NetworkError", Result{Err: errNet}, ClassTransient},
		{"ZeroResult", Result{}, ClassTransient},
		{"SuccessWithGarbage", Result{HTTPStatus: 200, Err: errors.New("error decoding payment")}, ClassUnclear},
		{"NotSent", Result{Err: fmt.Errorf("error validating confirm request: %w", ErrNotSent)}, ClassMisconfigured},

		// Transient codes.
		{"PROVIDER_ERROR", code(400, "PROVIDER_ERROR"), ClassTransient},
		{"FAILED_INTERNAL_SYSTEM_PROCESSING", code(500, "FAILED_INTERNAL_SYSTEM_PROCESSING"), ClassTransient},
		{"COMMON_ERROR", code(400, "COMMON_ERROR"), ClassTransient},
		{"FAILED_REFUND_PROCESS", code(500, "FAILED_REFUND_PROCESS"), ClassTransient},
		{"FAILED_METHOD_HANDLING_CANCEL", code(500, "FAILED_METHOD_HANDLING_CANCEL"), ClassTransient},
		{"IDEMPOTENT_REQUEST_PROCESSING", code(409, "IDEMPOTENT_REQUEST_PROCESSING"), ClassTransient},
		{"FORBIDDEN_CONSECUTIVE_REQUEST", code(403, "FORBIDDEN_CONSECUTIVE_REQUEST"), ClassTransient},
		{"FORBIDDEN_CONSECUTIVE_REQUEST400", code(400, "FORBIDDEN_CONSECUTIVE_REQUEST"), ClassTransient},

		// Unclear codes, whatever their status.
		{"ALREADY_PROCESSED_PAYMENT", code(400, "ALREADY_PROCESSED_PAYMENT"), ClassUnclear},
		{"ALREADY_CANCELED_PAYMENT", code(400, "ALREADY_CANCELED_PAYMENT"), ClassUnclear},
		{"UNKNOWN_PAYMENT_ERROR", code(500, "UNKNOWN_PAYMENT_ERROR"), ClassUnclear},
		{"CARD_PROCESSING_ERROR", code(400, "CARD_PROCESSING_ERROR"), ClassUnclear},
		{"FAILED_PAYMENT_INTERNAL_SYSTEM_PROCESSING", code(500, "FAILED_PAYMENT_INTERNAL_SYSTEM_PROCESSING"), ClassUnclear},
		{"NOT_MATCHES_REFUNDABLE_AMOUNT", code(400, "NOT_MATCHES_REFUNDABLE_AMOUNT"), ClassUnclear},
		// An exact row, so it does not fall to "other 4xx" (refused), which
		// would give up on a cancel that may already have landed.
		{"NOT_MATCHES_REFUNDABLE_AMOUNT403", code(403, "NOT_MATCHES_REFUNDABLE_AMOUNT"), ClassUnclear},

		// Refusals: exact codes and prefixes.
		{"BELOW_MINIMUM_AMOUNT", code(400, "BELOW_MINIMUM_AMOUNT"), ClassRefused},
		{"FDS_ERROR", code(400, "FDS_ERROR"), ClassRefused},
		{"REJECT_CARD_COMPANY", code(403, "REJECT_CARD_COMPANY"), ClassRefused},
		{"REJECT_CARD_PAYMENT", code(400, "REJECT_CARD_PAYMENT"), ClassRefused},
		{"REJECT_ACCOUNT_PAYMENT", code(400, "REJECT_ACCOUNT_PAYMENT"), ClassRefused},
		{"INVALID_CARD_EXPIRATION", code(400, "INVALID_CARD_EXPIRATION"), ClassRefused},
		{"INVALID_STOPPED_CARD", code(400, "INVALID_STOPPED_CARD"), ClassRefused},
		{"INVALID_REQUEST", code(400, "INVALID_REQUEST"), ClassRefused},
		{"EXCEED_MAX_DAILY_PAYMENT_COUNT", code(400, "EXCEED_MAX_DAILY_PAYMENT_COUNT"), ClassRefused},
		{"EXCEED_CANCEL_AMOUNT_DISCOUNT_AMOUNT", code(400, "EXCEED_CANCEL_AMOUNT_DISCOUNT_AMOUNT"), ClassRefused},
		{"NOT_CANCELABLE_AMOUNT", code(403, "NOT_CANCELABLE_AMOUNT"), ClassRefused},
		{"NOT_CANCELABLE_PAYMENT", code(403, "NOT_CANCELABLE_PAYMENT"), ClassRefused},
		{"PrefixBeatsStatus5xx", code(500, "REJECT_SOMETHING"), ClassRefused},
		{"PrefixIsAPrefix", code(400, "XINVALID_THING"), ClassRefused}, // via "other 4xx", not the prefix
		{"PrefixNotAt5xx", code(500, "XINVALID_THING"), ClassTransient},

		// Session expired.
		{"NOT_FOUND_PAYMENT_SESSION", code(404, "NOT_FOUND_PAYMENT_SESSION"), ClassSessionExpired},

		// Misconfigured: exact codes win over the INVALID_ prefix.
		{"UNAUTHORIZED_KEY", code(401, "UNAUTHORIZED_KEY"), ClassMisconfigured},
		{"INVALID_API_KEY", code(400, "INVALID_API_KEY"), ClassMisconfigured},
		{"INCORRECT_BASIC_AUTH_FORMAT", code(403, "INCORRECT_BASIC_AUTH_FORMAT"), ClassMisconfigured},

		// Unknown codes fall back to the status.
		{"UnknownCode400", code(400, "NOT_FOUND_PAYMENT"), ClassRefused},
		{"UnknownCode401", code(401, "SOMETHING_ABOUT_KEYS"), ClassMisconfigured},
		{"UnknownCode404", code(404, "NOT_FOUND_PAYMENT"), ClassRefused},
		{"UnknownCode429", code(429, "TOO_MANY_REQUESTS"), ClassTransient},
		{"UnknownCode500", code(500, "SOMETHING_BROKE"), ClassTransient},
		{"UnknownCode503", code(503, "MAINTENANCE"), ClassTransient},

		// Bare statuses (no {code, message} body).
		{"Bare302", bare(302), ClassMisconfigured},
		{"Bare400", bare(400), ClassRefused},
		{"Bare401", bare(401), ClassMisconfigured},
		{"Bare403", bare(403), ClassRefused},
		{"Bare404", bare(404), ClassRefused},
		{"Bare408", bare(408), ClassTransient},
		{"Bare409", bare(409), ClassRefused},
		{"Bare429", bare(429), ClassTransient},
		{"Bare500", bare(500), ClassTransient},
		{"Bare502", bare(502), ClassTransient},
		{"Bare503", bare(503), ClassTransient},
		{"Bare504", bare(504), ClassTransient},
		{"Bare100", bare(100), ClassUnclear},
		{"Bare600", bare(600), ClassUnclear},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, Classify(tt.r))
		})
	}

	// Every row of the table is exercised above, so a row added without a
	// test fails here.
	t.Run("Coverage", func(t *testing.T) {
		t.Parallel()
		tested := map[string]bool{}
		for _, tt := range tests {
			tested[tt.r.Code] = true
			if tt.r.Payment != nil {
				tested[tt.r.Payment.Status] = true
			}
		}
		for c := range answers.Codes {
			require.True(t, tested[c], "code %s has no test", c)
		}
		for s := range answers.PaymentStatuses {
			require.True(t, tested[s], "payment status %s has no test", s)
		}
		for _, row := range answers.Prefixes {
			found := false
			for c := range tested {
				if strings.HasPrefix(c, row.Prefix) {
					if _, exact := answers.Codes[c]; !exact {
						found = true
					}
				}
			}
			require.True(t, found, "prefix %s has no test", row.Prefix)
		}
		for _, row := range answers.Statuses {
			found := false
			for _, tt := range tests {
				if tt.r.Code == "" && tt.r.Payment == nil && tt.r.HTTPStatus >= row.Lo && tt.r.HTTPStatus <= row.Hi {
					found = true
				}
			}
			require.True(t, found, "status row %d-%d has no test", row.Lo, row.Hi)
		}
	})
}
