// Package payment holds the domain of the payment outbox: the Payment, its
// states and the transitions between them, and the errors the rest of the
// system speaks in. It imports nothing of the project, so every other package
// can depend on it.
package payment

import (
	"strconv"
	"strings"
	"time"
)

// Status is where a payment stands. The values are stored in the database and
// returned over HTTP, so they never change meaning.
type Status string

// The payment states; docs/design.md draws them.
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
	// StatusWaitingForDeposit: the gateway issued a virtual account and the
	// customer has not transferred the money yet (docs/design.md section
	// 19). Not unknown: nothing went wrong, the customer decides when.
	StatusWaitingForDeposit Status = "waiting_for_deposit"
)

// transitions lists every legal move of a payment, and nothing else moves
// one: the store refuses to save a change that is not listed here (see
// CheckTransition), and its UPDATE only matches the status the change was
// computed from. docs/design.md draws the same table.
var transitions = map[Status][]Status{
	// A ready intent of a gateway that charges before our confirm (PortOne)
	// is never assumed untouched: its cancel waits in canceling for a
	// lookup, and a sweep that finds it paid adopts the charge (kept,
	// refunded by compensation, or seen refunded already).
	StatusReady: {StatusConfirming, StatusCanceled, StatusCanceling, StatusConfirmed, StatusPartiallyCanceled},
	// An approval may arrive already refunded in whole or part (seen on a
	// lookup), or with a cancel to run: the customer's waiting one, or a
	// compensation for an approval we cannot keep.
	// A virtual account issued at the confirm waits for its deposit.
	StatusConfirming: {StatusConfirmed, StatusFailed, StatusExpired, StatusUnknown,
		StatusCanceling, StatusCanceled, StatusPartiallyCanceled, StatusWaitingForDeposit},
	// unknown is settled by the gateway's word, which may be any outcome; a
	// cancel the relay gave up on is sent again (canceling).
	StatusUnknown: {StatusConfirmed, StatusFailed, StatusExpired, StatusCanceling,
		StatusCanceled, StatusPartiallyCanceled, StatusWaitingForDeposit},
	// The deposit arrives (confirmed; already partly or wholly refunded
	// at the gateway when a lookup sees it late; canceling when it cannot
	// be kept), the due date passes with a lookup showing none (expired),
	// or the shop cancels first: the account is closed through the outbox
	// (canceling, then canceled with nothing refunded).
	// A deposit of another amount waits in unknown for the customer's
	// refund account (HoldForRefundAccount).
	StatusWaitingForDeposit: {StatusConfirmed, StatusExpired, StatusCanceling, StatusCanceled,
		StatusPartiallyCanceled, StatusUnknown},
	// A refund made outside the relay (the gateway's console) is adopted.
	StatusConfirmed:         {StatusCanceling, StatusCanceled, StatusPartiallyCanceled},
	StatusPartiallyCanceled: {StatusCanceling, StatusCanceled},
	// A close of an undeposited virtual account the gateway refused goes
	// back to waiting for the deposit.
	StatusCanceling: {StatusCanceled, StatusPartiallyCanceled, StatusConfirmed, StatusUnknown,
		StatusWaitingForDeposit},
	// We said "no charge" and a lookup shows the gateway charged: the
	// gateway's record of the customer's money wins, and is then handled
	// like any approval.
	// A deposit that cannot be kept, seen after the account was recorded
	// expired, waits in unknown for the customer's refund account.
	StatusFailed:  {StatusConfirmed, StatusCanceling, StatusCanceled, StatusPartiallyCanceled, StatusUnknown},
	StatusExpired: {StatusConfirmed, StatusCanceling, StatusCanceled, StatusPartiallyCanceled, StatusUnknown},
	// A payment canceled before any charge was seen (a PortOne intent whose
	// lookup found nothing paid) is canceled on our word only: a charge
	// that arrives after it is refunded (canceling, by compensation), or
	// was refunded already and stays canceled.
	StatusCanceled: {StatusCanceling},
}

