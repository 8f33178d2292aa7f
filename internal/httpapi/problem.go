package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/payment-outbox/payment-outbox/internal/payment"
	"github.com/payment-outbox/payment-outbox/internal/webhook"
)

// Codes of the transport's own problems, next to the domain's payment.Code*
// values. Like those, clients branch on them, so they never change.
const (
	codeInvalidJSON          = "invalid_json"
	codeUnknownField         = "unknown_field"
	codeBodyTooLarge         = "body_too_large"
	codeUnsupportedMediaType = "unsupported_media_type"
	codeNotFound             = "not_found"
	codeMethodNotAllowed     = "method_not_allowed"
	codeNotReady             = "not_ready"
	codeTimeout              = "timeout"
	codeUnauthorized         = "unauthorized"
	// codeIdempotencyKeyReused: the Idempotency-Key was first used for
	// another request (method, path or body).
	codeIdempotencyKeyReused = "idempotency_key_reused"
	// codeIdempotencyInProgress: the first request under the key has not
	// finished; send the repeat again later.
	codeIdempotencyInProgress = "idempotency_request_in_progress"
	// codeIdempotencyKeyRequired: a partial cancel came without an
	// Idempotency-Key; a retry of it could not be told from a second refund.
	codeIdempotencyKeyRequired = "idempotency_key_required"
	// codeTooManyWaiters: this api process has as many requests waiting
	// (GET ?wait=) as it allows; read without waiting, or wait again later.
	codeTooManyWaiters = "too_many_waiters"
	// codeOverloaded: this api process has as many requests in flight as
	// Config.MaxInFlight allows; nothing was done, send again later.
	codeOverloaded = "overloaded"
	// codeInsufficientScope: the API key is valid but its scope does not
	// cover the call (a checkout key asking for an operator action).
	codeInsufficientScope = "insufficient_scope"
	// codeInvalidSignature: a signed webhook (PortOne's) whose signature
	// does not verify, or one that arrives where no secret to verify it is
	// configured. Nothing is written.
	codeInvalidSignature = "invalid_signature"
	// codeBodyTimeout: an unauthenticated request's body did not arrive
	// within the short deadline those routes read under; nothing was done.
	codeBodyTimeout = "body_timeout"
)

// problemContentType is the media type of RFC 9457 problem details.
const problemContentType = "application/problem+json"

// problemTypeBase prefixes every problem's type URI. RFC 9457 lets a type be
// an identifier that is not dereferenceable; a tag URI (RFC 4151) says so
// plainly, where an https URL would promise documentation that 404s.
const problemTypeBase = "tag:payment-outbox,2026:problem:"

// problemTitles gives each code its fixed, human-readable title. RFC 9457
// wants the title to stay the same for every occurrence of a type.
var problemTitles = map[string]string{
	payment.CodeInvalidRequest:        "Invalid request",
	payment.CodeNotFound:              "Payment not found",
	payment.CodeOrderConflict:         "Order already has a different payment",
	payment.CodePaymentKeyConflict:    "Payment key conflict",
	payment.CodeInvalidState:          "Payment is not in a state that allows this",
	payment.CodeAmountMismatch:        "Amount differs from the payment",
	payment.CodeCancelInProgress:      "A cancel is already in progress",
	payment.CodeCancelExceeds:         "Cancel amount exceeds the balance",
	payment.CodeRefundAccountRequired: "A refund account is required",
	payment.CodeInternal:              "Internal server error",
	codeInvalidJSON:                   "Malformed JSON",
	codeUnknownField:                  "Unknown field",
	codeBodyTooLarge:                  "Request body too large",
	codeBodyTimeout:                   "Request body too slow",
	codeUnsupportedMediaType:          "Unsupported media type",
	codeNotFound:                      "Not found",
	codeMethodNotAllowed:              "Method not allowed",
	codeNotReady:                      "Service not ready",
	codeTimeout:                       "Request timed out",
	codeUnauthorized:                  "Missing or invalid API key",
	codeIdempotencyKeyReused:          "Idempotency-Key was used for another request",
	codeIdempotencyInProgress:         "A request with this Idempotency-Key is still in progress",
	codeIdempotencyKeyRequired:        "An Idempotency-Key is required",
	payment.CodePaymentUnknown:        "The payment's outcome is not known yet",
	codeTooManyWaiters:                "Too many requests are waiting",
	codeOverloaded:                    "Too many requests in flight",
	webhook.CodeEndpointNotFound:      "Webhook endpoint not found",
	webhook.CodeDeliveryNotFound:      "Webhook delivery not found",
	webhook.CodeURLRefused:            "Webhook URL is not a public address",
	webhook.CodeEndpointDisabled:      "Webhook endpoint is disabled",
	webhook.CodeEndpointLimit:         "Too many webhook endpoints",
	webhook.CodeURLTaken:              "Webhook URL is already registered",
	codeInsufficientScope:             "The API key's scope does not allow this",
	codeInvalidSignature:              "Webhook signature does not verify",
	payment.CodeJobNotFound:           "Outbox job not found",
}

// problem is an RFC 9457 problem details object with one extension member,
// code, that clients branch on.
type problem struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail"`
	Code     string `json:"code"`
	Instance string `json:"instance"`
}

