package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/labstack/echo/v4"

	"github.com/payment-outbox/payment-outbox/internal/payment"
	"github.com/payment-outbox/payment-outbox/internal/store"
)

// createPaymentRequest is the body of POST /v1/payments.
type createPaymentRequest struct {
	OrderID   string `json:"orderId"`
	Amount    amount `json:"amount"`
	OrderName string `json:"orderName"`
	Currency  string `json:"currency"`
	// Gateway picks the gateway the payment goes through; the deployment's
	// default (API_DEFAULT_GATEWAY) when empty.
	Gateway string `json:"gateway"`
	// PaymentKey is, for PortOne, the paymentId the checkout will hand
	// PortOne's browser SDK; the api makes one when it is empty. Refused
	// for Toss, whose paymentKey exists only after authentication.
	PaymentKey string `json:"paymentKey"`
}

// toIntent checks the request and converts it to the domain's intent, with
// defaultGateway where the request names none and maxAmount the largest
// amount accepted (see Config.MaxAmount).
func (r createPaymentRequest) toIntent(defaultGateway string, maxAmount int64) (payment.Intent, error) {
	if r.OrderID == "" {
		return payment.Intent{}, payment.Errorf(payment.KindInvalid, payment.CodeInvalidRequest, "orderId is required")
	}
	if !r.Amount.set {
		return payment.Intent{}, payment.Errorf(payment.KindInvalid, payment.CodeInvalidRequest, "amount is required")
	}
	in := payment.Intent{OrderID: r.OrderID, OrderName: r.OrderName, Amount: r.Amount.value, Currency: r.Currency,
		Gateway: r.Gateway, PaymentKey: r.PaymentKey}
	if in.Gateway == "" {
		in.Gateway = defaultGateway
	}
	if err := in.Validate(); err != nil {
		return payment.Intent{}, err
	}
	if err := payment.CheckAmountCeiling(in.Amount, maxAmount); err != nil {
		return payment.Intent{}, err
	}
	return in, nil
}

// confirmPaymentRequest is the body of POST /v1/payments/:id/confirm.
type confirmPaymentRequest struct {
	PaymentKey string `json:"paymentKey"`
	Amount     amount `json:"amount"`
	// PaymentToken is PortOne's paymentToken in manual confirm (required
	// there, refused otherwise: payment.CheckPaymentToken). It is kept
	// with the payment for the relay and never logged or answered.
	PaymentToken string `json:"paymentToken"`
}

func (r confirmPaymentRequest) validate() error {
	if err := payment.ValidatePaymentKey(r.PaymentKey); err != nil {
		return err
	}
	if !r.Amount.set {
		return payment.Errorf(payment.KindInvalid, payment.CodeInvalidRequest, "amount is required")
	}
	if r.Amount.value <= 0 {
		return payment.Errorf(payment.KindInvalid, payment.CodeInvalidRequest, "amount must be a positive integer")
	}
	return payment.ValidatePaymentToken(r.PaymentToken)
}

// cancelPaymentRequest is the body of POST /v1/payments/:id/cancel. Without
// an amount the whole balance is canceled.
type cancelPaymentRequest struct {
	Reason string `json:"reason"`
	Amount amount `json:"amount"`
	// RefundReceiveAccount is the customer's account for the refund of a
	// deposited virtual-account payment (docs/design.md section 19).
	RefundReceiveAccount *refundAccountRequest `json:"refundReceiveAccount"`
}

// refundAccountRequest is the cancel's refundReceiveAccount, named as
// Toss names it.
type refundAccountRequest struct {
	Bank          string `json:"bank"`
	AccountNumber string `json:"accountNumber"`
	HolderName    string `json:"holderName"`
}

// refundAccount is the request's refund account in the domain's words.
func (r cancelPaymentRequest) refundAccount() *payment.RefundAccount {
	if r.RefundReceiveAccount == nil {
		return nil
	}
	a := r.RefundReceiveAccount
	return &payment.RefundAccount{Bank: a.Bank, AccountNumber: a.AccountNumber, HolderName: a.HolderName}
}

