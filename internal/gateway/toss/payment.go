package toss

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/payment-outbox/payment-outbox/internal/gateway"
	"github.com/payment-outbox/payment-outbox/internal/payment"
)

// The Payment statuses the gateway reports. They are untyped so that they
// compare directly with Payment.Status, which holds whatever the gateway sent,
// including a status this list does not know yet.
const (
	StatusReady             = "READY"
	StatusInProgress        = "IN_PROGRESS"
	StatusWaitingForDeposit = "WAITING_FOR_DEPOSIT"
	StatusDone              = "DONE"
	StatusCanceled          = "CANCELED"
	StatusPartialCanceled   = "PARTIAL_CANCELED"
	StatusAborted           = "ABORTED"
	StatusExpired           = "EXPIRED"
)

// tossPhases maps the Toss statuses to phases.
var tossPhases = map[string]gateway.Phase{
	StatusReady:             gateway.PhaseOpen,
	StatusInProgress:        gateway.PhaseOpen,
	StatusWaitingForDeposit: gateway.PhaseWaiting,
	StatusDone:              gateway.PhaseCharged,
	StatusCanceled:          gateway.PhaseCharged,
	StatusPartialCanceled:   gateway.PhaseCharged,
	StatusAborted:           gateway.PhaseFailed,
	StatusExpired:           gateway.PhaseExpired,
}

// errUnusablePayment is wrapped when a 2xx body is JSON but does not carry
// what any Payment carries; the caller cannot tell what the gateway did.
var errUnusablePayment = errors.New("payment has no paymentKey or status")

// errMissingAmount is wrapped when a Payment that says money moved lacks
// totalAmount or balanceAmount (absent or null). Reading it as 0 would tell
// the relay that nothing was charged, or that everything was refunded.
var errMissingAmount = errors.New("payment has no amount")

// wirePayment is the JSON shape of the gateway's Payment. It is separate from
// Payment so that the lenient decoding types stay out of the exported API.
// Its amounts are pointers so that an absent or null amount (nil) is not read
// as 0; parsePayment decides whether the status can do without it.
type wirePayment struct {
	PaymentKey         string       `json:"paymentKey"`
	OrderID            string       `json:"orderId"`
	OrderName          string       `json:"orderName"`
	Status             string       `json:"status"`
	Method             string       `json:"method"`
	Currency           string       `json:"currency"`
	LastTransactionKey string       `json:"lastTransactionKey"`
	TotalAmount        *wireAmount  `json:"totalAmount"`
	BalanceAmount      *wireAmount  `json:"balanceAmount"`
	RequestedAt        wireTime     `json:"requestedAt"`
	ApprovedAt         wireTime     `json:"approvedAt"`
	Cancels            []wireCancel `json:"cancels"`
	VirtualAccount     *wireAccount `json:"virtualAccount"`
	Secret             string       `json:"secret"`
}

// wireAccount is Toss's virtualAccount object, the part the outbox reads.
type wireAccount struct {
	AccountNumber string   `json:"accountNumber"`
	BankCode      string   `json:"bankCode"`
	CustomerName  string   `json:"customerName"`
	DueDate       wireTime `json:"dueDate"`
	Expired       bool     `json:"expired"`
}

type wireCancel struct {
	TransactionKey   string     `json:"transactionKey"`
	CancelReason     string     `json:"cancelReason"`
	CancelStatus     string     `json:"cancelStatus"`
	CancelAmount     wireAmount `json:"cancelAmount"`
	RefundableAmount wireAmount `json:"refundableAmount"`
	CanceledAt       wireTime   `json:"canceledAt"`
}

// parsePayment decodes a gateway Payment. It fails only when the body is not
// JSON, a field we rely on has the wrong type, an amount is not a whole
// number, the object lacks a paymentKey or status, or a Payment in which
// money moved lacks its amounts; every such failure means "we cannot tell
// what the gateway did".
func parsePayment(body []byte) (*gateway.Payment, error) {
	var w wirePayment
	if err := json.Unmarshal(body, &w); err != nil {
		return nil, fmt.Errorf("error decoding payment: %w", err)
	}
	if w.PaymentKey == "" || w.Status == "" {
		return nil, fmt.Errorf("error decoding payment: %w", errUnusablePayment)
	}
	if amountsRequired(w.Status) {
		switch {
		case w.TotalAmount == nil:
			return nil, fmt.Errorf("error decoding payment: %w: %s payment without totalAmount", errMissingAmount, w.Status)
		case w.BalanceAmount == nil:
			return nil, fmt.Errorf("error decoding payment: %w: %s payment without balanceAmount", errMissingAmount, w.Status)
		}
	}
	return toPayment(w), nil
}

// amountsRequired reports whether a Payment in status must carry
// totalAmount and balanceAmount: exactly the statuses Classify reads as
// success (DONE, CANCELED, PARTIAL_CANCELED), because those are the ones
// whose amounts the relay records as what was charged and what is left.
//
// The gateway sends both amounts on every Payment, but for READY,
// IN_PROGRESS, WAITING_FOR_DEPOSIT, ABORTED and EXPIRED no money has moved:
// the relay decides from the status alone and never reads their amounts.
// Requiring them there would turn a usable "nothing was charged" lookup into
// an unreadable answer, retried for nothing.
func amountsRequired(status string) bool {
	return answers.PaymentStatuses[status] == gateway.ClassSuccess
}

