package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/payment-outbox/payment-outbox/internal/payment"
)

// nameGatewayWebhooks counts the gateways' webhooks by what they made us do.
const nameGatewayWebhooks = namespace + "_gateway_webhooks_total"

// What a gateway webhook that was accepted (answered 200) made the api do:
// the outcome label of payment_outbox_gateway_webhooks_total.
const (
	// WebhookLookup: a lookup of the payment was put into the outbox, now
	// or for the next interval.
	WebhookLookup = "lookup"
	// WebhookLookupWaiting: a lookup that will read the request was already
	// waiting; only the request was recorded.
	WebhookLookupWaiting = "lookup_waiting"
	// WebhookUnknownPayment: the webhook names no payment we have. A flood
	// of these is someone guessing order ids, or another system's payments
	// at the same merchant.
	WebhookUnknownPayment = "unknown_payment"
	// WebhookReplayed: a signed delivery whose webhook-id was already
	// accepted within its signature window (a replay, or the gateway's
	// retry of one we took); nothing was done.
	WebhookReplayed = "replayed"
	// WebhookIgnored: an event the api does not act on, or a payment never
	// sent to the gateway.
	WebhookIgnored = "ignored"
)

var webhookOutcomes = []string{WebhookLookup, WebhookLookupWaiting, WebhookUnknownPayment, WebhookReplayed, WebhookIgnored}

func newWebhookCounter(r *Registry) *prometheus.CounterVec {
	v := r.counterVec(nameGatewayWebhooks,
		"Gateway webhooks accepted, by gateway (toss, portone) and what they made the api do (outcome: "+
			"lookup, lookup_waiting, unknown_payment, replayed, ignored). The api logs the quiet ones at debug only: this is where a flood shows.",
		"gateway", "outcome")
	// At zero from the start, so a rate over them is defined before the
	// first webhook.
	for _, g := range []string{payment.GatewayToss, payment.GatewayPortOne} {
		for _, o := range webhookOutcomes {
			v.WithLabelValues(g, o)
		}
	}
	return v
}

// GatewayWebhook counts one accepted gateway webhook by its gateway
// (payment.GatewayToss, payment.GatewayPortOne) and outcome (one of the
// Webhook constants).
func (m *HTTP) GatewayWebhook(gateway, outcome string) {
	if m == nil {
		return
	}
	m.webhooks.WithLabelValues(gateway, outcome).Inc()
}