// validate checks the request, maxAmount being the largest amount accepted
// (see Config.MaxAmount).
func (r cancelPaymentRequest) validate(maxAmount int64) error {
	if r.Amount.set && r.Amount.value <= 0 {
		// The domain reads zero as "everything"; a client that wrote 0 more
		// likely has a bug than wants a full refund.
		return payment.Errorf(payment.KindInvalid, payment.CodeInvalidRequest,
			"amount must be a positive integer when given; omit it to cancel the whole balance")
	}
	if err := payment.ValidateCancel(r.Reason, r.Amount.value); err != nil {
		return err
	}
	return payment.CheckAmountCeiling(r.Amount.value, maxAmount)
}

// createPayment records a payment intent in ready. A repeat of the same
// intent for an order is answered with the payment already recorded, so a
// checkout may retry a create whose answer it lost.
func (s *Server) createPayment(c echo.Context) error {
	var req createPaymentRequest
	if err := s.readJSON(c, &req); err != nil {
		return err
	}
	in, err := req.toIntent(s.defaultGateway, s.maxAmount)
	if err != nil {
		return err
	}
	in.Owner = ownerOf(c)
	if !slices.Contains(s.gateways, in.Gateway) {
		// A gateway this deployment's relays are not configured for: the
		// confirm would wait in the outbox for a relay that never comes.
		return payment.Errorf(payment.KindInvalid, payment.CodeInvalidRequest,
			"gateway %s is not enabled here (enabled: %s)", in.Gateway, strings.Join(s.gateways, ", "))
	}
	// Version 7: time-ordered ids keep the primary key index append-mostly.
	id, err := uuid.NewV7()
	if err != nil {
		return fmt.Errorf("error generating payment id: %w", err)
	}

	ctx := c.Request().Context()
	var (
		p       payment.Payment
		created bool
		ans     answer
	)
	insert := func(db store.DBTX) error {
		// The store's insert yields to an existing row for the order
		// instead of failing.
		p, created, err = s.store.InsertPayment(ctx, db, id.String(), in)
		if err != nil {
			return fmt.Errorf("error creating payment: %w", err)
		}
		if p.Owner == in.Owner {
			setPaymentID(c, p.ID)
		}
		return nil
	}
	if _, keyed := c.Get(ctxKeyClaim).(*claim); !keyed {
		// One statement, so no explicit transaction.
		if err := insert(s.pool); err != nil {
			return err
		}
		if created {
			c.Response().Header().Set(echo.HeaderLocation, "/v1/payments/"+p.ID)
			return c.JSON(http.StatusCreated, toPaymentResponse(p))
		}
	} else {
		// Under an Idempotency-Key the answer commits with the row.
		err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			if err := insert(tx); err != nil || !created {
				return err
			}
			ans, err = s.answerInTx(c, tx, http.StatusCreated, toPaymentResponse(p),
				map[string]string{echo.HeaderLocation: "/v1/payments/" + p.ID})
			return err
		})
		if err != nil {
			return err
		}
		if created {
			return ans.send(c)
		}
	}
	if !in.Same(p) {
		// The same words whoever owns the order's payment: another owner's
		// is neither shown nor confirmed to be another owner's.
		return payment.Errorf(payment.KindConflict, payment.CodeOrderConflict,
			"order %s already has a payment with a different amount, name, currency, gateway or paymentKey", in.OrderID)
	}
	// The payment may have moved on since the first create; answer with it
	// as it stands, history included, like GET would.
	p, err = s.readPayment(ctx, func(ctx context.Context, tx pgx.Tx) (payment.Payment, error) {
		return s.store.PaymentWithHistory(ctx, tx, reachOf(c), p.ID)
	})
	if err != nil {
		return fmt.Errorf("error reading repeated payment: %w", err)
	}
	return c.JSON(http.StatusOK, toPaymentResponse(p))
}