// amountOf returns a decoded amount, or 0 when it was absent or null (which
// parsePayment allows only where the amount is not used).
func amountOf(a *wireAmount) int64 {
	if a == nil {
		return 0
	}
	return int64(*a)
}

// toPayment converts the wire shape to the exported one.
func toPayment(w wirePayment) *gateway.Payment {
	p := &gateway.Payment{
		PaymentKey:         w.PaymentKey,
		OrderID:            w.OrderID,
		OrderName:          w.OrderName,
		Status:             w.Status,
		Phase:              tossPhases[w.Status],
		Method:             w.Method,
		Currency:           w.Currency,
		LastTransactionKey: w.LastTransactionKey,
		TotalAmount:        amountOf(w.TotalAmount),
		BalanceAmount:      amountOf(w.BalanceAmount),
		RequestedAt:        time.Time(w.RequestedAt),
		ApprovedAt:         time.Time(w.ApprovedAt),
		Secret:             w.Secret,
	}
	if va := w.VirtualAccount; va != nil && va.AccountNumber != "" {
		p.VirtualAccount = &payment.VirtualAccount{
			Bank: va.BankCode, AccountNumber: va.AccountNumber, Holder: va.CustomerName, DueDate: time.Time(va.DueDate),
		}
		p.AccountExpired = va.Expired
		if p.ApprovedAt.IsZero() && p.Phase == gateway.PhaseCharged {
			// Canceled before any deposit (the account closed): nothing
			// was ever charged, whatever the status word.
			p.Phase = gateway.PhaseFailed
		}
	}
	if len(w.Cancels) > 0 {
		p.Cancels = make([]gateway.Cancel, 0, len(w.Cancels))
		for _, c := range w.Cancels {
			p.Cancels = append(p.Cancels, gateway.Cancel{
				TransactionKey:   c.TransactionKey,
				CancelReason:     c.CancelReason,
				CancelStatus:     c.CancelStatus,
				CancelAmount:     int64(c.CancelAmount),
				RefundableAmount: int64(c.RefundableAmount),
				CanceledAt:       time.Time(c.CanceledAt),
			})
		}
	}
	return p
}

// maxExactFloat is the largest magnitude at which every integer is exactly
// representable as a float64.
const maxExactFloat = 1 << 53

// wireAmount is an amount in the currency's minor-less unit (won). The gateway
// documents amounts as JSON numbers; it sends integers for KRW, but a number
// such as 1000.0 or 1e3 is the same amount and is accepted. A fractional
// amount is an error, not rounded: the relay compares amounts to decide
// whether to keep an approval, and a guessed amount would be worse than none.
//
// A Payment's own amounts are decoded through *wireAmount, where JSON null
// leaves the pointer nil and never reaches UnmarshalJSON; the null case below
// is for the cancels' amounts, which the relay does not read.
type wireAmount int64

// UnmarshalJSON implements json.Unmarshaler.
func (a *wireAmount) UnmarshalJSON(b []byte) error {
	s := string(b)
	if s == "null" {
		*a = 0
		return nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		*a = wireAmount(n)
		return nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return fmt.Errorf("error decoding amount %.32q: not a number", s)
	}
	if f != math.Trunc(f) || math.Abs(f) > maxExactFloat {
		return fmt.Errorf("error decoding amount %.32q: not a whole number", s)
	}
	*a = wireAmount(int64(f))
	return nil
}

// kst is the gateway's local time. A timestamp sent without an offset is
// taken to be in it, since the gateway's own documentation writes all times
// in +09:00.
var kst = time.FixedZone("KST", 9*60*60)

// timeLayouts are tried in order. RFC3339Nano also matches timestamps without
// fractional seconds.
var timeLayouts = []struct {
	layout string
	local  bool // no offset in the layout: interpret in kst
}{
	{time.RFC3339Nano, false},
	{"2006-01-02T15:04:05.999999999Z0700", false},
	{"2006-01-02T15:04:05.999999999", true},
}

// wireTime decodes the gateway's timestamps leniently: null, a non-string or
// an unparseable string give the zero time rather than an error, so that a
// cosmetic field never turns a definite answer into an unclear one.
type wireTime time.Time

// UnmarshalJSON implements json.Unmarshaler. It never fails.
func (t *wireTime) UnmarshalJSON(b []byte) error {
	*t = wireTime(parseTime(b))
	return nil
}

// parseTime parses a JSON value holding a gateway timestamp, or returns the
// zero time.
func parseTime(b []byte) time.Time {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return time.Time{}
	}
	s = strings.TrimSpace(s)
	// Some systems write a space instead of the "T"; it carries no meaning.
	if len(s) > 10 && s[10] == ' ' {
		s = s[:10] + "T" + s[11:]
	}
	for _, l := range timeLayouts {
		var (
			tm  time.Time
			err error
		)
		if l.local {
			tm, err = time.ParseInLocation(l.layout, s, kst)
		} else {
			tm, err = time.Parse(l.layout, s)
		}
		if err == nil {
			return tm
		}
	}
	return time.Time{}
}
