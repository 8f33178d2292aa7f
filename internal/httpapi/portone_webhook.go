package httpapi

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/labstack/echo/v4"

	"github.com/payment-outbox/payment-outbox/internal/payment"
)

// portOneEvent is what the API reads from a PortOne V2 webhook: the
// 2024-04-25 body ({"type", "timestamp", "data": {"paymentId", ...}}), or
// the older 2024-01-01 one ({"payment_id", "tx_id", "status"}).
type portOneEvent struct {
	Type      string `json:"type"`
	Timestamp string `json:"timestamp"`
	Data      *struct {
		PaymentID      string `json:"paymentId"`
		StoreID        string `json:"storeId"`
		TransactionID  string `json:"transactionId"`
		CancellationID string `json:"cancellationId"`
	} `json:"data"`
	// The 2024-01-01 body.
	LegacyPaymentID string `json:"payment_id"`
	LegacyStatus    string `json:"status"`
}

// paymentID is the payment the event names, "" for none (a billing key's
// event, say).
func (ev portOneEvent) paymentID() string {
	if ev.Data != nil && ev.Data.PaymentID != "" && strings.HasPrefix(ev.Type, "Transaction.") {
		return ev.Data.PaymentID
	}
	return ev.LegacyPaymentID
}

// portOneWebhook takes PortOne's V2 webhooks. PortOne signs them per
// Standard Webhooks (webhook-id, webhook-timestamp, webhook-signature,
// verified with PORTONE_WEBHOOK_SECRET within a five-minute window); one that
// does not verify is refused with 401 and changes nothing, and PortOne
// retries it. A verified one still never changes a payment: it names a
// payment and, like the Toss webhook, only puts a lookup of it in the outbox
// (unique per payment while one waits). The relay settles the payment from
// PortOne's own record.
func (s *Server) portOneWebhook(c echo.Context) error {
	body, err := s.readBody(c)
	if err != nil {
		return err
	}
	if s.portOneHooks == nil {
		return &problemError{status: http.StatusUnauthorized, code: codeInvalidSignature,
			detail: "PortOne webhooks are not accepted here: no webhook secret is configured"}
	}
	if err := s.portOneHooks.Verify(body, c.Request().Header); err != nil {
		loggerOf(c, s.logger).Warn("PortOne webhook refused: its signature does not verify", slog.String("error", err.Error()))
		return &problemError{status: http.StatusUnauthorized, code: codeInvalidSignature,
			detail: "the webhook's signature does not verify (webhook-id, webhook-timestamp, webhook-signature)"}
	}
	var ev portOneEvent
	if err := json.Unmarshal(body, &ev); err != nil {
		return invalid(payment.CodeInvalidRequest, "the webhook body is not a PortOne event")
	}
	log := func() *slog.Logger {
		return loggerOf(c, s.logger).With(slog.String("event_type", clip(ev.Type)), slog.String("payment_key", clip(ev.paymentID())),
			slog.String("webhook_id", clip(c.Request().Header.Get("webhook-id"))))
	}
	ok := webhookResponse{Status: "ok"}
	paymentID := ev.paymentID()
	if paymentID == "" || payment.ValidatePaymentKey(paymentID) != nil {
		// PortOne's advice: an event type we do not know is ignored, not
		// refused (it would be retried for nothing).
		log().Info("ignored PortOne webhook that names no payment")
		return c.JSON(http.StatusOK, ok)
	}

	ctx := c.Request().Context()
	var p payment.Payment
	var found, inserted bool
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		p, err = s.store.PaymentByPaymentKey(ctx, tx, paymentID)
		switch {
		case payment.ErrorOf(err).Kind == payment.KindNotFound:
			return nil
		case err != nil:
			return err
		case p.Gateway != payment.GatewayPortOne:
			// A Toss payment's key that happens to match: not this event's.
			return nil
		}
		found = true
		inserted, err = s.flow.RequestLookup(ctx, tx, p)
		return err
	})
	if err != nil {
		return fmt.Errorf("error handling PortOne webhook: %w", err)
	}
	if !found {
		// Every PortOne intent holds its paymentId from creation, so this is
		// a payment of the store that is not ours (another system's, or
		// made in PortOne's console): the reconciliation of the gateway's
		// books lists it for a person.
		log().Warn("PortOne webhook names no PortOne payment we have")
		return c.JSON(http.StatusOK, ok)
	}
	setPaymentID(c, p.ID)
	log().Info("PortOne webhook: lookup enqueued",
		slog.String("payment_status", string(p.Status)), slog.Bool("duplicate", !inserted))
	return c.JSON(http.StatusOK, ok)
}
