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
	"bytes"
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/payment-outbox/payment-outbox/internal/gateway"
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
	// maxBodyBytes bounds what is read from one response. A Payment with many
	// cancels is a few KiB; anything near this limit is not a Payment.
	maxBodyBytes = 1 << 20
	// maxIdempotencyKeyLen is the gateway's documented limit.
	maxIdempotencyKeyLen = 300
	// maxSnippetBytes is how much of an unexpected body goes into an error.
	maxSnippetBytes = 120
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
	return fmt.Sprintf("gateway.Config{BaseURL: %q, SecretKey: %s, Timeout: %s, UserAgent: %q}",
		cfg.BaseURL, redactedKey(cfg.SecretKey), cfg.Timeout, cfg.UserAgent)
}

// GoString is String for %#v, which would otherwise print the secret key.
func (cfg Config) GoString() string { return cfg.String() }

// Client calls the gateway. It is safe for concurrent use.
type Client struct {
	baseURL   string // no trailing slash
	authz     string // the whole Authorization header value
	secretKey string // kept only to redact it from error text
	mode      string // "test" or "live", for String
	userAgent string
	timeout   time.Duration
	hc        *http.Client
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
		return nil, fmt.Errorf("error creating gateway client: %w", err)
	}
	base, err := checkBaseURL(cfg.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("error creating gateway client: %w", err)
	}
	// A live key over plain HTTP would put a credential that moves real money
	// on the wire in the clear. Loopback stays allowed for a local
	// TLS-originating egress proxy (a sidecar), where nothing leaves the host.
	if mode == "live" && strings.HasPrefix(base, "http://") && !isLoopback(base) {
		return nil, errors.New("error creating gateway client: a live secret key requires an https base URL (or a loopback host)")
	}
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("error creating gateway client: timeout %s is negative", cfg.Timeout)
	}
	if cfg.KeyRetention < 0 {
		return nil, fmt.Errorf("error creating gateway client: key retention %s is negative", cfg.KeyRetention)
	}
	timeout := cfg.Timeout
	if timeout == 0 {
		timeout = defaultTimeout
	}
	userAgent := cfg.UserAgent
	if userAgent == "" {
		userAgent = defaultUserAgent
	}

	var hc http.Client
	if cfg.HTTPClient != nil {
		hc = *cfg.HTTPClient
	} else {
		hc = http.Client{Transport: defaultTransport()}
	}
	// The gateway never redirects. Following one would resend the
	// Authorization header (and for 307/308 the POST body) somewhere we did
	// not configure, or turn a POST into a GET; a redirect is surfaced as an
	// answer and classified as misconfiguration instead.
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

	return &Client{
		baseURL:   base,
		authz:     "Basic " + base64.StdEncoding.EncodeToString([]byte(cfg.SecretKey+":")),
		secretKey: cfg.SecretKey,
		mode:      mode,
		userAgent: userAgent,
		timeout:   timeout,
		hc:        &hc,
		now:       time.Now,

		keyRetention: cmp.Or(cfg.KeyRetention, answers.KeyRetention),
	}, nil
}

// String describes the client without its secret key.
func (c *Client) String() string {
	return fmt.Sprintf("gateway.Client{BaseURL: %q, SecretKey: %s key (redacted)}", c.baseURL, c.mode)
}

// GoString is String for %#v, which would otherwise print the secret key.
func (c *Client) GoString() string { return c.String() }

// defaultTransport is tuned for one busy host: the relay runs many workers
// against the same gateway, and the standard library's default of two idle
// connections per host would make most calls pay for a new TLS handshake.
func defaultTransport() *http.Transport {
	return &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   5 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          200,
		MaxIdleConnsPerHost:   100,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
}

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

