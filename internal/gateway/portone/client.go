// Package portone is the client for PortOne's V2 REST API
// (https://api.portone.io) and the table that says what each of its answers
// means. It implements the relay's gateway contract (internal/gateway)
// beside the Toss client (internal/gateway/toss), converting PortOne's records to gateway.Payment.
//
// In PortOne's default flow the customer completes the payment in PortOne's
// browser SDK, so there is nothing for the server to approve: the relay's
// confirm is a lookup (GET /payments/{paymentId}) whose record is verified
// against the intent. A store set to manual confirm (Config.ConfirmMode)
// has the browser SDK only authenticate, and the relay's confirm charges
// (POST /payments/{paymentId}/confirm with the paymentToken). The client
// makes exactly one HTTP call per method and never retries; retries belong
// to the relay. docs/design.md cites the PortOne
// documentation and server SDK every field and error type here comes from.
package portone

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/payment-outbox/payment-outbox/internal/gateway"
	"github.com/payment-outbox/payment-outbox/internal/gateway/httpcall"
	"github.com/payment-outbox/payment-outbox/internal/payment"
)

// DefaultBaseURL is PortOne's API host; test and live payments share it
// (the store's channel decides).
const DefaultBaseURL = "https://api.portone.io"

const (
	// defaultTimeout bounds one call. PortOne recommends a read timeout of
	// at least 60 seconds, as PGs can be slow; the relay passes its own
	// (RELAY_GATEWAY_TIMEOUT).
	defaultTimeout   = 60 * time.Second
	defaultUserAgent = "payment-outbox-portone/1"
	// PortOne's limits on an Idempotency-Key: 16 to 256 ASCII characters.
	minIdempotencyKeyLen = 16
	maxIdempotencyKeyLen = 256
)

// Config configures New. Secret and StoreID are required.
type Config struct {
	// BaseURL is the API root; empty means DefaultBaseURL.
	BaseURL string
	// Secret is the V2 API secret, sent as "Authorization: PortOne
	// <secret>". It is never logged or put in an error.
	Secret string `json:"-"`
	// StoreID is the store the payments belong to ("store-…"). It is sent
	// with every call, and a record of another store is never taken as
	// ours.
	StoreID string
	// Timeout bounds one call, including reading the body; zero means 60s.
	Timeout time.Duration
	// HTTPClient is used if set; the client works on a shallow copy with
	// redirects disabled.
	HTTPClient *http.Client
	// UserAgent is sent on every call if set.
	UserAgent string
	// KeyRetention overrides how long the client says PortOne keeps an
	// Idempotency-Key (KeyRetention); zero means the documented 3 hours.
	// Tests that scale the simulator's retention down set it too.
	KeyRetention time.Duration
	// ConfirmMode is the store's confirm flow (PORTONE_CONFIRM_MODE):
	// browser (the default when empty) or manual.
	ConfirmMode payment.PortOneConfirmMode
}

// String describes the configuration without the secret.
func (cfg Config) String() string {
	secret := `""`
	if cfg.Secret != "" {
		secret = "[redacted]"
	}
	return fmt.Sprintf("portone.Config{BaseURL: %q, Secret: %s, StoreID: %q, Timeout: %s, ConfirmMode: %q}", cfg.BaseURL, secret, cfg.StoreID, cfg.Timeout, cfg.ConfirmMode)
}

// GoString is String for %#v.
func (cfg Config) GoString() string { return cfg.String() }

// Client calls PortOne. It is safe for concurrent use.
type Client struct {
	baseURL   string
	storeID   string
	userAgent string
	timeout   time.Duration
	// caller makes the calls (internal/gateway/httpcall).
	caller *httpcall.Caller
	// now is the clock for Latency.
	now func() time.Time
	// keyRetention: see Config.KeyRetention.
	keyRetention time.Duration
	manual       bool
}

