package console

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/payment-outbox/payment-outbox/internal/payment"
	"github.com/payment-outbox/payment-outbox/internal/store"
)

// overviewData is what the overview page shows.
type overviewData struct {
	Statuses      []statusCount
	Unknown       int64
	Acknowledged  int64
	Jobs          []store.OutboxJobs
	Depth         int64
	OldestAge     time.Duration
	Retrying      int64
	Discarded     map[string]int64
	DiscardedAll  int64
	Gateway       []statusCount
	GatewayNewest time.Time
	LastReconcile *time.Time
	Recent        []payment.OperatorAction
}

type statusCount struct {
	Name  string
	Count int64
}

// recentCalls is how many of the newest gateway calls the overview reads
// the gateway's health from.
const recentCalls = 200

// newest call that brought one back.
type gatewaySide struct {
	Record  *payment.GatewayRecord
	Attempt *payment.Attempt
	// Diff names our fields that disagree with the gateway's record.
	Diff map[string]bool
	// Expected is the gateway status our status corresponds to.
	Expected string
}

// gatewayStatusFor is the gateway status each of ours agrees with; "" for
// ours that says nothing definite (a payment in flight or unknown).
var gatewayStatusFor = map[payment.Status]string{
	payment.StatusConfirmed:         "DONE",
	payment.StatusCanceled:          "CANCELED",
	payment.StatusPartiallyCanceled: "PARTIAL_CANCELED",
	payment.StatusFailed:            "ABORTED",
	payment.StatusExpired:           "EXPIRED",
}

func sideOf(p payment.Payment) gatewaySide {
	var g gatewaySide
	for i := len(p.Attempts) - 1; i >= 0; i-- {
		if p.Attempts[i].Gateway != nil {
			g.Attempt, g.Record = &p.Attempts[i], p.Attempts[i].Gateway
			break
		}
	}
	g.Expected = gatewayStatusFor[p.Status]
	if g.Record == nil {
		return g
	}
	g.Diff = map[string]bool{
		"status":  g.Expected != g.Record.Status,
		"total":   p.ApprovedAmount != g.Record.TotalAmount,
		"balance": p.BalanceAmount != g.Record.BalanceAmount,
		"order":   p.OrderID != g.Record.OrderID,
	}
	// A refused confirm leaves the gateway's record READY or ABORTED and
	// our amounts at zero: both say "no charge".
	if p.Status == payment.StatusFailed && (g.Record.Status == "READY" || g.Record.Status == "IN_PROGRESS") {
		g.Diff["status"] = false
	}
	return g
}

// timelineEvent is one line of a payment's timeline.
type timelineEvent struct {
	At      time.Time
	Kind    string // intent, attempt, cancel, action
	Title   string
	Detail  string
	Class   string
	Attempt *payment.Attempt
	Action  *payment.OperatorAction
}

func timeline(p payment.Payment, actions []payment.OperatorAction) []timelineEvent {
	ev := []timelineEvent{{At: p.CreatedAt, Kind: "intent", Title: "Intent recorded",
		Detail: fmt.Sprintf("%s, %d %s", p.OrderName, p.Amount, p.Currency)}}
	if p.ConfirmRequestedAt != nil {
		ev = append(ev, timelineEvent{At: *p.ConfirmRequestedAt, Kind: "intent", Title: "Confirm requested",
			Detail: "paymentKey " + p.PaymentKey + ", key " + p.ConfirmIdempotencyKey})
	}
	for i := range p.Attempts {
		a := &p.Attempts[i]
		ev = append(ev, timelineEvent{At: a.RequestedAt, Kind: "attempt", Title: "Gateway " + string(a.Operation),
			Class: a.Classification, Attempt: a})
	}
	for _, c := range p.Cancels {
		amount := "whole balance"
		if c.Amount > 0 {
			amount = strconv.FormatInt(c.Amount, 10)
		}
		ev = append(ev, timelineEvent{At: c.CreatedAt, Kind: "cancel", Title: string(c.Kind) + " cancel " + string(c.Status),
			Detail: fmt.Sprintf("%s; %s; key %s", amount, c.Reason, c.IdempotencyKey), Class: string(c.Status)})
		if c.FailureCode != "" {
			ev[len(ev)-1].Detail += "; refused: " + c.FailureCode + " " + c.FailureMessage
		}
	}
	for i := range actions {
		a := &actions[i]
		ev = append(ev, timelineEvent{At: a.CreatedAt, Kind: "action", Title: "Operator: " + string(a.Action), Action: a})
	}
	slices.SortStableFunc(ev, func(a, b timelineEvent) int { return a.At.Compare(b.At) })
	return ev
}

