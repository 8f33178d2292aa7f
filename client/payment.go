package client

import (
	"context"
	"net/url"
	"strconv"
	"time"
)

// Status is where a payment stands.
type Status string

// The payment states.
const (
	StatusReady             Status = "ready"
	StatusConfirming        Status = "confirming"
	StatusConfirmed         Status = "confirmed"
	StatusFailed            Status = "failed"
	StatusExpired           Status = "expired"
	StatusUnknown           Status = "unknown"
	StatusCanceling         Status = "canceling"
	StatusCanceled          Status = "canceled"
	StatusPartiallyCanceled Status = "partially_canceled"
	// StatusWaitingForDeposit: a virtual account was issued
	// (Payment.VirtualAccount) and the customer has not paid into it yet;
	// it may take days. Not in flight: WaitPayment returns on it.
	StatusWaitingForDeposit Status = "waiting_for_deposit"
)

// InFlight reports whether the relay is still at work on a payment in this
// state (confirming or canceling): what WaitPayment waits out.
func (s Status) InFlight() bool { return s == StatusConfirming || s == StatusCanceling }

// Payment is a payment as the api shows it. Times are UTC.
type Payment struct {
	ID string `json:"id"`
	// Owner is the checkout service the payment belongs to: the owner of
	// the API key that created it.
	Owner     string `json:"owner"`
	OrderID   string `json:"orderId"`
	OrderName string `json:"orderName"`
	Amount    int64  `json:"amount"`
	Currency  string `json:"currency"`
	// Gateway is the gateway the payment goes through: "toss" or "portone".
	Gateway        string     `json:"gateway"`
	Status         Status     `json:"status"`
	PaymentKey     string     `json:"paymentKey,omitempty"`
	ApprovedAmount int64      `json:"approvedAmount"`
	BalanceAmount  int64      `json:"balanceAmount"`
	CanceledAmount int64      `json:"canceledAmount"`
	Method         string     `json:"method"`
	ApprovedAt     *time.Time `json:"approvedAt"`
	// Failure is why the payment failed, expired or went unknown.
	Failure *Failure `json:"failure,omitempty"`
	// VirtualAccount is the account to show the customer for a payment by
	// bank transfer; nil for every other payment.
	VirtualAccount *VirtualAccount `json:"virtualAccount,omitempty"`
	CreatedAt      time.Time       `json:"createdAt"`
	UpdatedAt      time.Time       `json:"updatedAt"`
	// Version grows with every change; of two reads (or webhook events) of
	// a payment, the one with the higher version is the newer.
	Version int64    `json:"version"`
	Cancels []Cancel `json:"cancels"`
	// Attempts are the newest of the payment's gateway calls (at most 50),
	// oldest first; AttemptCount is how many there are in all, and
	// ListAttempts reads the older ones.
	Attempts     []Attempt `json:"attempts"`
	AttemptCount int       `json:"attemptCount"`
}

// AttemptPage is a page of a payment's gateway calls (ListAttempts).
type AttemptPage struct {
	// Attempts are oldest first.
	Attempts     []Attempt `json:"attempts"`
	AttemptCount int       `json:"attemptCount"`
	// NextBefore, when set, is the before that reads the page of older
	// attempts; nil when this page holds the oldest.
	NextBefore *int64 `json:"nextBefore"`
}

// VirtualAccount is the bank account a gateway issued for a payment by
// bank transfer. DueDate is nil when the gateway gave none.
type VirtualAccount struct {
	Bank          string     `json:"bank"`
	AccountNumber string     `json:"accountNumber"`
	HolderName    string     `json:"holderName"`
	DueDate       *time.Time `json:"dueDate"`
}

// RefundAccount is the customer's bank account for the refund of a
// deposited virtual-account payment (the cancel's refundReceiveAccount).
type RefundAccount struct {
	Bank          string `json:"bank"`
	AccountNumber string `json:"accountNumber"`
	HolderName    string `json:"holderName"`
}

// RefundAccountAudit is what a cancel keeps of its refund account.
type RefundAccountAudit struct {
	Bank         string `json:"bank"`
	AccountLast4 string `json:"accountLast4"`
}

// Failure is why a payment or a cancel failed, in the gateway's words.
type Failure struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Cancel is one cancel (refund) request of a payment.
type Cancel struct {
	ID             string   `json:"id"`
	Kind           string   `json:"kind"`
	Amount         *int64   `json:"amount"` // nil: the whole balance
	Reason         string   `json:"reason"`
	Status         string   `json:"status"`
	IdempotencyKey string   `json:"idempotencyKey"`
	CanceledAmount int64    `json:"canceledAmount"`
	TransactionKey string   `json:"transactionKey,omitempty"`
	Failure        *Failure `json:"failure,omitempty"`
	// RefundReceiveAccount is what the cancel keeps of its refund account.
	RefundReceiveAccount *RefundAccountAudit `json:"refundReceiveAccount,omitempty"`
	CreatedAt            time.Time           `json:"createdAt"`
	CompletedAt          *time.Time          `json:"completedAt"`
}

// Attempt is one call the relay made to the gateway for a payment.
type Attempt struct {
	ID             int64      `json:"id"`
	CancelID       string     `json:"cancelId,omitempty"`
	Operation      string     `json:"operation"`
	IdempotencyKey string     `json:"idempotencyKey"`
	HTTPStatus     *int       `json:"httpStatus"`
	GatewayCode    string     `json:"gatewayCode"`
	GatewayMessage string     `json:"gatewayMessage"`
	Classification string     `json:"classification"`
	LatencyMs      *float64   `json:"latencyMs"`
	RequestedAt    time.Time  `json:"requestedAt"`
	FinishedAt     *time.Time `json:"finishedAt"`
	Error          string     `json:"error"`
	Note           string     `json:"note"`
}