// confirmPayment moves a ready payment to confirming and puts its confirm
// job into the outbox, in one transaction (payflow.Confirm) that also keeps
// the client's Idempotency-Key answer.
func (s *Server) confirmPayment(c echo.Context) error {
	var req confirmPaymentRequest
	if err := s.readJSON(c, &req); err != nil {
		return err
	}
	if err := req.validate(); err != nil {
		return err
	}
	ctx := c.Request().Context()
	var ans answer
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		p, err := s.flow.Confirm(ctx, tx, reachOf(c), c.Param("id"), req.PaymentKey, req.Amount.value, req.PaymentToken)
		if p.ID != "" {
			setPaymentID(c, p.ID)
		}
		if err != nil {
			return err
		}
		ans, err = s.answerInTx(c, tx, http.StatusAccepted, toPaymentResponse(p), acceptedHeaders(p.ID))
		return err
	})
	if err != nil {
		return fmt.Errorf("error confirming payment: %w", err)
	}
	return ans.send(c)
}

// cancelPayment records a cancel request and puts what it needs into the
// outbox, in one transaction (payflow.Cancel) that also keeps the client's
// Idempotency-Key answer. A payment the gateway never saw is canceled on the
// spot (200); otherwise the refund is work in progress (202), including a
// cancel that waits for an in-flight confirm to resolve.
func (s *Server) cancelPayment(c echo.Context) error {
	var req cancelPaymentRequest
	if err := s.readJSON(c, &req); err != nil {
		return err
	}
	if err := req.validate(s.maxAmount); err != nil {
		return err
	}
	if req.Amount.set && len(c.Request().Header.Values(headerIdempotencyKey)) == 0 {
		// A retried full cancel finds the first one and refunds nothing
		// more; a retried partial cancel is indistinguishable from a second
		// partial refund. Only the client's key can tell them apart.
		return &problemError{status: http.StatusBadRequest, code: codeIdempotencyKeyRequired,
			detail: "a partial cancel (with an amount) needs an Idempotency-Key header, so that a retry cannot refund twice; send one per refund you mean and reuse it on every retry"}
	}
	cancelID, err := uuid.NewV7()
	if err != nil {
		return fmt.Errorf("error generating cancel id: %w", err)
	}
	ctx := c.Request().Context()
	var ans answer
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		p, err := s.flow.Cancel(ctx, tx, reachOf(c), c.Param("id"), cancelID.String(), req.Reason, req.Amount.value, req.refundAccount())
		if p.ID != "" {
			setPaymentID(c, p.ID)
		}
		if err != nil {
			return err
		}
		// Under our lock a payment only reaches canceled here from ready (a
		// canceled one cannot be canceled again): nothing is left to do.
		status, header := http.StatusAccepted, acceptedHeaders(p.ID)
		if p.Status == payment.StatusCanceled {
			status, header = http.StatusOK, nil
		}
		ans, err = s.answerInTx(c, tx, status, toPaymentResponse(p), header)
		return err
	})
	if err != nil {
		return fmt.Errorf("error canceling payment: %w", err)
	}
	return ans.send(c)
}

// getPayment answers with a payment and its history. With ?wait= (a Go
// duration up to MaxWait) it first waits, while the payment is confirming or
// canceling, until it leaves that state or the time is up, and answers with
// it as it then stands: the checkout learns an outcome with one request.
func (s *Server) getPayment(c echo.Context) error {
	wait, err := waitParam(c)
	if err != nil {
		return err
	}
	read := func() (payment.Payment, error) {
		p, err := s.readPayment(c.Request().Context(), func(ctx context.Context, tx pgx.Tx) (payment.Payment, error) {
			return s.store.PaymentWithHistory(ctx, tx, reachOf(c), c.Param("id"))
		})
		if err != nil {
			return p, fmt.Errorf("error getting payment: %w", err)
		}
		return p, nil
	}
	p, err := read()
	if err != nil {
		return err
	}
	setPaymentID(c, p.ID)
	if wait > 0 && inFlight(p.Status) {
		if p, err = s.waitForChange(c, p, wait, read); err != nil {
			return err
		}
	}
	return c.JSON(http.StatusOK, toPaymentResponse(p))
}

