// Package toss is the client for Toss Payments' core API v1 and the table
// that says what each of its answers means. It implements the relay's gateway
// contract (internal/gateway) beside the PortOne client
// (internal/gateway/portone), converting Toss's Payment object to
// gateway.Payment.
//
// The client makes exactly one HTTP call per method and returns one Result; it
// never retries. Retries, backoff and circuit breaking belong to the relay, so
// that a failure is retried in one layer only.
package toss

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/payment-outbox/payment-outbox/internal/gateway"
	"github.com/payment-outbox/payment-outbox/internal/gateway/httpcall"
	"github.com/payment-outbox/payment-outbox/internal/payment"
)

// DefaultBaseURL is the gateway's production API host. Test keys use the same
// host; the key decides the mode.
const DefaultBaseURL = "https://api.tosspayments.com"

const (
	// defaultTimeout bounds one call, including reading the body.
	defaultTimeout = 10 * time.Second
	// defaultUserAgent identifies us in the gateway's logs.
	defaultUserAgent = "payment-outbox-gateway/1"
	// maxBodyBytes is the shared transport's limit on one response.
	maxBodyBytes = httpcall.MaxBodyBytes
	// maxIdempotencyKeyLen is the gateway's documented limit.
	maxIdempotencyKeyLen = 300
)

// secretKeyPrefixes are the secret keys the gateway issues: API individual
// keys (sk) and payment widget keys (gsk), each in test and live mode.
var secretKeyPrefixes = []string{"test_sk_", "live_sk_", "test_gsk_", "live_gsk_"}

// Config configures New. Only SecretKey is required.
type Config struct {
	// BaseURL is the gateway's API root; it may carry a path prefix and a
	// trailing slash. Empty means DefaultBaseURL.
	BaseURL string
	// SecretKey is the gateway secret key: "test_sk_…"/"live_sk_…", or a
	// widget secret key "test_gsk_…"/"live_gsk_…". It is never logged or put
	// in an error. The json tag keeps it out of structured logs.
	SecretKey string `json:"-"`
	// Timeout bounds one call, including reading the response body. Zero
	// means 10s.
	Timeout time.Duration
	// HTTPClient is used for the calls if set. The client works on a shallow
	// copy with redirects disabled; its Transport is shared as is.
	HTTPClient *http.Client
	// UserAgent is sent on every call if set.
	UserAgent string
	// KeyRetention overrides how long the client says the gateway keeps
	// an Idempotency-Key (KeyRetention); zero means Toss's documented 15
	// days. Tests that scale the simulator's retention down set it too.
	KeyRetention time.Duration
}

// String describes the configuration without the secret key, so that logging
// a Config is safe.
func (cfg Config) String() string {
	return fmt.Sprintf("toss.Config{BaseURL: %q, SecretKey: %s, Timeout: %s, UserAgent: %q}",
		cfg.BaseURL, redactedKey(cfg.SecretKey), cfg.Timeout, cfg.UserAgent)
}

// GoString is String for %#v, which would otherwise print the secret key.
func (cfg Config) GoString() string { return cfg.String() }

// Client calls the gateway. It is safe for concurrent use.
type Client struct {
	baseURL   string // no trailing slash
	mode      string // "test" or "live", for String
	userAgent string
	timeout   time.Duration
	hc        *http.Client
	// caller makes the calls (internal/gateway/httpcall); the fields above
	// are what it was built with.
	caller *httpcall.Caller
	// now is the clock for Latency; tests may replace it.
	now func() time.Time
	// keyRetention: see Config.KeyRetention.
	keyRetention time.Duration
}

