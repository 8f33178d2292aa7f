package gatewaysim

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// Toss error codes the simulator answers with. The full set it knows, with the
// HTTP status Toss sends for each, is errorStatuses.
const (
	CodeAlreadyProcessedPayment        = "ALREADY_PROCESSED_PAYMENT"
	CodeProviderError                  = "PROVIDER_ERROR"
	CodeInvalidRequest                 = "INVALID_REQUEST"
	CodeDuplicatedOrderID              = "DUPLICATED_ORDER_ID"
	CodeAlreadyCanceledPayment         = "ALREADY_CANCELED_PAYMENT"
	CodeUnauthorizedKey                = "UNAUTHORIZED_KEY"
	CodeNotCancelableAmount            = "NOT_CANCELABLE_AMOUNT"
	CodeNotCancelablePayment           = "NOT_CANCELABLE_PAYMENT"
	CodeNotFoundPayment                = "NOT_FOUND_PAYMENT"
	CodeNotFoundPaymentSession         = "NOT_FOUND_PAYMENT_SESSION"
	CodeIdempotentRequestProcessing    = "IDEMPOTENT_REQUEST_PROCESSING"
	CodeFailedInternalSystemProcessing = "FAILED_INTERNAL_SYSTEM_PROCESSING"
	CodeNotFound                       = "NOT_FOUND"
	CodeCommonError                    = "COMMON_ERROR"
	CodeNotMatchesRefundableAmount     = "NOT_MATCHES_REFUNDABLE_AMOUNT"
	CodeForbiddenConsecutiveRequest    = "FORBIDDEN_CONSECUTIVE_REQUEST"
	CodeInvalidTransactionKey          = "INVALID_TRANSACTION_KEY"
)

// errorStatuses is the one table from a Toss error code to the HTTP status
// Toss answers it with. Codes missing from it are answered with 500, which is
// what an unknown failure looks like from the outside.
var errorStatuses = map[string]int{
	"ALREADY_PROCESSED_PAYMENT":                 http.StatusBadRequest,
	"PROVIDER_ERROR":                            http.StatusBadRequest,
	"INVALID_REQUEST":                           http.StatusBadRequest,
	"INVALID_API_KEY":                           http.StatusBadRequest,
	"INVALID_CARD_NUMBER":                       http.StatusBadRequest,
	"INVALID_CARD_EXPIRATION":                   http.StatusBadRequest,
	"INVALID_STOPPED_CARD":                      http.StatusBadRequest,
	"INVALID_REJECT_CARD":                       http.StatusBadRequest,
	"BELOW_MINIMUM_AMOUNT":                      http.StatusBadRequest,
	"CARD_PROCESSING_ERROR":                     http.StatusBadRequest,
	"ALREADY_CANCELED_PAYMENT":                  http.StatusBadRequest,
	"EXCEED_MAX_AMOUNT":                         http.StatusBadRequest,
	"EXCEED_MAX_DAILY_PAYMENT_COUNT":            http.StatusBadRequest,
	"DUPLICATED_ORDER_ID":                       http.StatusBadRequest,
	"NOT_MATCHES_REFUNDABLE_AMOUNT":             http.StatusBadRequest,
	"INVALID_TRANSACTION_KEY":                   http.StatusBadRequest,
	"UNAUTHORIZED_KEY":                          http.StatusUnauthorized,
	"REJECT_CARD_COMPANY":                       http.StatusForbidden,
	"REJECT_CARD_PAYMENT":                       http.StatusForbidden,
	"REJECT_ACCOUNT_PAYMENT":                    http.StatusForbidden,
	"FDS_ERROR":                                 http.StatusForbidden,
	"INCORRECT_BASIC_AUTH_FORMAT":               http.StatusForbidden,
	"NOT_CANCELABLE_AMOUNT":                     http.StatusForbidden,
	"NOT_CANCELABLE_PAYMENT":                    http.StatusForbidden,
	"FORBIDDEN_CONSECUTIVE_REQUEST":             http.StatusForbidden,
	"FORBIDDEN_REQUEST":                         http.StatusForbidden,
	"NOT_FOUND_PAYMENT":                         http.StatusNotFound,
	"NOT_FOUND_PAYMENT_SESSION":                 http.StatusNotFound,
	"NOT_FOUND":                                 http.StatusNotFound,
	"IDEMPOTENT_REQUEST_PROCESSING":             http.StatusConflict,
	"FAILED_PAYMENT_INTERNAL_SYSTEM_PROCESSING": http.StatusInternalServerError,
	"FAILED_INTERNAL_SYSTEM_PROCESSING":         http.StatusInternalServerError,
	"UNKNOWN_PAYMENT_ERROR":                     http.StatusInternalServerError,
	"FAILED_REFUND_PROCESS":                     http.StatusInternalServerError,
	"FAILED_METHOD_HANDLING_CANCEL":             http.StatusInternalServerError,
	"COMMON_ERROR":                              http.StatusInternalServerError,
}

// StatusForCode returns the HTTP status Toss answers the error code with, and
// 500 for a code it does not know.
func StatusForCode(code string) int {
	if status, ok := errorStatuses[code]; ok {
		return status
	}
	return http.StatusInternalServerError
}

// KnownCode reports whether code is in the simulator's code→status table.
func KnownCode(code string) bool {
	_, ok := errorStatuses[code]
	return ok
}

// Error is an error answer in Toss's shape: {"code", "message"} sent with
// Status. The control API uses it too, so every error body the simulator
// sends reads the same.
type Error struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Error implements error.
func (e *Error) Error() string {
	return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message)
}

// newError builds a Toss error whose status comes from the code table.
func newError(code, format string, args ...any) *Error {
	return &Error{Status: StatusForCode(code), Code: code, Message: fmt.Sprintf(format, args...)}
}

// errorWithStatus builds an error whose status is not the table's: the control
// API's own answers and the few Toss answers that differ by situation (503
// while down).
func errorWithStatus(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// response returns the error as a ready-to-send (and ready-to-store) answer.
func (e *Error) response() response {
	return jsonResponse(e.Status, e)
}

// response is one complete HTTP answer: what is sent, what the idempotency
// store keeps and replays, and what the request log records.
type response struct {
	status int
	body   []byte
	code   string // the error code; empty for a success
}

// jsonResponse encodes v. The values passed are the simulator's own types, so
// a marshal failure is a programming error; it is still answered, as a 500.
func jsonResponse(status int, v any) response {
	body, err := json.Marshal(v)
	if err != nil {
		body = []byte(`{"code":"COMMON_ERROR","message":"error encoding response"}`)
		return response{status: http.StatusInternalServerError, body: body, code: CodeCommonError}
	}
	res := response{status: status, body: body}
	if e, ok := v.(*Error); ok {
		res.code = e.Code
	}
	return res
}

// write sends the response.
func (res response) write(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(res.status)
	_, _ = w.Write(res.body)
}
