package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/labstack/echo/v4"

	"github.com/payment-outbox/payment-outbox/internal/metrics"
	"github.com/payment-outbox/payment-outbox/internal/payment"
)

// tossEventPaymentStatusChanged is the one Toss webhook event the API acts on.
const tossEventPaymentStatusChanged = "PAYMENT_STATUS_CHANGED"

// kst is the zone Toss writes timestamps in when it leaves the offset out.
var kst = time.FixedZone("KST", 9*60*60)

// tossEvent is what the API reads from a Toss webhook.
type tossEvent struct {
	EventType string
	// CreatedAt is when Toss says the event happened; zero when absent or
	// unreadable. It is only logged: a webhook is a reason to ask the
	// gateway, and the gateway's answer carries its own times.
	CreatedAt  time.Time
	PaymentKey string
	OrderID    string
	// Status is the gateway's payment status as the event tells it. Only
	// logged, never applied: the webhook is unsigned.
	Status string
}

// wireTossEvent is the JSON of a Toss webhook. Members not named here are
// ignored: Toss adds fields without notice, and a webhook we refuse is one
// Toss retries for days. Unlike request bodies (see decodeJSON), members
// match case-insensitively and a repeated one wins: the most a confusing
// body can do here is make us ask the gateway about a payment.
type wireTossEvent struct {
	EventType string          `json:"eventType"`
	CreatedAt json.RawMessage `json:"createdAt"`
	Data      *struct {
		PaymentKey string `json:"paymentKey"`
		OrderID    string `json:"orderId"`
		Status     string `json:"status"`
	} `json:"data"`
}

// parseTossEvent reads a webhook body leniently: unknown members, any
// createdAt form and unknown event types are accepted. It fails, as a 400
// problem, only for a body that is not a JSON object, or whose eventType or
// data members have the wrong JSON type, or a payment event that names no
// payment.
func parseTossEvent(body []byte) (tossEvent, error) {
	// JSON's whitespace only: bytes.TrimSpace would also drop a vertical
	// tab or U+0085, and so accept a body that is not JSON (found by
	// FuzzParseTossEvent).
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return tossEvent{}, invalid(codeInvalidJSON, "the webhook body must be a JSON object")
	}
	var w wireTossEvent
	if err := json.Unmarshal(body, &w); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return tossEvent{}, invalid(payment.CodeInvalidRequest, fmt.Sprintf("webhook member %s has the wrong JSON type (%s)", te.Field, te.Value))
		}
		return tossEvent{}, syntaxProblem(err)
	}
	ev := tossEvent{EventType: w.EventType, CreatedAt: parseTossTime(w.CreatedAt)}
	if w.Data != nil {
		ev.PaymentKey, ev.OrderID, ev.Status = w.Data.PaymentKey, w.Data.OrderID, w.Data.Status
	}
	if ev.EventType == tossEventPaymentStatusChanged && ev.PaymentKey == "" && ev.OrderID == "" {
		return tossEvent{}, invalid(payment.CodeInvalidRequest, "a PAYMENT_STATUS_CHANGED event needs data.paymentKey or data.orderId")
	}
	return ev, nil
}

// tossTimeLayouts are the forms Toss's timestamps come in. Fractional
// seconds of any length are accepted by time.Parse after the seconds
// without being in the layout.
var tossTimeLayouts = []struct {
	layout string
	local  bool // no offset in the text: Korea's
}{
	{"2006-01-02T15:04:05Z07:00", false},
	{"2006-01-02T15:04:05Z0700", false},
	{"2006-01-02T15:04:05", true},
}

// parseTossTime reads a JSON timestamp as Toss writes it, or returns the
// zero time. (internal/gateway/toss has its own copy for the gateway's answers;
// the API does not import the gateway client, so that it visibly cannot
// call the gateway.)
func parseTossTime(raw json.RawMessage) time.Time {
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return time.Time{}
	}
	s = strings.TrimSpace(s)
	if len(s) > 10 && s[10] == ' ' {
		s = s[:10] + "T" + s[11:]
	}
	for _, l := range tossTimeLayouts {
		var (
			t   time.Time
			err error
		)
		if l.local {
			t, err = time.ParseInLocation(l.layout, s, kst)
		} else {
			t, err = time.Parse(l.layout, s)
		}
		if err == nil {
			return t
		}
	}
	return time.Time{}
}