// New returns a Client for cfg. It fails on an empty secret or store id, a
// secret with whitespace, a base URL that is not an absolute http(s) URL, or
// a negative timeout. Errors never contain the secret.
func New(cfg Config) (*Client, error) {
	if cfg.Secret == "" {
		return nil, errors.New("error creating PortOne client: API secret is empty")
	}
	if !httpcall.VisibleASCII(cfg.Secret) {
		// A trailing newline from a mounted secret file would make every
		// call fail with UNAUTHORIZED.
		return nil, errors.New("error creating PortOne client: API secret contains whitespace or non-ASCII characters")
	}
	if cfg.StoreID == "" {
		return nil, errors.New("error creating PortOne client: store id is empty")
	}
	if err := httpcall.CheckSegment("storeId", cfg.StoreID); err != nil {
		return nil, fmt.Errorf("error creating PortOne client: %w", err)
	}
	base, err := httpcall.CheckBaseURL(cfg.BaseURL, DefaultBaseURL)
	if err != nil {
		return nil, fmt.Errorf("error creating PortOne client: %w", err)
	}
	if cfg.KeyRetention < 0 {
		return nil, fmt.Errorf("error creating PortOne client: key retention %s is negative", cfg.KeyRetention)
	}
	mode, err := payment.ParsePortOneConfirmMode(string(cfg.ConfirmMode))
	if err != nil {
		return nil, fmt.Errorf("error creating PortOne client: %w", err)
	}
	// A negative timeout stays negative, and httpcall.New refuses it.
	timeout := cmp.Or(cfg.Timeout, defaultTimeout)
	userAgent := cmp.Or(cfg.UserAgent, defaultUserAgent)
	// PortOne never redirects; the shared client follows none
	// (httpcall.Client says why).
	caller, err := httpcall.New(httpcall.Config{
		Name:          "PortOne",
		BaseURL:       base,
		Authorization: "PortOne " + cfg.Secret,
		UserAgent:     userAgent,
		Timeout:       timeout,
		HTTPClient:    cfg.HTTPClient,
		CheckKey:      checkIdempotencyKey,
		// PortOne reads the header as an RFC 8941 string; checkIdempotencyKey
		// keeps quotes and backslashes out, so quoting adds no escapes.
		KeyHeader:   strconv.Quote,
		ErrorField:  "type",
		DecodeError: decodeError,
	})
	if err != nil {
		return nil, fmt.Errorf("error creating PortOne client: %w", err)
	}
	return &Client{
		baseURL: base, storeID: cfg.StoreID,
		userAgent: userAgent, timeout: timeout, caller: caller, now: time.Now,
		keyRetention: cmp.Or(cfg.KeyRetention, answers.KeyRetention),
		manual:       mode == payment.PortOneConfirmManual,
	}, nil
}

// String describes the client without its secret.
func (c *Client) String() string {
	return fmt.Sprintf("portone.Client{BaseURL: %q, StoreID: %q, Secret: [redacted]}", c.baseURL, c.storeID)
}

// GoString is String for %#v.
func (c *Client) GoString() string { return c.String() }

// Classify implements relay.Gateway: the PortOne table.
func (c *Client) Classify(r gateway.Result) gateway.Class { return answers.Classify(r) }

// StillRunning implements relay.Gateway.
func (c *Client) StillRunning(code string) bool { return answers.StillRunning[code] }

// KeyRetention implements relay.Gateway: how long PortOne keeps an
// Idempotency-Key (the table's, unless Config.KeyRetention overrides it).
func (c *Client) KeyRetention() time.Duration { return c.keyRetention }

// errOtherPayment is wrapped when a 2xx record is not the payment asked
// about (another paymentId, or another store's).
var errOtherPayment = errors.New("answer is about another payment")

// Confirm confirms a payment with PortOne, in the store's confirm mode.
//
// Browser mode: it reads the payment the customer paid in PortOne's browser
// SDK (GET /payments/{paymentId}); the relay confirms it only when the
// record is PAID (Classify) for the intent's amount and currency
// (payment.ApplyApproval, which refunds an approval for anything else by a
// compensating cancel). A record of another store is never returned as a
// Payment. There is nothing to approve, so nothing is sent that could
// charge, and idempotencyKey is not sent: PortOne ignores the header on GET.
//
// Manual mode: it charges the payment the customer authenticated (POST
// /payments/{paymentId}/confirm) with req.PaymentToken, totalAmount and
// currency from the intent (PortOne refuses the confirm when they differ
// from what was authenticated) and our storeId, under idempotencyKey, the
// payment's confirm key, so a retry replays instead of charging again. A
// confirm requested without a token (in browser mode, before the
// deployment switched) is read as in browser mode.
func (c *Client) Confirm(ctx context.Context, req gateway.ConfirmRequest, idempotencyKey string) gateway.Result {
	op := payment.OperationConfirm
	if err := httpcall.CheckSegment("paymentId", req.PaymentKey); err != nil {
		return notSent(op, err)
	}
	if req.Amount <= 0 {
		return notSent(op, fmt.Errorf("amount %d is not positive", req.Amount))
	}
	if c.manual && req.PaymentToken != "" {
		return c.confirmPayment(ctx, req, idempotencyKey)
	}
	return c.getPayment(ctx, op, req.PaymentKey)
}

// confirmBody is POST /payments/{paymentId}/confirm's body
// (ConfirmPaymentBody). totalAmount and currency are PortOne's
// verification parameters: it answers INFORMATION_MISMATCH instead of
// charging when they are not the authenticated payment's.
type confirmBody struct {
	StoreID      string `json:"storeId"`
	PaymentToken string `json:"paymentToken"`
	TotalAmount  int64  `json:"totalAmount"`
	Currency     string `json:"currency"`
}