// CanTransition reports whether a payment may move from one state to another.
// Staying in a state is not a move and is always allowed.
func CanTransition(from, to Status) bool {
	if from == to {
		return true
	}
	for _, s := range transitions[from] {
		if s == to {
			return true
		}
	}
	return false
}

// Statuses returns every payment state, in the order of the diagram.
func Statuses() []Status {
	return []Status{StatusReady, StatusConfirming, StatusWaitingForDeposit, StatusConfirmed, StatusFailed,
		StatusExpired, StatusUnknown, StatusCanceling, StatusCanceled, StatusPartiallyCanceled}
}

// AttentionStatuses returns the states whose payments wait on the
// gateway's word: what operators list, the reconciler settles and the
// metrics count. A payment spends seconds in them, or an operator is on
// it, so they stay few however many payments the tables hold, and the
// partial index payments_attention_idx covers exactly them.
func AttentionStatuses() []Status {
	return []Status{StatusUnknown, StatusConfirming, StatusCanceling}
}

// Valid reports whether s is one of the known states.
func (s Status) Valid() bool {
	switch s {
	case StatusReady, StatusConfirming, StatusConfirmed, StatusFailed, StatusExpired,
		StatusUnknown, StatusCanceling, StatusCanceled, StatusPartiallyCanceled, StatusWaitingForDeposit:
		return true
	}
	return false
}

// Terminal reports whether no gateway work is pending for a payment in this
// state. Confirmed and partially canceled payments are terminal for the
// outbox even though a later cancel may move them again.
func (s Status) Terminal() bool {
	switch s {
	case StatusConfirmed, StatusFailed, StatusExpired, StatusCanceled, StatusPartiallyCanceled:
		return true
	}
	return false
}

// Payment is one checkout's payment intent and everything the gateway said
// about it.
type Payment struct {
	ID string
	// Owner is the checkout service the payment belongs to, fixed at
	// create: only its keys (and operators) see and act on it.
	Owner     Owner
	OrderID   string
	OrderName string
	Amount    int64
	Currency  string
	Status    Status
	// Gateway is the gateway the payment goes through (GatewayToss,
	// GatewayPortOne), fixed at create.
	Gateway string

	// PaymentKey is the gateway's key, known once the customer authenticated
	// and the checkout asked us to confirm: Toss's paymentKey, or the
	// paymentId the checkout gave PortOne's browser SDK.
	PaymentKey string
	// ConfirmIdempotencyKey is sent with every confirm call for this payment;
	// it is fixed when the confirm is requested so that retries replay.
	ConfirmIdempotencyKey string
	// ConfirmKeyGeneration counts the confirm keys used; see
	// ConfirmIdempotencyKey (the function).
	ConfirmKeyGeneration int
	// PaymentToken is PortOne's paymentToken in manual confirm, kept from
	// the checkout's confirm until the confirm is settled (ForgetSpentToken)
	// and never shown: see Token.
	PaymentToken Token

	// ApprovedAmount is the gateway's totalAmount at approval.
	ApprovedAmount int64
	// BalanceAmount is what the gateway still holds and could refund.
	BalanceAmount int64
	// CanceledAmount is what has been refunded so far.
	CanceledAmount int64
	Method         string
	ApprovedAt     *time.Time

	FailureCode    string
	FailureMessage string

	CreatedAt          time.Time
	UpdatedAt          time.Time
	ConfirmRequestedAt *time.Time
	// Version counts the saves of the payment, starting at 1: it orders its
	// changes, which UpdatedAt cannot (see the webhook events).
	Version int64

	// NextRecheckAt and RecheckUntil schedule the lookups of a payment whose
	// record rests on not having seen money the gateway could still take
	// without us (RestsOnAbsence): when the relay next asks, and until when
	// it keeps asking. Both nil for every other payment; PlanRecheck keeps
	// them.
	NextRecheckAt *time.Time
	RecheckUntil  *time.Time
	// LookupWantedAt is the newest request for a lookup (a gateway webhook,
	// say) that no lookup has answered yet; nil when none waits.
	LookupWantedAt *time.Time

	// VirtualAccount is the account the gateway issued for a payment by
	// bank transfer, as it gave it; nil for every other payment. It stays
	// after the deposit, for the payment's history and its refund rule.
	VirtualAccount *VirtualAccount
	// DepositSecret is Toss's Payment.secret from the answer that issued
	// the account: a DEPOSIT_CALLBACK is believed only when it carries it
	// (docs/design.md section 19). Never shown.
	DepositSecret Token
	// DepositNextLookAt is when the relay's sweep next looks up a payment
	// waiting for its deposit (DepositSchedule); nil when none is due.
	DepositNextLookAt *time.Time

	// AcknowledgedAt is when an operator took the payment off the alert
	// list in its current status (Acknowledge); nil when no one has, and
	// cleared by any status change.
	AcknowledgedAt *time.Time

	// StoredStatus is the status the row had when it was read. The store
	// sets it and saves only where the row still has it, and only a move
	// from it that the transition table allows; a new payment has none.
	StoredStatus Status

	Cancels []Cancel
	// Attempts are the payment's gateway calls, oldest first. Loaded with
	// its history they are the newest of them only (a bounded number: a
	// payment looked up on every webhook for months has many), and
	// AttemptCount says how many there are in all.
	Attempts     []Attempt
	AttemptCount int
}