// CreatePaymentRequest is a payment intent. Creating one for an order that
// has the same intent already answers with that payment.
type CreatePaymentRequest struct {
	OrderID   string `json:"orderId"`
	Amount    int64  `json:"amount"`
	OrderName string `json:"orderName"`
	// Currency defaults to KRW.
	Currency string `json:"currency,omitempty"`
	// Gateway picks the gateway ("toss" or "portone"); the deployment's
	// default when empty.
	Gateway string `json:"gateway,omitempty"`
	// PaymentKey is, for PortOne only, the paymentId the checkout will hand
	// PortOne's browser SDK. Leave it empty to have the api make one: the
	// created Payment's PaymentKey is then the id to hand the SDK, and the
	// one the confirm must name.
	PaymentKey string `json:"paymentKey,omitempty"`
}

// ConfirmRequest asks for a payment the customer authenticated to be
// confirmed with the gateway; PaymentKey is what the gateway's checkout
// widget handed back.
type ConfirmRequest struct {
	PaymentKey string `json:"paymentKey"`
	Amount     int64  `json:"amount"`
	// PaymentToken is PortOne's paymentToken from requestPayment, for a
	// PortOne payment of a deployment in manual confirm
	// (PORTONE_CONFIRM_MODE=manual); leave it empty otherwise.
	PaymentToken string `json:"paymentToken,omitempty"`
}

// CancelRequest asks for a refund; Amount zero refunds the whole balance.
type CancelRequest struct {
	Reason string `json:"reason"`
	Amount int64  `json:"amount,omitempty"`
	// RefundReceiveAccount is required to refund a deposited
	// virtual-account payment and refused for any other.
	RefundReceiveAccount *RefundAccount `json:"refundReceiveAccount,omitempty"`
}

// CreatePayment records a payment intent (status ready).
func (c *Client) CreatePayment(ctx context.Context, req CreatePaymentRequest, opts ...CallOption) (*Payment, error) {
	var p Payment
	return &p, c.call(ctx, opCreatePayment, opCreatePayment.fill(), nil, req, &p, opts)
}

// ConfirmPayment asks for a payment to be confirmed; the answer is the
// payment in confirming (the relay does the rest: WaitPayment for the
// outcome, or a webhook).
func (c *Client) ConfirmPayment(ctx context.Context, id string, req ConfirmRequest, opts ...CallOption) (*Payment, error) {
	var p Payment
	return &p, c.call(ctx, opConfirmPayment, opConfirmPayment.fill(id), nil, req, &p, opts)
}

// CancelPayment asks for a refund of all or (with an Amount) part of a
// payment; the answer is the payment in canceling, or canceled when it had
// not been confirmed. Each call is one refund: retries of it carry its
// Idempotency-Key, so they never refund twice.
func (c *Client) CancelPayment(ctx context.Context, id string, req CancelRequest, opts ...CallOption) (*Payment, error) {
	var p Payment
	return &p, c.call(ctx, opCancelPayment, opCancelPayment.fill(id), nil, req, &p, opts)
}

// GetPayment reads a payment, with its cancels and gateway calls.
func (c *Client) GetPayment(ctx context.Context, id string) (*Payment, error) {
	var p Payment
	return &p, c.call(ctx, opGetPayment, opGetPayment.fill(id), nil, nil, &p, nil)
}

// ListAttempts reads a page of a payment's gateway calls: the newest limit
// (0: the api's default, 50; at most 200) of those older than the attempt
// id before (0: from the newest). Follow NextBefore to read them all.
func (c *Client) ListAttempts(ctx context.Context, id string, before int64, limit int) (*AttemptPage, error) {
	q := url.Values{}
	if before > 0 {
		q.Set("before", strconv.FormatInt(before, 10))
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var page AttemptPage
	return &page, c.call(ctx, opListAttempts, opListAttempts.fill(id), q, nil, &page, nil)
}

// GetPaymentByOrderID reads the payment of an order.
func (c *Client) GetPaymentByOrderID(ctx context.Context, orderID string) (*Payment, error) {
	var p Payment
	return &p, c.call(ctx, opGetByOrderID, opGetByOrderID.fill(), url.Values{"orderId": {orderID}}, nil, &p, nil)
}

// MaxWaitPerRequest is the longest one wait request may last (the api's
// cap); WaitPayment asks again for longer waits.
const MaxWaitPerRequest = 30 * time.Second

// WaitPayment waits up to timeout for a payment to leave confirming or
// canceling, and returns it as it then stands: check Status (still
// InFlight when the time ran out). The api answers as soon as the payment
// changes, so one call usually returns within a second of the outcome.
func (c *Client) WaitPayment(ctx context.Context, id string, timeout time.Duration) (*Payment, error) {
	deadline := time.Now().Add(timeout)
	for {
		wait := min(time.Until(deadline), MaxWaitPerRequest).Truncate(time.Millisecond)
		q := url.Values{}
		if wait > 0 {
			q.Set("wait", wait.String())
		}
		var p Payment
		if err := c.call(ctx, opGetPayment, opGetPayment.fill(id), q, nil, &p, nil); err != nil {
			return nil, err
		}
		if !p.Status.InFlight() || wait <= 0 {
			return &p, nil
		}
	}
}