// webhookResponse is the body of every 200 to a webhook. It is the same
// whether the event was acted on, ignored or named a payment we do not
// have, so a stranger posting events learns nothing about our payments.
type webhookResponse struct {
	Status string `json:"status"`
}

// tossWebhook takes Toss's PAYMENT_STATUS_CHANGED webhook. It never changes
// a payment: the webhook is unsigned, so anyone could send one, and it is
// only a reason to ask. It asks for a lookup of the payment through
// payflow.RequestLookup (at most one per payment per interval, so
// duplicates, out-of-order deliveries and forged floods add at most one
// gateway call per interval) and answers 200 at once; the relay's lookup
// worker settles the payment from the gateway's own answer. Only a webhook
// that put a new lookup into the outbox is logged at info.
func (s *Server) tossWebhook(c echo.Context) error {
	body, err := s.readBody(c)
	if err != nil {
		return err
	}
	if d, ok := parseDepositCallback(body); ok {
		return s.tossDepositCallback(c, d)
	}
	ev, err := parseTossEvent(body)
	if err != nil {
		return err
	}
	event := []any{
		slog.String("event_type", clip(ev.EventType)),
		slog.String("payment_key", clip(ev.PaymentKey)),
		slog.String("order_id", clip(ev.OrderID)),
		slog.String("event_status", clip(ev.Status)),
	}
	if !ev.CreatedAt.IsZero() {
		event = append(event, slog.Time("event_created_at", ev.CreatedAt))
	}
	if ev.EventType != tossEventPaymentStatusChanged {
		return s.quietWebhook(c, payment.GatewayToss, metrics.WebhookIgnored, event...)
	}

	ctx := c.Request().Context()
	var p payment.Payment
	var found, inserted bool
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		p, found, err = s.webhookPayment(c, tx, ev)
		if err != nil || !found || p.PaymentKey == "" {
			// Without a paymentKey the payment was never sent to the
			// gateway, and the relay has nothing to look it up by.
			return err
		}
		inserted, err = s.flow.RequestLookup(ctx, tx, p)
		return err
	})
	if err != nil {
		return fmt.Errorf("error handling gateway webhook: %w", err)
	}
	if !found {
		// Someone guessing order ids, or a payment of another system at
		// the same merchant: counted, and logged at debug only.
		return s.quietWebhook(c, payment.GatewayToss, metrics.WebhookUnknownPayment, event...)
	}
	setPaymentID(c, p.ID)
	event = append(event, slog.String("payment_status", string(p.Status)))
	if p.PaymentKey == "" {
		// Not yet confirmed with us: nothing to look up.
		return s.quietWebhook(c, payment.GatewayToss, metrics.WebhookIgnored, event...)
	}
	if !inserted {
		// A lookup that will read this request waits already.
		return s.quietWebhook(c, payment.GatewayToss, metrics.WebhookLookupWaiting, event...)
	}
	s.metrics.GatewayWebhook(payment.GatewayToss, metrics.WebhookLookup)
	loggerOf(c, s.logger).With(event...).Info("gateway webhook: lookup enqueued")
	return c.JSON(http.StatusOK, webhookResponse{Status: "ok"})
}

// webhookPayment finds the payment an event is about: by paymentKey, else by
// orderId. Values that could not be ours (by our own validation rules) are
// not looked up at all, so no stranger's bytes reach a query they could
// break.
func (s *Server) webhookPayment(c echo.Context, tx pgx.Tx, ev tossEvent) (payment.Payment, bool, error) {
	ctx := c.Request().Context()
	if ev.PaymentKey != "" && payment.ValidatePaymentKey(ev.PaymentKey) == nil {
		p, err := s.store.PaymentByPaymentKey(ctx, tx, ev.PaymentKey)
		if err == nil {
			return p, true, nil
		}
		if payment.ErrorOf(err).Kind != payment.KindNotFound {
			return payment.Payment{}, false, err
		}
	}
	if ev.OrderID != "" && payment.ValidateOrderID(ev.OrderID) == nil {
		p, err := s.store.PaymentByOrderID(ctx, tx, ev.OrderID)
		if err == nil {
			return p, true, nil
		}
		if payment.ErrorOf(err).Kind != payment.KindNotFound {
			return payment.Payment{}, false, err
		}
	}
	return payment.Payment{}, false, nil
}
