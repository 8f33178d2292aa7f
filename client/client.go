// Package client is the Go client of the payment outbox's HTTP API, for
// checkout services: create, confirm, cancel, read and wait for payments,
// manage webhook endpoints, and verify the webhooks the outbox sends.
//
// It does what every checkout otherwise writes by hand and gets subtly
// wrong:
//
//   - Every POST carries an Idempotency-Key made once per call (one logical
//     operation) and sent unchanged on each of its retries, so a retry after
//     a lost answer gets the first answer back instead of acting twice. Pass
//     WithIdempotencyKey to keep the key across process restarts too (for a
//     confirm, "confirm-"+paymentID is a good one).
//
//   - 5xx answers, network errors, 429 and 409 idempotency_request_in_progress
//     are retried with exponential backoff (honouring Retry-After); nothing
//     else is.
//
//   - Problem answers (RFC 9457) come back as *Error, whose Code is the API's
//     stable machine-readable code.
//
//     c := client.New("https://payments.internal", os.Getenv("PAYMENT_OUTBOX_API_KEY"))
//     p, err := c.CreatePayment(ctx, client.CreatePaymentRequest{OrderID: "order-1", Amount: 15000, OrderName: "Coffee"})
//     p, err = c.ConfirmPayment(ctx, p.ID, client.ConfirmRequest{PaymentKey: key, Amount: 15000})
//     p, err = c.WaitPayment(ctx, p.ID, 30*time.Second) // confirmed, failed, expired or unknown
package client

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Client calls one payment outbox api. It is safe for concurrent use.
type Client struct {
	baseURL string
	apiKey  string
	http    *http.Client
	retry   RetryPolicy
}

// RetryPolicy says how often and how far apart a call is retried.
type RetryPolicy struct {
	// MaxAttempts is the most times one call is sent, first time included;
	// 1 never retries.
	MaxAttempts int
	// Initial is the wait before the first retry; it doubles up to Max
	// (with ±20% jitter). A Retry-After the api sends is waited at least.
	Initial, Max time.Duration
}

// DefaultRetryPolicy is the policy of a Client made without WithRetry: five
// attempts over about three seconds, enough to ride out a restarting api.
var DefaultRetryPolicy = RetryPolicy{MaxAttempts: 5, Initial: 200 * time.Millisecond, Max: 2 * time.Second}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient sends the requests with hc (default: a client with no
// overall timeout, since waits last up to 30s; bound calls with their
// context).
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.http = hc } }

// WithRetry replaces DefaultRetryPolicy.
func WithRetry(p RetryPolicy) Option { return func(c *Client) { c.retry = p } }

// New returns a Client for the api at baseURL (for example
// "http://localhost:8080"), authenticating with apiKey.
func New(baseURL, apiKey string, opts ...Option) *Client {
	c := &Client{baseURL: strings.TrimSuffix(baseURL, "/"), apiKey: apiKey, http: &http.Client{}, retry: DefaultRetryPolicy}
	for _, o := range opts {
		o(c)
	}
	if c.retry.MaxAttempts < 1 {
		c.retry.MaxAttempts = 1
	}
	return c
}

// CallOption adjusts one call.
type CallOption func(*callOptions)

type callOptions struct {
	idempotencyKey string
}

// WithIdempotencyKey sends key as the call's Idempotency-Key instead of a
// fresh random one: to make a call safe to repeat across process restarts.
// A key is scoped to the API key and kept by the api for 24 hours; reuse one
// only for the same request.
func WithIdempotencyKey(key string) CallOption {
	return func(o *callOptions) { o.idempotencyKey = key }
}

// newIdempotencyKey makes a key for one logical operation.
func newIdempotencyKey() string {
	b := make([]byte, 16)
	_, _ = crand.Read(b) // never fails
	return "poc-" + hex.EncodeToString(b)
}

// operation is one call of the API, by method and OpenAPI path template.
type operation struct {
	method, path string
	// idempotent: the api honours an Idempotency-Key on it (or it is a read,
	// or changes nothing the second time), so a retry cannot act twice.
	idempotent bool
}