// confirmPayment is Confirm in manual mode.
//
// PortOne answers a confirm with a summary (ConfirmedPaymentSummary:
// pgTxId, paidAt), not the payment. A summary with both is returned as the
// record after the confirm: PAID for the totalAmount and currency we sent,
// nothing cancelled, which is exact because PortOne confirmed only after
// checking those against the authenticated payment. A summary without them
// is not a charge we can book: it reads as unclear, and a lookup decides.
func (c *Client) confirmPayment(ctx context.Context, req gateway.ConfirmRequest, idempotencyKey string) gateway.Result {
	op := payment.OperationConfirm
	if req.Currency == "" {
		// Without it PortOne would not compare the currency.
		return notSent(op, errors.New("currency is empty"))
	}
	res, raw := c.do(ctx, httpcall.Request{
		Op: op, Method: http.MethodPost, Path: c.paymentPath(req.PaymentKey) + "/confirm",
		Body: confirmBody{
			StoreID: c.storeID, PaymentToken: req.PaymentToken.Reveal(),
			TotalAmount: req.Amount, Currency: req.Currency,
		},
		IdempotencyKey: idempotencyKey,
	})
	if raw == nil {
		return res
	}
	p, err := parseConfirmation(raw, req)
	if err != nil {
		res.Err = c.caller.AnswerError(op, res.HTTPStatus, err)
		return res
	}
	res.Payment = p
	return res
}

// Lookup reads a payment (GET /payments/{paymentId}).
func (c *Client) Lookup(ctx context.Context, paymentID string) gateway.Result {
	op := payment.OperationLookup
	if err := httpcall.CheckSegment("paymentId", paymentID); err != nil {
		return notSent(op, err)
	}
	return c.getPayment(ctx, op, paymentID)
}

func (c *Client) getPayment(ctx context.Context, op payment.Operation, paymentID string) gateway.Result {
	res, raw := c.do(ctx, httpcall.Request{Op: op, Method: http.MethodGet, Path: c.paymentPath(paymentID) + "?storeId=" + url.QueryEscape(c.storeID)})
	if raw == nil {
		return res
	}
	p, err := parsePayment(raw)
	if err == nil && p.PaymentKey != paymentID {
		err = fmt.Errorf("%w: record for paymentId %q, we asked about %q", errOtherPayment, p.PaymentKey, paymentID)
	}
	if err == nil && p.storeID != c.storeID {
		// Never ours to book or refund, whatever it says.
		err = fmt.Errorf("%w: record of store %q, ours is %q", errOtherPayment, p.storeID, c.storeID)
	}
	if err != nil {
		// A 2xx we cannot use: the classification reads it as unclear.
		res.Err = c.caller.AnswerError(op, res.HTTPStatus, err)
		return res
	}
	res.Payment = &p.Payment
	return res
}

// cancelBody is POST /payments/{paymentId}/cancel's body.
type cancelBody struct {
	StoreID string `json:"storeId"`
	// Omitted for a full cancel: PortOne cancels the whole cancellable
	// amount when amount is absent.
	Amount int64  `json:"amount,omitempty"`
	Reason string `json:"reason"`
	// Always sent: PortOne cancels only if its cancellable amount before
	// this cancel equals it, the counterpart of Toss's refundableAmount.
	CurrentCancellableAmount int64 `json:"currentCancellableAmount"`
	// RefundAccount is required for a refund to a bank account (a
	// deposited virtual account).
	RefundAccount *refundAccount `json:"refundAccount,omitempty"`
}

// refundAccount is CancelPaymentBodyRefundAccount. holderPhoneNumber is
// needed by one PG (Smartro) only and is not sent.
type refundAccount struct {
	Bank       string `json:"bank"`
	Number     string `json:"number"`
	HolderName string `json:"holderName"`
}

// closeBody is POST /payments/{paymentId}/virtual-account/close's body.
type closeBody struct {
	StoreID string `json:"storeId"`
}