// actionChoice is an action the payment page offers, and why or why not.
type actionChoice struct {
	Action payment.Action
	Label  string
	Help   string
}

// paymentActions lists the actions worth offering for a payment; the
// server checks each again when it is taken.
func paymentActions(p payment.Payment, failed []payment.Cancel) []actionChoice {
	var out []actionChoice
	if p.PaymentKey != "" {
		out = append(out, actionChoice{payment.ActionLookup, "Look up now", "Ask the gateway now; the relay settles the payment from its record."})
	}
	if slices.Contains(payment.AttentionStatuses(), p.Status) && p.PaymentKey != "" {
		out = append(out, actionChoice{payment.ActionResolve, "Resolve from the gateway", "A fresh lookup settles the payment to what the gateway's record shows; never to anything typed here."})
	}
	if p.CanRetry() {
		out = append(out, actionChoice{payment.ActionRetry, "Retry the job now", "Run the confirm or cancel job again now, under the same Idempotency-Key."})
	}
	if len(failed) > 0 {
		out = append(out, actionChoice{payment.ActionResendCancel, "Send the refused cancel again", "Under a new key, with our balance as refundableAmount, so it can never refund twice."})
	}
	if p.Status == payment.StatusUnknown && !p.Acknowledged() {
		out = append(out, actionChoice{payment.ActionAcknowledge, "Acknowledge", "Take it off the alert list, keeping its status (for example: refunded by phone)."})
	}
	return out
}

func actionEffect(a payment.Action) string {
	switch a {
	case payment.ActionLookup:
		return "A lookup goes into the outbox. The relay asks the gateway and settles the payment from its record; the audit row then says what it found."
	case payment.ActionResolve:
		return "A lookup that insists on a fresh answer goes into the outbox. The payment moves only to what the gateway's record shows."
	case payment.ActionRetry:
		return "The payment's confirm or cancel job runs again now, under the same Idempotency-Key; the gateway replays what it already did."
	case payment.ActionResendCancel:
		return "The refused cancel is sent again under a new Idempotency-Key, with our balance as refundableAmount: if money already went back, the gateway refuses it."
	case payment.ActionAcknowledge:
		return "The payment leaves the alert list and the attention page with its status unchanged, until its status moves."
	}
	return ""
}

// consoleJobStates are the job states the jobs page lists; the store finds
// no others (JobListByStates).

// booksDifference is one open difference of the Books page.
type booksDifference struct {
	store.BooksDifference
	// GatewayRecord is the gateway's transactions the difference is about.
	GatewayRecord []booksTransaction
	// Payment is our payment's id, "" when none.
	Payment string
}

// booksTransaction is one gateway transaction as reconciliation recorded
// it.
type booksTransaction struct {
	PaymentKey     string    `json:"paymentKey"`
	OrderID        string    `json:"orderId"`
	TransactionKey string    `json:"transactionKey"`
	Kind           string    `json:"kind"`
	Status         string    `json:"status"`
	Method         string    `json:"method"`
	Currency       string    `json:"currency"`
	Amount         int64     `json:"amount"`
	At             time.Time `json:"at"`
}

func toBooksDifference(d store.BooksDifference) booksDifference {
	out := booksDifference{BooksDifference: d, Payment: d.PaymentID}
	// Written by the relay as an array of transactions; anything else is
	// left out rather than shown unread.
	var txs []booksTransaction
	if json.Unmarshal(d.GatewayRecord, &txs) == nil {
		out.GatewayRecord = txs
	}
	return out
}
