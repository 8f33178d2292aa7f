package httpapi

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/labstack/echo/v4"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/payment-outbox/payment-outbox/internal/metrics"
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

// portOneSignatureTolerance is how far a webhook-timestamp may be from our
// clock for its signature to verify: the Standard Webhooks library's
// five minutes, either way. A delivery's receipt is kept until its
// timestamp plus this, when no replay of its signature gets in any more.
const portOneSignatureTolerance = 5 * time.Minute

// portOneWebhook takes PortOne's V2 webhooks. PortOne signs them per
// Standard Webhooks (webhook-id, webhook-timestamp, webhook-signature,
// verified with PORTONE_WEBHOOK_SECRET within a five-minute window); one that
// does not verify is refused with 401 and changes nothing, and PortOne
// retries it. A verified one still never changes a payment: it names a
// payment and, like the Toss webhook, only asks for a lookup of it
// (payflow.RequestLookup: at most one per payment per interval). A verified
// delivery whose webhook-id was already accepted within its signature
// window (a replay, or PortOne's retry of a delivery we took) is answered
// 200 and does nothing. The relay settles the payment from PortOne's own
// record.
func (s *Server) portOneWebhook(c echo.Context) error {
	// checkPortOneHeaders ran first: a secret is configured, and the
	// signature's headers are there and fresh.
	body, err := s.readBody(c)
	if err != nil {
		return err
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
	webhookID := c.Request().Header.Get("webhook-id")
	event := []any{slog.String("event_type", clip(ev.Type)), slog.String("payment_key", clip(ev.paymentID())),
		slog.String("webhook_id", clip(webhookID))}
	paymentID := ev.paymentID()
	if paymentID == "" || payment.ValidatePaymentKey(paymentID) != nil {
		// PortOne's advice: an event type we do not know is ignored, not
		// refused (it would be retried for nothing).
		return s.quietWebhook(c, payment.GatewayPortOne, metrics.WebhookIgnored, event...)
	}
	// Verified, so the header is a whole number of seconds.
	signedAt, err := strconv.ParseInt(c.Request().Header.Get("webhook-timestamp"), 10, 64)
	if err != nil {
		return invalid(payment.CodeInvalidRequest, "the webhook-timestamp header is not a whole number of seconds")
	}

	ctx := c.Request().Context()
	var p payment.Payment
	var replayed, found, inserted bool
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// In the transaction that acts on the delivery: a receipt stands
		// only for a delivery we acted on, so one that failed here is
		// taken when PortOne retries it.
		fresh, err := s.flow.AcceptDelivery(ctx, tx, webhookID, time.Unix(signedAt, 0).Add(portOneSignatureTolerance))
		if err != nil || !fresh {
			replayed = !fresh
			return err
		}
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
	if replayed {
		return s.quietWebhook(c, payment.GatewayPortOne, metrics.WebhookReplayed, event...)
	}
	if !found {
		// Every PortOne intent holds its paymentId from creation, so this is
		// a payment of the store that is not ours (another system's, or
		// made in PortOne's console): the reconciliation of the gateway's
		// books lists it for a person. Counted, and logged at debug only.
		return s.quietWebhook(c, payment.GatewayPortOne, metrics.WebhookUnknownPayment, event...)
	}
	setPaymentID(c, p.ID)
	event = append(event, slog.String("payment_status", string(p.Status)))
	if !inserted {
		// A lookup that will read this request waits already.
		return s.quietWebhook(c, payment.GatewayPortOne, metrics.WebhookLookupWaiting, event...)
	}
	s.metrics.GatewayWebhook(payment.GatewayPortOne, metrics.WebhookLookup)
	loggerOf(c, s.logger).With(event...).Info("PortOne webhook: lookup enqueued")
	return c.JSON(http.StatusOK, webhookResponse{Status: "ok"})
}

// portOneWebhookTolerance is how far a webhook's timestamp may be from now:
// the five minutes Standard Webhooks' Verify allows (docs/design.md, PortOne
// V2), judged here before the body is read.
const portOneWebhookTolerance = 5 * time.Minute

// maxWebhookIDLen bounds a webhook-id. Standard Webhooks' ids are short
// ("msg_" and a few dozen characters); the bound only keeps a stranger's
// header from being any size we then log.
const maxWebhookIDLen = 256

// checkPortOneHeaders judges a PortOne webhook by its headers alone, before
// its body is read (docs/design.md, "Overload"): with no secret configured,
// or without a webhook-id, a webhook-timestamp within the tolerance of now
// and a webhook-signature holding a v1 HMAC-SHA256, it cannot verify, so it
// is refused with 401 at once, having cost a header parse. The signature
// itself needs the body, and is verified by the handler.
func (s *Server) checkPortOneHeaders(c echo.Context) error {
	refuse := func(why string) error {
		return &problemError{status: http.StatusUnauthorized, code: codeInvalidSignature, detail: why}
	}
	if s.portOneHooks == nil {
		return refuse("PortOne webhooks are not accepted here: no webhook secret is configured")
	}
	h := c.Request().Header
	id := h.Get(standardwebhooks.HeaderWebhookID)
	if id == "" || len(id) > maxWebhookIDLen || !visibleASCII(id) {
		return refuse("the webhook has no usable webhook-id header")
	}
	sec, err := strconv.ParseInt(h.Get(standardwebhooks.HeaderWebhookTimestamp), 10, 64)
	if err != nil {
		return refuse("the webhook has no webhook-timestamp header in Unix seconds")
	}
	// Wall time, as Verify's own check: the server's clock may be a test's.
	if age := time.Since(time.Unix(sec, 0)); age > portOneWebhookTolerance || age < -portOneWebhookTolerance {
		return refuse("the webhook's webhook-timestamp is more than five minutes from now")
	}
	if !hasV1Signature(h.Get(standardwebhooks.HeaderWebhookSignature)) {
		return refuse("the webhook has no v1 signature in its webhook-signature header")
	}
	return nil
}

// hasV1Signature reports whether a webhook-signature header (signatures
// separated by spaces, each "version,base64") holds a v1 one of the right
// size: base64 of an HMAC-SHA256. Other versions are skipped, as Verify
// skips them.
func hasV1Signature(header string) bool {
	for _, sig := range strings.Split(header, " ") {
		version, b64, ok := strings.Cut(sig, ",")
		if !ok || version != "v1" {
			continue
		}
		if raw, err := base64.StdEncoding.DecodeString(b64); err == nil && len(raw) == sha256.Size {
			return true
		}
	}
	return false
}

// visibleASCII reports whether s is printable ASCII without spaces.
func visibleASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