// checkBaseURL validates a base URL and returns it without a trailing slash,
// ready for "/v1/..." to be appended.
func checkBaseURL(raw string) (string, error) {
	if raw == "" {
		raw = DefaultBaseURL
	}
	u, err := url.Parse(raw)
	if err != nil {
		// url.Parse quotes the input; a base URL is not secret.
		return "", fmt.Errorf("error parsing base URL: %w", err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return "", fmt.Errorf("base URL %q: scheme must be http or https", raw)
	case u.Host == "":
		return "", fmt.Errorf("base URL %q: no host", raw)
	case u.User != nil:
		// Go would turn userinfo into its own Authorization header; ours must
		// be the only credential.
		return "", errors.New("base URL must not contain user information")
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return "", fmt.Errorf("base URL %q: must not have a query or fragment", raw)
	}
	return strings.TrimRight(u.String(), "/"), nil
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

// call is one request to make.
type call struct {
	op             payment.Operation
	method         string
	path           string // already escaped
	body           any    // nil for GET
	idempotencyKey string
	// decode, if set, reads a 2xx body in place of a Payment (a list call).
	decode func(raw []byte) error
}

// Confirm asks the gateway to approve a payment (POST /v1/payments/confirm).
// idempotencyKey must be the payment's confirm key, the same on every retry.
func (c *Client) Confirm(ctx context.Context, req gateway.ConfirmRequest, idempotencyKey string) gateway.Result {
	op := payment.OperationConfirm
	if err := checkSegment("paymentKey", req.PaymentKey); err != nil {
		return notSent(op, err)
	}
	if req.OrderID == "" {
		return notSent(op, errors.New("orderId is empty"))
	}
	if req.Amount <= 0 {
		return notSent(op, fmt.Errorf("amount %d is not positive", req.Amount))
	}
	r := c.do(ctx, call{
		op:             op,
		method:         http.MethodPost,
		path:           "/v1/payments/confirm",
		body:           confirmBody{PaymentKey: req.PaymentKey, OrderID: req.OrderID, Amount: req.Amount},
		idempotencyKey: idempotencyKey,
	})
	return requireSubject(r, op, req.PaymentKey, req.OrderID)
}

// Cancel asks the gateway to refund all or part of a payment
// (POST /v1/payments/{paymentKey}/cancel). idempotencyKey must be the cancel
// request's own key, the same on every retry of that cancel.
func (c *Client) Cancel(ctx context.Context, paymentKey string, req gateway.CancelRequest, idempotencyKey string) gateway.Result {
	op := payment.OperationCancel
	if err := checkSegment("paymentKey", paymentKey); err != nil {
		return notSent(op, err)
	}
	if req.Reason == "" {
		return notSent(op, errors.New("cancel reason is empty"))
	}
	if req.Amount < 0 {
		return notSent(op, fmt.Errorf("cancel amount %d is negative", req.Amount))
	}
	if req.Unpaid {
		r := c.do(ctx, call{
			op: op, method: http.MethodPost, path: "/v1/payments/" + url.PathEscape(paymentKey) + "/cancel",
			body: unpaidCancelBody{CancelReason: req.Reason}, idempotencyKey: idempotencyKey,
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
	r := c.do(ctx, call{
		op:     op,
		method: http.MethodPost,
		path:   "/v1/payments/" + url.PathEscape(paymentKey) + "/cancel",
		body: cancelBody{
			CancelReason:         req.Reason,
			CancelAmount:         req.Amount,
			RefundableAmount:     req.RefundableAmount,
			RefundReceiveAccount: tossRefundAccount(req.RefundAccount),
		},
		idempotencyKey: idempotencyKey,
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
	if err := checkSegment("paymentKey", paymentKey); err != nil {
		return notSent(op, err)
	}
	return c.do(ctx, call{op: op, method: http.MethodGet, path: "/v1/payments/" + url.PathEscape(paymentKey)})
}

// LookupByOrderID fetches a payment by our order ID
// (GET /v1/payments/orders/{orderId}). It finds the payment even when we never
// learned its paymentKey, e.g. after a confirm whose answer was lost.
func (c *Client) LookupByOrderID(ctx context.Context, orderID string) gateway.Result {
	op := payment.OperationLookup
	if err := checkSegment("orderId", orderID); err != nil {
		return notSent(op, err)
	}
	return c.do(ctx, call{op: op, method: http.MethodGet, path: "/v1/payments/orders/" + url.PathEscape(orderID)})
}

// checkSegment rejects a value that cannot be one path segment. PathEscape
// leaves "." and ".." as they are, and a server or proxy that cleans paths
// would resolve them to another endpoint.
func checkSegment(name, v string) error {
	switch v {
	case "":
		return fmt.Errorf("%s is empty", name)
	case ".", "..":
		return fmt.Errorf("%s %q is not a valid path segment", name, v)
	}
	return nil
}

// checkIdempotencyKey enforces the gateway's limit and keeps the key to
// visible ASCII: anything else is either rejected by net/http before sending
// (which would look like a transient failure, retried forever) or altered on
// the way, which would silently break idempotency.
func checkIdempotencyKey(key string) error {
	if key == "" {
		return errors.New("idempotency key is empty")
	}
	if len(key) > maxIdempotencyKeyLen {
		return fmt.Errorf("idempotency key is %d characters, more than %d", len(key), maxIdempotencyKeyLen)
	}
	for i := 0; i < len(key); i++ {
		if key[i] <= ' ' || key[i] > '~' {
			return errors.New("idempotency key contains characters other than visible ASCII")
		}
	}
	return nil
}

// notSent is the Result of a request the client refused to send.
func notSent(op payment.Operation, err error) gateway.Result {
	return gateway.Result{Err: fmt.Errorf("error validating %s request: %w: %w", op, err, gateway.ErrNotSent)}
}

// errorBody is the gateway's error answer.
type errorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// do makes one call and turns whatever happened into a Result.
func (c *Client) do(ctx context.Context, cl call) gateway.Result {
	if cl.method == http.MethodPost {
		// Checked here, not only in Confirm and Cancel, so that no POST can
		// ever leave without a key.
		if err := checkIdempotencyKey(cl.idempotencyKey); err != nil {
			return notSent(cl.op, err)
		}
	}
	start := c.now()
	r := c.send(ctx, cl)
	r.Latency = c.now().Sub(start)
	return r
}

func (c *Client) send(ctx context.Context, cl call) gateway.Result {
	var body io.Reader
	if cl.body != nil {
		b, err := json.Marshal(cl.body)
		if err != nil {
			return notSent(cl.op, fmt.Errorf("error encoding body: %w", err))
		}
		body = bytes.NewReader(b)
	}

	// The timeout is a context deadline rather than http.Client.Timeout so
	// that it holds for a caller-supplied HTTPClient too, and covers reading
	// the body.
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()

	req, err := http.NewRequestWithContext(ctx, cl.method, c.baseURL+cl.path, body)
	if err != nil {
		return notSent(cl.op, fmt.Errorf("error building request: %w", err))
	}
	req.Header.Set("Authorization", c.authz)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	if cl.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if cl.idempotencyKey != "" {
		req.Header.Set("Idempotency-Key", cl.idempotencyKey)
		// net/http silently resends a request carrying an Idempotency-Key
		// when a reused keep-alive connection turns out dead. That would be
		// a second gateway call with no attempt row of its own; the relay
		// is the one retry layer, so make the request non-replayable.
		req.GetBody = nil
	}

	resp, err := c.hc.Do(req)
	if err != nil {
		// net/http's errors name the method and URL, never the headers, and
		// the base URL cannot hold credentials (checkBaseURL).
		return gateway.Result{Err: fmt.Errorf("error calling gateway %s: %w", cl.op, err)}
	}
	defer resp.Body.Close()

	r := gateway.Result{HTTPStatus: resp.StatusCode}
	raw, err := readBody(resp.Body)
	if err != nil {
		r.Err = fmt.Errorf("error reading gateway %s answer (HTTP %d): %w", cl.op, resp.StatusCode, err)
		return r
	}

	if resp.StatusCode >= 200 && resp.StatusCode <= 299 && cl.decode != nil {
		if err := cl.decode(raw); err != nil {
			r.Err = fmt.Errorf("error reading gateway %s answer (HTTP %d): %w", cl.op, resp.StatusCode, err)
		}
		return r
	}
	if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		p, err := parsePayment(raw)
		if err != nil {
			// Not retried blindly: Classify reads a 2xx without a usable
			// Payment as unclear, because the gateway may have done the work.
			r.Err = fmt.Errorf("error reading gateway %s answer (HTTP %d): %w", cl.op, resp.StatusCode, err)
			return r
		}
		r.Payment = p
		return r
	}

	var eb errorBody
	if json.Unmarshal(raw, &eb) == nil && eb.Code != "" {
		r.Code, r.Message = eb.Code, eb.Message
		return r
	}
	// An error status without the gateway's {code, message}: typically a
	// proxy or load balancer page. Classify falls back to the status.
	detail := ""
	if loc := resp.Header.Get("Location"); loc != "" && resp.StatusCode >= 300 && resp.StatusCode <= 399 {
		detail = fmt.Sprintf(", redirect to %q", c.redact(loc))
	}
	r.Err = fmt.Errorf("error reading gateway %s answer: HTTP %d without an error code (content type %q%s, body %q)",
		cl.op, resp.StatusCode, resp.Header.Get("Content-Type"), detail, c.snippet(raw))
	return r
}

// errBodyTooLarge is wrapped when a response exceeds maxBodyBytes.
var errBodyTooLarge = fmt.Errorf("body exceeds %d bytes", maxBodyBytes)

// readBody reads a whole response body, up to maxBodyBytes.
func readBody(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxBodyBytes+1))
	if err != nil {
		return nil, fmt.Errorf("error reading body: %w", err)
	}
	if len(b) > maxBodyBytes {
		return nil, errBodyTooLarge
	}
	return b, nil
}

// snippet returns the start of an unexpected body for an error message, with
// the secret key and its Basic encoding removed first: a misbehaving proxy
// may echo request headers.
func (c *Client) snippet(b []byte) string {
	s := c.redact(string(b))
	s = strings.Join(strings.Fields(strings.ToValidUTF8(s, "?")), " ")
	if len(s) > maxSnippetBytes {
		s = strings.ToValidUTF8(s[:maxSnippetBytes], "") + "…"
	}
	return s
}

// redact removes the secret key, in any form we send it, from s.
func (c *Client) redact(s string) string {
	token := strings.TrimPrefix(c.authz, "Basic ")
	s = strings.ReplaceAll(s, token, "[redacted]")
	// The token without its padding, as some echo services print it.
	s = strings.ReplaceAll(s, strings.TrimRight(token, "="), "[redacted]")
	return strings.ReplaceAll(s, c.secretKey, "[redacted]")
}

func tossRefundAccount(a *payment.RefundAccount) *refundReceiveAccount {
	if a == nil {
		return nil
	}
	return &refundReceiveAccount{Bank: a.Bank, AccountNumber: a.AccountNumber, HolderName: a.HolderName}
}