// inFlight reports whether a payment waits on the relay: what ?wait= waits
// out.
func inFlight(s payment.Status) bool {
	return slices.Contains(inFlightStatuses, s)
}

// inFlightStatuses are the states inFlight reports.
var inFlightStatuses = []payment.Status{payment.StatusConfirming, payment.StatusCanceling}

// waitForChange waits until the payment is no longer in flight or wait is
// over, and returns it as it then stands. It subscribes before reading
// again, so a change committed between the first read and the subscription
// is not missed.
func (s *Server) waitForChange(c echo.Context, p payment.Payment, wait time.Duration, read func() (payment.Payment, error)) (payment.Payment, error) {
	changed, unsubscribe, ok := s.waiter.subscribe(p.ID)
	if !ok {
		return p, &problemError{status: http.StatusTooManyRequests, code: codeTooManyWaiters,
			detail: "too many requests are waiting on this api process; read the payment without wait, or wait again after Retry-After",
			header: map[string]string{headerRetryAfter: "1"}}
	}
	defer unsubscribe()
	// From here the request mostly waits, holding no connection: it stops
	// counting toward the in-flight cap, which is for requests at work.
	releaseSlot(c)
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		var err error
		if p, err = read(); err != nil || !inFlight(p.Status) {
			return p, err
		}
		select {
		case _, open := <-changed:
			if !open {
				return p, nil // shutting down: answer with what we have
			}
		case <-timer.C:
			return p, nil
		case <-c.Request().Context().Done():
			return p, c.Request().Context().Err()
		}
	}
}

// waitParam reads ?wait=, a Go duration from 0 to MaxWait (0: no wait).
func waitParam(c echo.Context) (time.Duration, error) {
	v, err := singleQueryValue(c.QueryParams(), "wait")
	if err != nil || v == "" {
		return 0, err
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 || d > MaxWait {
		return 0, payment.Errorf(payment.KindInvalid, payment.CodeInvalidRequest,
			"wait must be a duration from 0s to %s such as 10s, not %s", MaxWait, quote(v))
	}
	return d, nil
}

// acceptedHeaders go with a 202: where to read the payment, and how soon
// (GET it with ?wait= to be answered as soon as it settles).
func acceptedHeaders(id string) map[string]string {
	return map[string]string{echo.HeaderLocation: "/v1/payments/" + id, headerRetryAfter: "1"}
}

// headerRetryAfter names the Retry-After header.
const headerRetryAfter = "Retry-After"

// getPaymentByOrderID answers with the payment for ?orderId=, with its
// history.
func (s *Server) getPaymentByOrderID(c echo.Context) error {
	values := c.QueryParams()["orderId"]
	switch {
	case len(values) == 0 || values[0] == "":
		return payment.Errorf(payment.KindInvalid, payment.CodeInvalidRequest, "the orderId query parameter is required")
	case len(values) > 1:
		return payment.Errorf(payment.KindInvalid, payment.CodeInvalidRequest, "the orderId query parameter must be given once")
	}
	orderID := values[0]
	if err := payment.ValidateOrderID(orderID); err != nil {
		return err
	}
	p, err := s.readPayment(c.Request().Context(), func(ctx context.Context, tx pgx.Tx) (payment.Payment, error) {
		return s.store.PaymentByOrderIDWithHistory(ctx, tx, reachOf(c), orderID)
	})
	if err != nil {
		return fmt.Errorf("error getting payment by order id: %w", err)
	}
	setPaymentID(c, p.ID)
	return c.JSON(http.StatusOK, toPaymentResponse(p))
}

// readPayment runs read in a read-only repeatable-read transaction. The
// payment, its cancels and its attempts take three queries; one snapshot
// keeps a relay committing in between from showing a payment whose history
// disagrees with its status.
func (s *Server) readPayment(ctx context.Context, read func(context.Context, pgx.Tx) (payment.Payment, error)) (payment.Payment, error) {
	var p payment.Payment
	opts := pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}
	err := pgx.BeginTxFunc(ctx, s.pool, opts, func(tx pgx.Tx) error {
		var err error
		p, err = read(ctx, tx)
		return err
	})
	return p, err
}