// New returns a Client for cfg. It fails on an empty or unrecognized secret
// key, a base URL that is not an absolute http(s) URL, or a negative timeout.
// Errors never contain the secret key.
func New(cfg Config) (*Client, error) {
	mode, err := checkSecretKey(cfg.SecretKey)
	if err != nil {
		return nil, fmt.Errorf("error creating Toss client: %w", err)
	}
	base, err := httpcall.CheckBaseURL(cfg.BaseURL, DefaultBaseURL)
	if err != nil {
		return nil, fmt.Errorf("error creating Toss client: %w", err)
	}
	// A live key over plain HTTP would put a credential that moves real money
	// on the wire in the clear. Loopback stays allowed for a local
	// TLS-originating egress proxy (a sidecar), where nothing leaves the host.
	if mode == "live" && strings.HasPrefix(base, "http://") && !isLoopback(base) {
		return nil, errors.New("error creating Toss client: a live secret key requires an https base URL (or a loopback host)")
	}
	if cfg.KeyRetention < 0 {
		return nil, fmt.Errorf("error creating Toss client: key retention %s is negative", cfg.KeyRetention)
	}
	// A negative timeout stays negative, and httpcall.New refuses it.
	timeout := cmp.Or(cfg.Timeout, defaultTimeout)
	userAgent := cmp.Or(cfg.UserAgent, defaultUserAgent)
	// The gateway never redirects; the shared client follows none
	// (httpcall.Client says why).
	hc := httpcall.Client(cfg.HTTPClient)
	token := base64.StdEncoding.EncodeToString([]byte(cfg.SecretKey + ":"))
	caller, err := httpcall.New(httpcall.Config{
		Name:          "Toss",
		BaseURL:       base,
		Authorization: "Basic " + token,
		// The token without its padding, as some echo services print it,
		// and the key itself.
		Secrets:     []string{strings.TrimRight(token, "="), cfg.SecretKey},
		UserAgent:   userAgent,
		Timeout:     timeout,
		HTTPClient:  hc,
		CheckKey:    checkIdempotencyKey,
		KeyHeader:   func(key string) string { return key },
		ErrorField:  "code",
		DecodeError: decodeError,
	})
	if err != nil {
		return nil, fmt.Errorf("error creating Toss client: %w", err)
	}
	return &Client{
		baseURL:   base,
		mode:      mode,
		userAgent: userAgent,
		timeout:   timeout,
		hc:        hc,
		caller:    caller,
		now:       time.Now,

		keyRetention: cmp.Or(cfg.KeyRetention, answers.KeyRetention),
	}, nil
}

// String describes the client without its secret key.
func (c *Client) String() string {
	return fmt.Sprintf("toss.Client{BaseURL: %q, SecretKey: %s key (redacted)}", c.baseURL, c.mode)
}

// GoString is String for %#v, which would otherwise print the secret key.
func (c *Client) GoString() string { return c.String() }

// checkSecretKey validates a secret key and returns its mode ("test" or
// "live"). Its errors describe the key without quoting any of it.
func checkSecretKey(key string) (string, error) {
	if key == "" {
		return "", errors.New("secret key is empty")
	}
	for i := 0; i < len(key); i++ {
		// A trailing newline from a mounted secret file is the usual culprit;
		// it would make every call fail with UNAUTHORIZED_KEY.
		if key[i] <= ' ' || key[i] > '~' {
			return "", errors.New("secret key contains whitespace or non-ASCII characters")
		}
	}
	for _, p := range secretKeyPrefixes {
		if strings.HasPrefix(key, p) && len(key) > len(p) {
			mode, _, _ := strings.Cut(p, "_")
			return mode, nil
		}
	}
	if strings.HasPrefix(key, "test_ck_") || strings.HasPrefix(key, "live_ck_") ||
		strings.HasPrefix(key, "test_gck_") || strings.HasPrefix(key, "live_gck_") {
		return "", errors.New("secret key is a client key; the server needs the secret key (test_sk_/live_sk_/test_gsk_/live_gsk_)")
	}
	return "", errors.New("secret key must start with test_sk_, live_sk_, test_gsk_ or live_gsk_")
}

// redactedKey names a key's kind for String methods without revealing it.
func redactedKey(key string) string {
	if key == "" {
		return `""`
	}
	return "[redacted]"
}

