package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// WebhookEndpoint is a URL that receives the outbox's events.
type WebhookEndpoint struct {
	ID string `json:"id"`
	// Owner is the checkout service whose payments' events the endpoint
	// receives.
	Owner  string   `json:"owner"`
	URL    string   `json:"url"`
	Events []string `json:"events"`
	// Secret verifies the deliveries (VerifyWebhook). The api shows it
	// only in the answers of CreateWebhookEndpoint and RotateWebhookSecret:
	// keep it then.
	Secret     string     `json:"secret,omitempty"`
	CreatedAt  time.Time  `json:"createdAt"`
	DisabledAt *time.Time `json:"disabledAt"`
}

// WebhookDelivery is one event for one endpoint and how sending it went.
type WebhookDelivery struct {
	ID             string          `json:"id"`
	EndpointID     string          `json:"endpointId"`
	EventID        string          `json:"eventId"`
	EventType      string          `json:"eventType"`
	PaymentID      string          `json:"paymentId"`
	Status         string          `json:"status"` // pending, succeeded or failed
	Attempts       int             `json:"attempts"`
	LastHTTPStatus *int            `json:"lastHttpStatus"`
	LastError      string          `json:"lastError"`
	Payload        json.RawMessage `json:"payload"`
	CreatedAt      time.Time       `json:"createdAt"`
	LastAttemptAt  *time.Time      `json:"lastAttemptAt"`
	DeliveredAt    *time.Time      `json:"deliveredAt"`
}

// CreateWebhookEndpointRequest registers URL for Events (event types such as
// "payment.confirmed"; none: every one).
type CreateWebhookEndpointRequest struct {
	URL    string   `json:"url"`
	Events []string `json:"events,omitempty"`
}

// EventType names the event of a payment entering status.
func EventType(s Status) string { return "payment." + string(s) }

// CreateWebhookEndpoint registers an endpoint; the answer carries its secret,
// shown this once. It is not retried (a retry could register it twice).
func (c *Client) CreateWebhookEndpoint(ctx context.Context, req CreateWebhookEndpointRequest) (*WebhookEndpoint, error) {
	var e WebhookEndpoint
	return &e, c.call(ctx, opCreateEndpoint, opCreateEndpoint.fill(), nil, req, &e, nil)
}

// ListWebhookEndpoints lists every endpoint, without secrets.
func (c *Client) ListWebhookEndpoints(ctx context.Context) ([]WebhookEndpoint, error) {
	var out struct {
		Endpoints []WebhookEndpoint `json:"endpoints"`
	}
	return out.Endpoints, c.call(ctx, opListEndpoints, opListEndpoints.fill(), nil, nil, &out, nil)
}

// DisableWebhookEndpoint stops all deliveries to an endpoint.
func (c *Client) DisableWebhookEndpoint(ctx context.Context, id string) (*WebhookEndpoint, error) {
	var e WebhookEndpoint
	return &e, c.call(ctx, opDisableEndpoint, opDisableEndpoint.fill(id), nil, nil, &e, nil)
}

// RotateWebhookSecret gives an endpoint a new secret, in the answer only; the
// old one keeps signing beside it for a day. It is not retried.
func (c *Client) RotateWebhookSecret(ctx context.Context, id string) (*WebhookEndpoint, error) {
	var e WebhookEndpoint
	return &e, c.call(ctx, opRotateSecret, opRotateSecret.fill(id), nil, nil, &e, nil)
}

// ListWebhookDeliveries lists an endpoint's newest deliveries, at most limit
// (0: the api's default, 100).
func (c *Client) ListWebhookDeliveries(ctx context.Context, endpointID string, limit int) ([]WebhookDelivery, error) {
	var out struct {
		Deliveries []WebhookDelivery `json:"deliveries"`
	}
	var q url.Values
	if limit > 0 {
		q = url.Values{"limit": {strconv.Itoa(limit)}}
	}
	return out.Deliveries, c.call(ctx, opListDeliveries, opListDeliveries.fill(endpointID), q, nil, &out, nil)
}

// RedeliverWebhook sends a delivery again, under its first webhook-id.
func (c *Client) RedeliverWebhook(ctx context.Context, endpointID, deliveryID string) (*WebhookDelivery, error) {
	var d WebhookDelivery
	return &d, c.call(ctx, opRedeliver, opRedeliver.fill(endpointID, deliveryID), nil, nil, &d, nil)
}

// Event is a webhook the outbox sent: a payment entered Data.Status.
type Event struct {
	// ID is the webhook-id header: the same on every retry and redelivery,
	// so a receiver that keeps the ids it processed can drop a duplicate.
	ID        string    `json:"-"`
	Type      string    `json:"type"`
	Timestamp time.Time `json:"timestamp"`
	Data      EventData `json:"data"`
}

// EventData is the payment as the change left it. Deliveries are retried
// independently and may arrive out of order: keep the highest Version seen
// per payment and drop an event whose Version is not above it.
type EventData struct {
	PaymentID      string   `json:"paymentId"`
	OrderID        string   `json:"orderId"`
	Status         Status   `json:"status"`
	PreviousStatus Status   `json:"previousStatus"`
	Version        int64    `json:"version"`
	Amount         int64    `json:"amount"`
	Currency       string   `json:"currency"`
	ApprovedAmount int64    `json:"approvedAmount"`
	BalanceAmount  int64    `json:"balanceAmount"`
	CanceledAmount int64    `json:"canceledAmount"`
	Failure        *Failure `json:"failure,omitempty"`
	// VirtualAccount is the account of a payment by bank transfer
	// (payment.waiting_for_deposit carries it for the checkout to show).
	VirtualAccount *VirtualAccount `json:"virtualAccount,omitempty"`
	UpdatedAt      time.Time       `json:"updatedAt"`
}

// VerifyWebhook checks a delivery's Standard Webhooks signature under the
// endpoint's secret (whsec_…) and that its timestamp is within five minutes
// of now, and returns its event. Pass the raw body exactly as received: a
// body decoded and encoded again no longer matches its signature. Answer
// 2xx only to a delivery that verifies.
func VerifyWebhook(secret string, header http.Header, body []byte) (*Event, error) {
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		return nil, fmt.Errorf("payment outbox webhook: bad secret: %w", err)
	}
	if err := wh.Verify(body, header); err != nil {
		return nil, fmt.Errorf("payment outbox webhook: %w", err)
	}
	var ev Event
	if err := json.Unmarshal(body, &ev); err != nil {
		return nil, fmt.Errorf("payment outbox webhook: bad body: %w", err)
	}
	ev.ID = header.Get("webhook-id")
	return &ev, nil
}