// attentionStatuses are the states whose payments wait on the gateway's
// word: what operators list and the relay's reconciler settles. The list is
// limited to them because the index behind it (payments_attention_idx) is.
var attentionStatuses = payment.AttentionStatuses()

// Defaults and bounds of GET /v1/payments/attention.
const (
	// defaultAttentionOlderThan leaves out payments the relay is working on
	// right now: a confirm normally resolves within seconds.
	defaultAttentionOlderThan = time.Minute
	defaultAttentionLimit     = 100
	maxAttentionLimit         = 1000
)

// listAttention answers GET /v1/payments/attention: payments in unknown,
// confirming or canceling (or the subset ?status=a,b names) whose row has
// not changed for longer than ?olderThan= (a Go duration, default 1m),
// oldest first, at most ?limit= (default 100, at most 1000).
func (s *Server) listAttention(c echo.Context) error {
	q := c.QueryParams()
	statuses, err := attentionQueryStatuses(q["status"])
	if err != nil {
		return err
	}
	olderThan := defaultAttentionOlderThan
	if v, err := singleQueryValue(q, "olderThan"); err != nil {
		return err
	} else if v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return payment.Errorf(payment.KindInvalid, payment.CodeInvalidRequest,
				"olderThan must be a non-negative duration such as 30s, 5m or 2h, not %s", quote(v))
		}
		olderThan = d
	}
	limit := defaultAttentionLimit
	if v, err := singleQueryValue(q, "limit"); err != nil {
		return err
	} else if v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxAttentionLimit {
			return payment.Errorf(payment.KindInvalid, payment.CodeInvalidRequest,
				"limit must be an integer from 1 to %d, not %s", maxAttentionLimit, quote(v))
		}
		limit = n
	}

	ps, err := s.store.ListPayments(c.Request().Context(), s.pool, statuses, s.now().Add(-olderThan), limit, false)
	if err != nil {
		return fmt.Errorf("error listing payments that need attention: %w", err)
	}
	out := paymentListResponse{Payments: make([]paymentSummaryResponse, len(ps))}
	for i, p := range ps {
		out.Payments[i] = toPaymentSummaryResponse(p)
	}
	return c.JSON(http.StatusOK, out)
}

// attentionQueryStatuses reads ?status=, a comma-separated subset of
// attentionStatuses; absent means all of them.
func attentionQueryStatuses(values []string) ([]payment.Status, error) {
	switch {
	case len(values) == 0 || values[0] == "":
		return attentionStatuses, nil
	case len(values) > 1:
		return nil, payment.Errorf(payment.KindInvalid, payment.CodeInvalidRequest,
			"the status query parameter must be given once, as a comma-separated list")
	}
	var out []payment.Status
	for _, name := range strings.Split(values[0], ",") {
		st := payment.Status(strings.TrimSpace(name))
		if !slices.Contains(attentionStatuses, st) {
			return nil, payment.Errorf(payment.KindInvalid, payment.CodeInvalidRequest,
				"status must be a comma-separated list of unknown, confirming and canceling, not %s", quote(string(st)))
		}
		if !slices.Contains(out, st) {
			out = append(out, st)
		}
	}
	return out, nil
}

// singleQueryValue returns a query parameter given at most once.
func singleQueryValue(q url.Values, name string) (string, error) {
	values := q[name]
	switch len(values) {
	case 0:
		return "", nil
	case 1:
		return values[0], nil
	}
	return "", payment.Errorf(payment.KindInvalid, payment.CodeInvalidRequest,
		"the %s query parameter must be given once", name)
}