// isLoopback reports whether a checked base URL names this machine.
func isLoopback(base string) bool {
	u, err := url.Parse(base)
	if err != nil {
		return false
	}
	host := u.Hostname()
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

type confirmBody struct {
	PaymentKey string `json:"paymentKey"`
	OrderID    string `json:"orderId"`
	Amount     int64  `json:"amount"`
}

type cancelBody struct {
	CancelReason string `json:"cancelReason"`
	// Omitted for a full cancel: the gateway refunds the whole balance when
	// cancelAmount is absent, whereas 0 would be an invalid amount.
	CancelAmount int64 `json:"cancelAmount,omitempty"`
	// Always sent: it is the gateway's own check that no other cancel has
	// changed the balance since we read it.
	RefundableAmount int64 `json:"refundableAmount"`
	// Required by Toss for a refund of a deposited virtual account.
	RefundReceiveAccount *refundReceiveAccount `json:"refundReceiveAccount,omitempty"`
}

// refundReceiveAccount is Toss's cancel parameter of that name.
type refundReceiveAccount struct {
	Bank          string `json:"bank"`
	AccountNumber string `json:"accountNumber"`
	HolderName    string `json:"holderName"`
}

// unpaidCancelBody cancels a payment nothing was paid for (a virtual
// account before its deposit): no amount and no balance to check.
type unpaidCancelBody struct {
	CancelReason string `json:"cancelReason"`
}

// Confirm asks the gateway to approve a payment (POST /v1/payments/confirm).
// idempotencyKey must be the payment's confirm key, the same on every retry.
func (c *Client) Confirm(ctx context.Context, req gateway.ConfirmRequest, idempotencyKey string) gateway.Result {
	op := payment.OperationConfirm
	if err := httpcall.CheckSegment("paymentKey", req.PaymentKey); err != nil {
		return notSent(op, err)
	}
	if req.OrderID == "" {
		return notSent(op, errors.New("orderId is empty"))
	}
	if req.Amount <= 0 {
		return notSent(op, fmt.Errorf("amount %d is not positive", req.Amount))
	}
	r := c.do(ctx, httpcall.Request{
		Op:             op,
		Method:         http.MethodPost,
		Path:           "/v1/payments/confirm",
		Body:           confirmBody{PaymentKey: req.PaymentKey, OrderID: req.OrderID, Amount: req.Amount},
		IdempotencyKey: idempotencyKey,
	})
	return requireSubject(r, op, req.PaymentKey, req.OrderID)
}

// Cancel asks the gateway to refund all or part of a payment
// (POST /v1/payments/{paymentKey}/cancel). idempotencyKey must be the cancel
// request's own key, the same on every retry of that cancel.
func (c *Client) Cancel(ctx context.Context, paymentKey string, req gateway.CancelRequest, idempotencyKey string) gateway.Result {
	op := payment.OperationCancel
	if err := httpcall.CheckSegment("paymentKey", paymentKey); err != nil {
		return notSent(op, err)
	}
	if req.Reason == "" {
		return notSent(op, errors.New("cancel reason is empty"))
	}
	if req.Amount < 0 {
		return notSent(op, fmt.Errorf("cancel amount %d is negative", req.Amount))
	}
	if req.Unpaid {
		r := c.do(ctx, httpcall.Request{
			Op: op, Method: http.MethodPost, Path: "/v1/payments/" + url.PathEscape(paymentKey) + "/cancel",
			Body: unpaidCancelBody{CancelReason: req.Reason}, IdempotencyKey: idempotencyKey,
		})
		return requireSubject(r, op, paymentKey, "")
	}
	// Without a positive refundableAmount the gateway would skip its balance
	// check, and a cancel retried under a new key could refund twice.
	if req.RefundableAmount <= 0 {
		return gateway.AmountsRefused(op, fmt.Errorf("refundable amount %d is not positive", req.RefundableAmount))
	}
	if req.Amount > req.RefundableAmount {
		return gateway.AmountsRefused(op, fmt.Errorf("cancel amount %d exceeds the refundable amount %d", req.Amount, req.RefundableAmount))
	}
	r := c.do(ctx, httpcall.Request{
		Op:     op,
		Method: http.MethodPost,
		Path:   "/v1/payments/" + url.PathEscape(paymentKey) + "/cancel",
		Body: cancelBody{
			CancelReason:         req.Reason,
			CancelAmount:         req.Amount,
			RefundableAmount:     req.RefundableAmount,
			RefundReceiveAccount: tossRefundAccount(req.RefundAccount),
		},
		IdempotencyKey: idempotencyKey,
	})
	return requireSubject(r, op, paymentKey, "")
}

// errOtherPayment is wrapped when a 2xx answer to a confirm or cancel is a
// Payment other than the one the request was about.
var errOtherPayment = errors.New("answer is about another payment")

// requireSubject turns a 2xx Payment that is not the payment a confirm or
// cancel was about (another paymentKey, or for a confirm another orderId)
// into an answer without a Payment. Recording it would book another order's
// approval or balance against ours; as an error on a 2xx it reads as unclear,
// and the relay asks the gateway about our payment instead. An empty orderID
// is not checked. Lookups are left alone: the relay compares what it finds.
func requireSubject(r gateway.Result, op payment.Operation, paymentKey, orderID string) gateway.Result {
	if r.Payment == nil {
		return r
	}
	var err error
	switch {
	case r.Payment.PaymentKey != paymentKey:
		err = fmt.Errorf("%w: answer for paymentKey %q, we asked about %q", errOtherPayment, r.Payment.PaymentKey, paymentKey)
	case orderID != "" && r.Payment.OrderID != orderID:
		err = fmt.Errorf("%w: approval for another order %q, we asked for %q", errOtherPayment, r.Payment.OrderID, orderID)
	default:
		return r
	}
	r.Payment = nil
	r.Err = fmt.Errorf("error reading gateway %s answer (HTTP %d): %w", op, r.HTTPStatus, err)
	return r
}

// Lookup fetches a payment by its key (GET /v1/payments/{paymentKey}).
func (c *Client) Lookup(ctx context.Context, paymentKey string) gateway.Result {
	op := payment.OperationLookup
	if err := httpcall.CheckSegment("paymentKey", paymentKey); err != nil {
		return notSent(op, err)
	}
	return c.do(ctx, httpcall.Request{Op: op, Method: http.MethodGet, Path: "/v1/payments/" + url.PathEscape(paymentKey)})
}

// LookupByOrderID fetches a payment by our order ID
// (GET /v1/payments/orders/{orderId}). It finds the payment even when we never
// learned its paymentKey, e.g. after a confirm whose answer was lost.
func (c *Client) LookupByOrderID(ctx context.Context, orderID string) gateway.Result {
	op := payment.OperationLookup
	if err := httpcall.CheckSegment("orderId", orderID); err != nil {
		return notSent(op, err)
	}
	return c.do(ctx, httpcall.Request{Op: op, Method: http.MethodGet, Path: "/v1/payments/orders/" + url.PathEscape(orderID)})
}

// checkIdempotencyKey enforces the gateway's limit and keeps the key to
// visible ASCII (httpcall.VisibleASCII says why).
func checkIdempotencyKey(key string) error {
	if key == "" {
		return errors.New("idempotency key is empty")
	}
	if len(key) > maxIdempotencyKeyLen {
		return fmt.Errorf("idempotency key is %d characters, more than %d", len(key), maxIdempotencyKeyLen)
	}
	if !httpcall.VisibleASCII(key) {
		return errors.New("idempotency key contains characters other than visible ASCII")
	}
	return nil
}

// notSent is the Result of a request the client refused to send.
func notSent(op payment.Operation, err error) gateway.Result {
	return httpcall.NotSent("Toss", op, err)
}

// errorBody is the gateway's error answer.
type errorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// decodeError reads the gateway's {code, message}; a body without a code is
// not one.
func decodeError(raw []byte) (code, message string, ok bool) {
	var eb errorBody
	if json.Unmarshal(raw, &eb) != nil || eb.Code == "" {
		return "", "", false
	}
	return eb.Code, eb.Message, true
}

// do makes one call whose 2xx answer is a Payment.
func (c *Client) do(ctx context.Context, req httpcall.Request) gateway.Result {
	var p *gateway.Payment
	r := c.send(ctx, req, func(raw []byte) (err error) {
		p, err = parsePayment(raw)
		return err
	})
	r.Payment = p
	return r
}

// send makes one call, reads a 2xx body with decode, and times it all.
func (c *Client) send(ctx context.Context, req httpcall.Request, decode func(raw []byte) error) gateway.Result {
	start := c.now()
	r, raw := c.caller.Do(ctx, req)
	if raw != nil {
		if err := decode(raw); err != nil {
			// Not retried blindly: Classify reads a 2xx without a usable
			// answer as unclear, because the gateway may have done the work.
			r.Err = c.caller.AnswerError(req.Op, r.HTTPStatus, err)
		}
	}
	r.Latency = c.now().Sub(start)
	return r
}

func tossRefundAccount(a *payment.RefundAccount) *refundReceiveAccount {
	if a == nil {
		return nil
	}
	return &refundReceiveAccount{Bank: a.Bank, AccountNumber: a.AccountNumber, HolderName: a.HolderName}
}