// Cancel refunds all or part of a payment (POST /payments/{paymentId}/cancel)
// with currentCancellableAmount set to req.RefundableAmount, so no second
// request for one cancel, under any key, can refund twice. idempotencyKey is
// sent as PortOne's Idempotency-Key (an RFC 8941 string, so quoted).
//
// PortOne answers a cancel with the cancellation, not the payment. A
// SUCCEEDED cancellation is returned as the payment's record after it: the
// balance is req.RefundableAmount less the cancelled amount, which is exact
// because PortOne performed it only when its balance was
// req.RefundableAmount. A cancellation still REQUESTED (refunds PortOne
// carries out asynchronously) or FAILED in a 200 is not a refund we can
// book: it reads as unclear, and a lookup decides.
func (c *Client) Cancel(ctx context.Context, paymentID string, req gateway.CancelRequest, idempotencyKey string) gateway.Result {
	op := payment.OperationCancel
	if err := httpcall.CheckSegment("paymentId", paymentID); err != nil {
		return notSent(op, err)
	}
	if req.Unpaid {
		// PortOne's cancel answers PaymentNotPaidError for a payment not
		// paid; an issued account is closed (말소) instead. Its answer is
		// {closedAt}, not the payment, so a 2xx carries no record: the
		// relay looks the payment up to settle it.
		res, _ := c.do(ctx, httpcall.Request{
			Op: op, Method: http.MethodPost, Path: c.paymentPath(paymentID) + "/virtual-account/close",
			Body: closeBody{StoreID: c.storeID}, IdempotencyKey: idempotencyKey,
		})
		return res
	}
	switch {
	case req.Reason == "":
		return notSent(op, errors.New("cancel reason is empty"))
	case req.Amount < 0:
		return notSent(op, fmt.Errorf("cancel amount %d is negative", req.Amount))
	case req.RefundableAmount <= 0:
		// Without it PortOne skips its balance check, and a cancel sent
		// again under a new key could refund twice.
		return gateway.AmountsRefused(op, fmt.Errorf("PortOne refundable amount %d is not positive", req.RefundableAmount))
	case req.Amount > req.RefundableAmount:
		return gateway.AmountsRefused(op, fmt.Errorf("PortOne cancel amount %d exceeds the refundable amount %d", req.Amount, req.RefundableAmount))
	}
	res, raw := c.do(ctx, httpcall.Request{
		Op: op, Method: http.MethodPost, Path: c.paymentPath(paymentID) + "/cancel",
		Body: cancelBody{StoreID: c.storeID, Amount: req.Amount, Reason: req.Reason, CurrentCancellableAmount: req.RefundableAmount,
			RefundAccount: portOneRefundAccount(req.RefundAccount)},
		IdempotencyKey: idempotencyKey,
	})
	if raw == nil {
		return res
	}
	p, err := parseCancellation(raw, paymentID, req)
	if err != nil {
		res.Err = c.caller.AnswerError(op, res.HTTPStatus, err)
		return res
	}
	res.Payment = p
	return res
}

func (c *Client) paymentPath(paymentID string) string {
	return "/payments/" + url.PathEscape(paymentID)
}

// errorBody is PortOne's error answer: every V2 error carries its type;
// PG_PROVIDER adds the PG's own code and message.
type errorBody struct {
	Type      string `json:"type"`
	Message   string `json:"message"`
	PgCode    string `json:"pgCode"`
	PgMessage string `json:"pgMessage"`
}

// decodeError reads PortOne's {type, message}, with the PG's own code and
// message added to the message; a body without a type is not one.
func decodeError(raw []byte) (code, message string, ok bool) {
	var eb errorBody
	if json.Unmarshal(raw, &eb) != nil || eb.Type == "" {
		return "", "", false
	}
	message = eb.Message
	if eb.PgCode != "" || eb.PgMessage != "" {
		message = strings.TrimSpace(fmt.Sprintf("%s (PG %s: %s)", eb.Message, eb.PgCode, eb.PgMessage))
	}
	return eb.Type, message, true
}

// do makes one call. It returns the Result so far and, for a 2xx, the body
// for the caller to read (nil otherwise: the Result is complete).
func (c *Client) do(ctx context.Context, req httpcall.Request) (gateway.Result, []byte) {
	start := c.now()
	res, raw := c.caller.Do(ctx, req)
	res.Latency = c.now().Sub(start)
	return res, raw
}

// notSent is the Result of a request the client refused to send.
func notSent(op payment.Operation, err error) gateway.Result {
	return httpcall.NotSent("PortOne", op, err)
}

// checkIdempotencyKey enforces PortOne's 16–256 characters and keeps the key
// to visible ASCII without quotes or backslashes, so that the quoted header
// is the key and nothing else.
func checkIdempotencyKey(key string) error {
	if len(key) < minIdempotencyKeyLen || len(key) > maxIdempotencyKeyLen {
		return fmt.Errorf("idempotency key is %d characters; PortOne takes %d to %d", len(key), minIdempotencyKeyLen, maxIdempotencyKeyLen)
	}
	if !httpcall.VisibleASCII(key) || strings.ContainsAny(key, `"\`) {
		return errors.New("idempotency key contains characters other than visible ASCII, or a quote")
	}
	return nil
}

func portOneRefundAccount(a *payment.RefundAccount) *refundAccount {
	if a == nil {
		return nil
	}
	return &refundAccount{Bank: a.Bank, Number: a.AccountNumber, HolderName: a.HolderName}
}