// The operations the client calls; a test holds them to openapi.json.
var (
	opCreatePayment   = operation{http.MethodPost, "/v1/payments", true}
	opGetByOrderID    = operation{http.MethodGet, "/v1/payments", true}
	opGetPayment      = operation{http.MethodGet, "/v1/payments/{id}", true}
	opListAttempts    = operation{http.MethodGet, "/v1/payments/{id}/attempts", true}
	opConfirmPayment  = operation{http.MethodPost, "/v1/payments/{id}/confirm", true}
	opCancelPayment   = operation{http.MethodPost, "/v1/payments/{id}/cancel", true}
	opCreateEndpoint  = operation{http.MethodPost, "/v1/webhook-endpoints", false}
	opListEndpoints   = operation{http.MethodGet, "/v1/webhook-endpoints", true}
	opDisableEndpoint = operation{http.MethodPost, "/v1/webhook-endpoints/{id}/disable", true}
	// Not idempotent: a repeat would replace the secret the first answer
	// showed, and that answer may be the one that was lost.
	opRotateSecret   = operation{http.MethodPost, "/v1/webhook-endpoints/{id}/rotate-secret", false}
	opListDeliveries = operation{http.MethodGet, "/v1/webhook-endpoints/{id}/deliveries", true}
	opRedeliver      = operation{http.MethodPost, "/v1/webhook-endpoints/{id}/deliveries/{deliveryId}/redeliver", true}

	operations = []operation{opCreatePayment, opGetByOrderID, opGetPayment, opListAttempts, opConfirmPayment, opCancelPayment,
		opCreateEndpoint, opListEndpoints, opDisableEndpoint, opRotateSecret, opListDeliveries, opRedeliver}
)

// path fills the template's parameters, in order.
func (op operation) fill(args ...string) string {
	p := op.path
	for _, a := range args {
		i, j := strings.Index(p, "{"), strings.Index(p, "}")
		if i < 0 || j < i {
			break
		}
		p = p[:i] + url.PathEscape(a) + p[j+1:]
	}
	return p
}

// call sends one logical operation, retrying as the package documentation
// says, and decodes a 2xx answer's body into out (when not nil).
func (c *Client) call(ctx context.Context, op operation, path string, query url.Values, body, out any, opts []CallOption) error {
	var o callOptions
	for _, opt := range opts {
		opt(&o)
	}
	var raw []byte
	if body != nil {
		var err error
		if raw, err = json.Marshal(body); err != nil {
			return fmt.Errorf("error encoding request: %w", err)
		}
	}
	if op.method == http.MethodPost && o.idempotencyKey == "" && op.idempotent {
		o.idempotencyKey = newIdempotencyKey()
	}
	u := c.baseURL + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	for attempt := 1; ; attempt++ {
		err := c.send(ctx, op.method, u, raw, o.idempotencyKey, out)
		if err == nil {
			return nil
		}
		wait, retry := c.retryAfter(err, attempt, op.idempotent || o.idempotencyKey != "")
		if !retry {
			return err
		}
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(wait):
		}
	}
}

// retryAfter says whether a failed attempt is retried, and after how long.
func (c *Client) retryAfter(err error, attempt int, safe bool) (time.Duration, bool) {
	if attempt >= c.retry.MaxAttempts || !safe {
		return 0, false
	}
	var e *Error
	if errors.As(err, &e) {
		retryable := e.StatusCode >= 500 || e.StatusCode == http.StatusTooManyRequests ||
			(e.StatusCode == http.StatusConflict && e.Code == CodeIdempotencyRequestInProgress)
		if !retryable {
			return 0, false
		}
		return max(c.backoff(attempt), e.RetryAfter), true
	}
	var ue *url.Error
	if errors.As(err, &ue) && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		return c.backoff(attempt), true // no answer: the api may not have seen it
	}
	return 0, false
}

func (c *Client) backoff(attempt int) time.Duration {
	d := c.retry.Initial
	for i := 1; i < attempt && d < c.retry.Max; i++ {
		d *= 2
	}
	d = min(d, c.retry.Max)
	if d <= 0 {
		return 0
	}
	return d + time.Duration((rand.Float64()*0.4-0.2)*float64(d))
}

// maxAnswer bounds an answer's body; the largest the api sends (a payment
// with a long history) is far below it.
const maxAnswer = 4 << 20