// problemError is a transport-level failure (bad JSON, wrong media type, an
// oversized body) that the domain has no kind for, with the status to answer.
type problemError struct {
	status int
	code   string
	detail string
	// header holds response headers the answer needs (WWW-Authenticate on a
	// 401, Retry-After on a 409 in progress).
	header map[string]string
}

func (e *problemError) Error() string { return e.code + ": " + e.detail }

// invalid returns a 400 problem with code and detail.
func invalid(code, detail string) *problemError {
	return &problemError{status: http.StatusBadRequest, code: code, detail: detail}
}

// statusOf maps a domain error kind to its HTTP status. It is the one place
// that does.
func statusOf(kind payment.Kind) int {
	switch kind {
	case payment.KindInvalid:
		return http.StatusBadRequest
	case payment.KindNotFound:
		return http.StatusNotFound
	case payment.KindConflict:
		return http.StatusConflict
	case payment.KindUnprocessable:
		return http.StatusUnprocessableEntity
	}
	return http.StatusInternalServerError
}

// toProblem turns any error a handler or Echo returned into the problem to
// send. The second result is false when the error is ours, not the client's:
// its text must be logged, never sent.
func toProblem(err error, instance string) (problem, bool) {
	status, code, detail, ok := classify(err)
	title, found := problemTitles[code]
	if !found {
		title = http.StatusText(status)
	}
	return problem{
		Type:     problemTypeBase + code,
		Title:    title,
		Status:   status,
		Detail:   detail,
		Code:     code,
		Instance: instance,
	}, ok
}

// classify reads err as a status, a code, a detail for the client and whether
// the detail may be shown.
func classify(err error) (status int, code, detail string, ok bool) {
	var pe *problemError
	if errors.As(err, &pe) {
		// Its detail was written for the client; nothing internal in it.
		return pe.status, pe.code, pe.detail, true
	}
	var he *echo.HTTPError
	if errors.As(err, &he) {
		return classifyEcho(he)
	}
	var de *payment.Error
	if errors.As(err, &de) && de.Kind != payment.KindInternal {
		return statusOf(de.Kind), de.Code, de.Message, true
	}
	return http.StatusInternalServerError, payment.CodeInternal,
		"the server could not complete the request; it has been logged", false
}

// classifyEcho covers the errors Echo raises itself: no route, wrong method,
// and whatever its middleware might return.
func classifyEcho(he *echo.HTTPError) (int, string, string, bool) {
	switch he.Code {
	case http.StatusNotFound:
		return he.Code, codeNotFound, "no such resource", true
	case http.StatusMethodNotAllowed:
		return he.Code, codeMethodNotAllowed, "this resource does not support the request's method", true
	case http.StatusRequestEntityTooLarge:
		return he.Code, codeBodyTooLarge, "the request body is too large", true
	case http.StatusUnsupportedMediaType:
		return he.Code, codeUnsupportedMediaType, "the request body must be application/json", true
	}
	if he.Code >= 400 && he.Code < 500 {
		return he.Code, "http_" + strconv.Itoa(he.Code), http.StatusText(he.Code), true
	}
	return http.StatusInternalServerError, payment.CodeInternal,
		"the server could not complete the request; it has been logged", false
}

// handleError is Echo's HTTPErrorHandler: every error, from a handler or
// from Echo itself, leaves as problem details.
func (s *Server) handleError(err error, c echo.Context) {
	log := loggerOf(c, s.logger)
	if errors.Is(err, context.DeadlineExceeded) && errors.Is(c.Request().Context().Err(), context.DeadlineExceeded) {
		// Our own deadline, not a fault to hide: say so, and log the cause.
		log.Warn("request timed out", slog.String("error", err.Error()))
		err = &problemError{
			status: http.StatusServiceUnavailable,
			code:   codeTimeout,
			// A commit cut off by the deadline may still have happened, so
			// the client is told to look rather than assume either way.
			detail: "the request did not finish in time; read the payment to see whether it took effect",
		}
	}
	p, ok := toProblem(err, c.Request().URL.Path)
	if !ok {
		level := slog.LevelError
		if errors.Is(err, context.Canceled) && c.Request().Context().Err() != nil {
			// The client went away; the transaction rolled back. Worth a
			// line, not an alert.
			level = slog.LevelWarn
		}
		log.Log(c.Request().Context(), level, "request failed", slog.String("error", err.Error()))
	}
	if c.Response().Committed {
		// Part of an answer is already on the wire; a second one would
		// corrupt it.
		log.Warn("error after the response was committed", slog.String("error", err.Error()))
		return
	}
	var pe *problemError
	if errors.As(err, &pe) {
		for k, v := range pe.header {
			c.Response().Header().Set(k, v)
		}
	}
	body, mErr := json.Marshal(p)
	if mErr != nil {
		log.Error("error encoding problem", slog.String("error", mErr.Error()))
		return
	}
	if c.Request().Method == http.MethodHead {
		c.Response().Header().Set(echo.HeaderContentType, problemContentType)
		c.Response().WriteHeader(p.Status)
		return
	}
	if err := c.Blob(p.Status, problemContentType, body); err != nil {
		log.Warn("error writing problem", slog.String("error", err.Error()))
	}
}
