package toss

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/payment-outbox/payment-outbox/internal/gateway"
)

func TestClassify(t *testing.T) {
	t.Parallel()

	errNet := errors.New("dial tcp: connection refused")
	code := func(status int, c string) gateway.Result {
		return gateway.Result{HTTPStatus: status, Code: c, Message: "m"}
	}
	bare := func(status int) gateway.Result {
		return gateway.Result{HTTPStatus: status, Err: fmt.Errorf("HTTP %d without an error code", status)}
	}
	paid := func(status string) gateway.Result {
		return gateway.Result{HTTPStatus: 200, Payment: &gateway.Payment{PaymentKey: "pk", Status: status}}
	}

	tests := []struct {
		name string
		r    gateway.Result
		want gateway.Class
	}{
		// 2xx with a Payment: by its status.
		{"Done", paid(StatusDone), gateway.ClassSuccess},
		{"Canceled", paid(StatusCanceled), gateway.ClassSuccess},
		{"PartialCanceled", paid(StatusPartialCanceled), gateway.ClassSuccess},
		{"Ready", paid(StatusReady), gateway.ClassUnclear},
		{"InProgress", paid(StatusInProgress), gateway.ClassUnclear},
		{"WaitingForDeposit", paid(StatusWaitingForDeposit), gateway.ClassUnclear},
		{"Aborted", paid(StatusAborted), gateway.ClassUnclear},
		{"Expired", paid(StatusExpired), gateway.ClassUnclear},
		{"UnknownPaymentStatus", paid("SOMETHING_NEW"), gateway.ClassUnclear},
		{"Created201", gateway.Result{HTTPStatus: 201, Payment: &gateway.Payment{PaymentKey: "pk", Status: StatusDone}}, gateway.ClassSuccess},

		// No usable answer.
		{"NetworkError", gateway.Result{Err: errNet}, gateway.ClassTransient},
		{"ZeroResult", gateway.Result{}, gateway.ClassTransient},
		{"SuccessWithGarbage", gateway.Result{HTTPStatus: 200, Err: errors.New("error decoding payment")}, gateway.ClassUnclear},
		{"NotSent", gateway.Result{Err: fmt.Errorf("error validating confirm request: %w", gateway.ErrNotSent)}, gateway.ClassMisconfigured},

		// Transient codes.
		{"PROVIDER_ERROR", code(400, "PROVIDER_ERROR"), gateway.ClassTransient},
		{"FAILED_INTERNAL_SYSTEM_PROCESSING", code(500, "FAILED_INTERNAL_SYSTEM_PROCESSING"), gateway.ClassTransient},
		{"COMMON_ERROR", code(400, "COMMON_ERROR"), gateway.ClassTransient},
		{"FAILED_REFUND_PROCESS", code(500, "FAILED_REFUND_PROCESS"), gateway.ClassTransient},
		{"FAILED_METHOD_HANDLING_CANCEL", code(500, "FAILED_METHOD_HANDLING_CANCEL"), gateway.ClassTransient},
		{"IDEMPOTENT_REQUEST_PROCESSING", code(409, "IDEMPOTENT_REQUEST_PROCESSING"), gateway.ClassTransient},
		{"FORBIDDEN_CONSECUTIVE_REQUEST", code(403, "FORBIDDEN_CONSECUTIVE_REQUEST"), gateway.ClassTransient},
		{"FORBIDDEN_CONSECUTIVE_REQUEST400", code(400, "FORBIDDEN_CONSECUTIVE_REQUEST"), gateway.ClassTransient},

		// Unclear codes, whatever their status.
		{"ALREADY_PROCESSED_PAYMENT", code(400, "ALREADY_PROCESSED_PAYMENT"), gateway.ClassUnclear},
		{"ALREADY_CANCELED_PAYMENT", code(400, "ALREADY_CANCELED_PAYMENT"), gateway.ClassUnclear},
		{"UNKNOWN_PAYMENT_ERROR", code(500, "UNKNOWN_PAYMENT_ERROR"), gateway.ClassUnclear},
		{"CARD_PROCESSING_ERROR", code(400, "CARD_PROCESSING_ERROR"), gateway.ClassUnclear},
		{"FAILED_PAYMENT_INTERNAL_SYSTEM_PROCESSING", code(500, "FAILED_PAYMENT_INTERNAL_SYSTEM_PROCESSING"), gateway.ClassUnclear},
		{"NOT_MATCHES_REFUNDABLE_AMOUNT", code(400, "NOT_MATCHES_REFUNDABLE_AMOUNT"), gateway.ClassUnclear},
		// An exact row, so it does not fall to "other 4xx" (refused), which
		// would give up on a cancel that may already have landed.
		{"NOT_MATCHES_REFUNDABLE_AMOUNT403", code(403, "NOT_MATCHES_REFUNDABLE_AMOUNT"), gateway.ClassUnclear},

		// Refusals: exact codes and prefixes.
		{"BELOW_MINIMUM_AMOUNT", code(400, "BELOW_MINIMUM_AMOUNT"), gateway.ClassRefused},
		{"FDS_ERROR", code(400, "FDS_ERROR"), gateway.ClassRefused},
		{"REJECT_CARD_COMPANY", code(403, "REJECT_CARD_COMPANY"), gateway.ClassRefused},
		{"REJECT_CARD_PAYMENT", code(400, "REJECT_CARD_PAYMENT"), gateway.ClassRefused},
		{"REJECT_ACCOUNT_PAYMENT", code(400, "REJECT_ACCOUNT_PAYMENT"), gateway.ClassRefused},
		{"INVALID_CARD_EXPIRATION", code(400, "INVALID_CARD_EXPIRATION"), gateway.ClassRefused},
		{"INVALID_STOPPED_CARD", code(400, "INVALID_STOPPED_CARD"), gateway.ClassRefused},
		{"INVALID_REQUEST", code(400, "INVALID_REQUEST"), gateway.ClassRefused},
		{"EXCEED_MAX_DAILY_PAYMENT_COUNT", code(400, "EXCEED_MAX_DAILY_PAYMENT_COUNT"), gateway.ClassRefused},
		{"EXCEED_CANCEL_AMOUNT_DISCOUNT_AMOUNT", code(400, "EXCEED_CANCEL_AMOUNT_DISCOUNT_AMOUNT"), gateway.ClassRefused},
		{"NOT_CANCELABLE_AMOUNT", code(403, "NOT_CANCELABLE_AMOUNT"), gateway.ClassRefused},
		{"NOT_CANCELABLE_PAYMENT", code(403, "NOT_CANCELABLE_PAYMENT"), gateway.ClassRefused},
		{"PrefixBeatsStatus5xx", code(500, "REJECT_SOMETHING"), gateway.ClassRefused},
		{"PrefixIsAPrefix", code(400, "XINVALID_THING"), gateway.ClassRefused}, // via "other 4xx", not the prefix
		{"PrefixNotAt5xx", code(500, "XINVALID_THING"), gateway.ClassTransient},

		// Session expired.
		{"NOT_FOUND_PAYMENT_SESSION", code(404, "NOT_FOUND_PAYMENT_SESSION"), gateway.ClassSessionExpired},

		// Misconfigured: exact codes win over the INVALID_ prefix.
		{"UNAUTHORIZED_KEY", code(401, "UNAUTHORIZED_KEY"), gateway.ClassMisconfigured},
		{"INVALID_API_KEY", code(400, "INVALID_API_KEY"), gateway.ClassMisconfigured},
		{"INCORRECT_BASIC_AUTH_FORMAT", code(403, "INCORRECT_BASIC_AUTH_FORMAT"), gateway.ClassMisconfigured},

		// Unknown codes fall back to the status.
		{"UnknownCode400", code(400, "NOT_FOUND_PAYMENT"), gateway.ClassRefused},
		{"UnknownCode401", code(401, "SOMETHING_ABOUT_KEYS"), gateway.ClassMisconfigured},
		{"UnknownCode404", code(404, "NOT_FOUND_PAYMENT"), gateway.ClassRefused},
		{"UnknownCode429", code(429, "TOO_MANY_REQUESTS"), gateway.ClassTransient},
		{"UnknownCode500", code(500, "SOMETHING_BROKE"), gateway.ClassTransient},
		{"UnknownCode503", code(503, "MAINTENANCE"), gateway.ClassTransient},

		// Bare statuses (no {code, message} body).
		{"Bare302", bare(302), gateway.ClassMisconfigured},
		{"Bare400", bare(400), gateway.ClassRefused},
		{"Bare401", bare(401), gateway.ClassMisconfigured},
		{"Bare403", bare(403), gateway.ClassRefused},
		{"Bare404", bare(404), gateway.ClassRefused},
		{"Bare408", bare(408), gateway.ClassTransient},
		{"Bare409", bare(409), gateway.ClassRefused},
		{"Bare429", bare(429), gateway.ClassTransient},
		{"Bare500", bare(500), gateway.ClassTransient},
		{"Bare502", bare(502), gateway.ClassTransient},
		{"Bare503", bare(503), gateway.ClassTransient},
		{"Bare504", bare(504), gateway.ClassTransient},
		{"Bare100", bare(100), gateway.ClassUnclear},
		{"Bare600", bare(600), gateway.ClassUnclear},
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