// send makes one request.
func (c *Client) send(ctx context.Context, method, u string, body []byte, idempotencyKey string, out any) error {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, r)
	if err != nil {
		return fmt.Errorf("error making request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.apiKey)
	req.Header.Set("Accept", "application/json, application/problem+json")
	req.Header.Set("User-Agent", "payment-outbox-go-client/1")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if idempotencyKey != "" {
		req.Header.Set("Idempotency-Key", idempotencyKey)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err // a *url.Error
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return &url.Error{Op: method, URL: u, Err: fmt.Errorf("error reading answer: %w", err)}
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return toError(resp, data)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("error decoding %s %s answer: %w", method, req.URL.Path, err)
	}
	return nil
}

// Error is an answer other than 2xx: the API's problem details (RFC 9457).
// Branch on Code, which never changes meaning; Detail is for people.
type Error struct {
	// StatusCode is the HTTP status.
	StatusCode int
	// Code is the problem's stable code (CodeAmountMismatch, ...); for an
	// answer that is not problem details (a proxy's 502), "http_" and the
	// status.
	Code     string
	Title    string
	Detail   string
	Type     string
	Instance string
	// RetryAfter is the answer's Retry-After, if any.
	RetryAfter time.Duration
	// RequestID is the answer's X-Request-Id, under which the api logged it.
	RequestID string
}

func (e *Error) Error() string {
	if e.Detail != "" {
		return fmt.Sprintf("payment outbox: %d %s: %s", e.StatusCode, e.Code, e.Detail)
	}
	return fmt.Sprintf("payment outbox: %d %s", e.StatusCode, e.Code)
}

// ErrorCode returns the problem code of err (an *Error, possibly wrapped),
// or "" when err is not an answer of the api.
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

func toError(resp *http.Response, body []byte) *Error {
	e := &Error{StatusCode: resp.StatusCode, RequestID: resp.Header.Get("X-Request-Id")}
	var p struct {
		Type, Title, Detail, Code, Instance string
	}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/problem+json") && json.Unmarshal(body, &p) == nil && p.Code != "" {
		e.Code, e.Title, e.Detail, e.Type, e.Instance = p.Code, p.Title, p.Detail, p.Type, p.Instance
	} else {
		e.Code = "http_" + strconv.Itoa(resp.StatusCode)
		e.Title = http.StatusText(resp.StatusCode)
	}
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s >= 0 {
		e.RetryAfter = time.Duration(s) * time.Second
	}
	return e
}

// The problem codes a checkout branches on most; the api's OpenAPI document
// (GET /openapi.json) lists them all.
const (
	CodeInvalidRequest               = "invalid_request"
	CodePaymentNotFound              = "payment_not_found"
	CodeOrderConflict                = "order_conflict"
	CodePaymentKeyConflict           = "payment_key_conflict"
	CodeInvalidState                 = "invalid_state"
	CodeAmountMismatch               = "amount_mismatch"
	CodeCancelInProgress             = "cancel_in_progress"
	CodeCancelExceedsBalance         = "cancel_amount_exceeds_balance"
	CodePaymentUnknown               = "payment_unknown"
	CodeUnauthorized                 = "unauthorized"
	CodeIdempotencyKeyReused         = "idempotency_key_reused"
	CodeIdempotencyRequestInProgress = "idempotency_request_in_progress"
	CodeIdempotencyKeyRequired       = "idempotency_key_required"
	CodeTooManyWaiters               = "too_many_waiters"
	CodeWebhookURLRefused            = "webhook_url_refused"
	CodeWebhookEndpointNotFound      = "webhook_endpoint_not_found"
	CodeWebhookDeliveryNotFound      = "webhook_delivery_not_found"
	CodeWebhookEndpointDisabled      = "webhook_endpoint_disabled"
	// CodeWebhookEndpointLimit: the key's owner has as many active
	// endpoints as the deployment allows; disable one first.
	CodeWebhookEndpointLimit = "webhook_endpoint_limit"
	// CodeWebhookURLTaken: an active endpoint of the key's owner already
	// has the URL.
	CodeWebhookURLTaken = "webhook_url_taken"
)
