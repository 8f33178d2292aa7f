package httpapi

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/jackc/pgx/v5"
	"github.com/labstack/echo/v4"

	"github.com/payment-outbox/payment-outbox/internal/payment"
)

// tossEventDepositCallback is Toss's webhook of a virtual account's deposit
// (or its reversal).
const tossEventDepositCallback = "DEPOSIT_CALLBACK"

// depositCallback is what the API reads from a DEPOSIT_CALLBACK. Toss sends
// its members at the top level, not under data: {createdAt, secret, status,
// transactionKey, orderId} (docs/design.md section 19).
type depositCallback struct {
	OrderID        string          `json:"orderId"`
	Secret         string          `json:"secret"`
	Status         string          `json:"status"`
	TransactionKey string          `json:"transactionKey"`
	CreatedAt      json.RawMessage `json:"createdAt"`
	EventType      string          `json:"eventType"`
}

// parseDepositCallback reports whether body is a DEPOSIT_CALLBACK: a JSON
// object with a top-level secret, and no eventType or DEPOSIT_CALLBACK's.
// Any other body is left to parseTossEvent, which says what is wrong with
// it.
func parseDepositCallback(body []byte) (depositCallback, bool) {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return depositCallback{}, false
	}
	var d depositCallback
	if json.Unmarshal(body, &d) != nil {
		return depositCallback{}, false
	}
	if d.Secret == "" || (d.EventType != "" && d.EventType != tossEventDepositCallback) {
		return depositCallback{}, false
	}
	return d, true
}

// secretMatches compares a callback's secret with the one the confirm's
// answer gave, in constant time: the comparison must not tell a stranger
// how much of a guess was right. A payment without a stored secret
// matches nothing.
func secretMatches(stored payment.Token, given string) bool {
	want := stored.Reveal()
	if want == "" {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(want), []byte(given)) == 1
}

// tossDepositCallback takes a DEPOSIT_CALLBACK. It is believed only when
// its secret equals the one stored for the order's payment, and then it
// only asks for a lookup (payflow.RequestLookup), like every gateway
// webhook: the lookup's answer is what settles the payment. A wrong or
// missing secret, or an order we do not have, changes nothing and is
// answered as any webhook we do not act on, so a stranger learns nothing.
func (s *Server) tossDepositCallback(c echo.Context, d depositCallback) error {
	log := loggerOf(c, s.logger).With(
		slog.String("event_type", tossEventDepositCallback),
		slog.String("order_id", clip(d.OrderID)),
		slog.String("event_status", clip(d.Status)),
		slog.String("transaction_key", clip(d.TransactionKey)))
	ok := webhookResponse{Status: "ok"}
	if payment.ValidateOrderID(d.OrderID) != nil {
		log.Warn("deposit callback names no order we could have")
		return c.JSON(http.StatusOK, ok)
	}
	ctx := c.Request().Context()
	var (
		p                        payment.Payment
		found, matched, inserted bool
	)
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		p, err = s.store.PaymentByOrderID(ctx, tx, d.OrderID)
		if err != nil {
			if payment.ErrorOf(err).Kind == payment.KindNotFound {
				return nil
			}
			return err
		}
		found = true
		if matched = secretMatches(p.DepositSecret, d.Secret); !matched {
			return nil
		}
		inserted, err = s.flow.RequestLookup(ctx, tx, p)
		return err
	})
	if err != nil {
		return fmt.Errorf("error handling deposit callback: %w", err)
	}
	switch {
	case !found:
		log.Warn("deposit callback names no payment we have")
	case !matched:
		setPaymentID(c, p.ID)
		log.Warn("deposit callback with a secret that is not the payment's; ignored, nothing enqueued")
	default:
		setPaymentID(c, p.ID)
		log.Info("deposit callback: lookup enqueued",
			slog.String("payment_status", string(p.Status)), slog.Bool("duplicate", !inserted))
	}
	return c.JSON(http.StatusOK, ok)
}
