package httpapi

import (
	"log/slog"
	"net/http"

	"github.com/labstack/echo/v4"
)

// ctxKeyQuiet marks a gateway webhook that did nothing new, for the access
// log (see quietWebhook).
const ctxKeyQuiet = "httpapi.quietWebhook"

// quietWebhook answers 200 to a gateway webhook that did nothing new: it
// named no payment of ours, was a replay of a delivery already taken, was
// an event we do not act on, or found a lookup already waiting to read it.
// Anyone can send Toss's webhooks, so these come in floods at the sender's
// pace: each is counted in payment_outbox_gateway_webhooks_total and writes
// one line only, the access line, at debug, with the event's attributes
// (docs/design.md, "A webhook costs at most one lookup per interval"). Call
// setPaymentID first, if at all: it resets the request's logger.
func (s *Server) quietWebhook(c echo.Context, gateway, outcome string, attrs ...any) error {
	s.metrics.GatewayWebhook(gateway, outcome)
	c.Set(ctxKeyQuiet, true)
	attrs = append(attrs, slog.String("webhook_outcome", outcome))
	c.Set(ctxKeyLogger, loggerOf(c, s.logger).With(attrs...))
	return c.JSON(http.StatusOK, webhookResponse{Status: "ok"})
}