// Operation is a kind of gateway call.
type Operation string

// The gateway operations the relay performs.
const (
	OperationConfirm Operation = "confirm"
	OperationCancel  Operation = "cancel"
	OperationLookup  Operation = "lookup"
)

// CancelStatus is where one cancel request stands.
type CancelStatus string

// The cancel request states.
const (
	// CancelWaiting: recorded while the confirm is in flight; it is enqueued
	// when the confirm resolves.
	CancelWaiting CancelStatus = "waiting"
	// CancelPending: its job is in the outbox.
	CancelPending CancelStatus = "pending"
	CancelDone    CancelStatus = "done"
	CancelFailed  CancelStatus = "failed"
	CancelUnknown CancelStatus = "unknown"
	// CancelVoid: the confirm it waited for never charged, so there was
	// nothing to refund.
	CancelVoid CancelStatus = "void"
)

// CancelKind says who asked for a cancel.
type CancelKind string

// The cancel kinds.
const (
	CancelByCustomer CancelKind = "customer"
	// CancelCompensation is issued by the relay for an approval that cannot be
	// kept (the intent was canceled meanwhile, or the amount differs).
	CancelCompensation CancelKind = "compensation"
)

// Cancel is one request to refund all or part of a payment.
type Cancel struct {
	ID        string
	PaymentID string
	Kind      CancelKind
	// Amount is what to refund; zero means the whole balance.
	Amount         int64
	Reason         string
	Status         CancelStatus
	IdempotencyKey string
	CanceledAmount int64
	TransactionKey string
	FailureCode    string
	FailureMessage string
	CreatedAt      time.Time
	CompletedAt    *time.Time
	// RefundAccount is where the refund of a deposited virtual-account
	// payment goes, kept whole only while the cancel may still be sent;
	// RefundBank and RefundLast4 are what the audit keeps after.
	RefundAccount *RefundAccount
	RefundBank    string
	RefundLast4   string

	// StoredStatus is the status the row had when it was read; see
	// Payment.StoredStatus.
	StoredStatus CancelStatus
}

// cancelTransitions lists every legal move of a cancel request.
var cancelTransitions = map[CancelStatus][]CancelStatus{
	// A waiting cancel runs once the confirm is approved, has nothing to
	// refund if it is not, and fails if the approval is smaller than it.
	CancelWaiting: {CancelPending, CancelVoid, CancelFailed},
	// A close of an undeposited virtual account refunds nothing (void).
	CancelPending: {CancelDone, CancelFailed, CancelUnknown, CancelVoid},
	// Given up on: a lookup shows the refund (done) or that it never
	// happened, and then it is sent again (pending), or that it no longer
	// fits the gateway's balance (failed, never sent); or a person decided
	// after checking the gateway (SettleUnknownCancel).
	CancelUnknown: {CancelDone, CancelPending, CancelFailed},
	// Refused by the gateway, and sent again by an operator under a new key
	// (ResendFailedCancel): a refused compensation is money we owe the
	// customer, and a refusal can be temporary (a card company's outage
	// answered as a rejection). Its refundableAmount keeps a second send
	// from refunding twice.
	CancelFailed: {CancelPending},
}

// CanCancelTransition reports whether a cancel may move from one state to
// another; staying is always allowed.
func CanCancelTransition(from, to CancelStatus) bool {
	if from == to {
		return true
	}
	for _, s := range cancelTransitions[from] {
		if s == to {
			return true
		}
	}
	return false
}

// Open reports whether the cancel still has work ahead of it at the gateway
// or waits for the confirm to resolve.
func (s CancelStatus) Open() bool {
	return s == CancelWaiting || s == CancelPending
}

// Attempt is one gateway call as the relay recorded it: a row written before
// the call and completed after it.
type Attempt struct {
	ID             int64
	PaymentID      string
	CancelID       string
	Operation      Operation
	IdempotencyKey string
	// JobID and JobAttempt name the outbox job and its try that made the call.
	JobID      int64
	JobAttempt int
	// RefundableAmount is, for a cancel request, the balance it was sent
	// expecting the gateway to hold (Toss's refundableAmount, PortOne's
	// currentCancellableAmount); 0 for other calls and for requests
	// recorded before it was kept.
	RefundableAmount int64
	RequestedAt      time.Time
	FinishedAt       *time.Time
	Latency          time.Duration
	HTTPStatus       int
	GatewayCode      string
	GatewayMessage   string
	// Classification is how the relay read the answer (gateway.Class), empty
	// while the call is in flight or if the process died during it.
	Classification string
	Error          string
	// Note says what the relay concluded beyond the classification, such as
	// a key change this call justified.
	Note string
	// Gateway is the gateway's record of the payment as this call's answer
	// carried it; nil when the answer carried none.
	Gateway *GatewayRecord
}

// GatewayRecord is the part of the gateway's Payment object an operator
// compares with ours.
type GatewayRecord struct {
	// Status is the gateway's own word (DONE, CANCELED, ...).
	Status             string     `json:"status"`
	OrderID            string     `json:"orderId"`
	TotalAmount        int64      `json:"totalAmount"`
	BalanceAmount      int64      `json:"balanceAmount"`
	Method             string     `json:"method,omitempty"`
	ApprovedAt         *time.Time `json:"approvedAt,omitempty"`
	Cancels            int        `json:"cancels"`
	LastTransactionKey string     `json:"lastTransactionKey,omitempty"`
}

// ConfirmIdempotencyKey returns the Idempotency-Key for a payment's confirm.
// The generation moves only when a lookup showed the gateway did not perform
// the confirm under the previous key.
func ConfirmIdempotencyKey(paymentID string, generation int) string {
	return "confirm-" + paymentID + "-" + strconv.Itoa(generation)
}

// CancelIdempotencyKey returns the Idempotency-Key for one cancel request.
func CancelIdempotencyKey(cancelID string) string {
	return "cancel-" + cancelID
}

// NextCancelIdempotencyKey returns the key that follows current for a cancel
// whose previous key a lookup showed unused: cancel-ID, cancel-ID-2, -3, ….
func NextCancelIdempotencyKey(cancelID, current string) string {
	base := CancelIdempotencyKey(cancelID)
	n := 1
	if rest, ok := strings.CutPrefix(current, base+"-"); ok {
		if v, err := strconv.Atoi(rest); err == nil {
			n = v
		}
	}
	return base + "-" + strconv.Itoa(n+1)
}
