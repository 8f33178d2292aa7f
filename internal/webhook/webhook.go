// Package webhook is what the payment outbox tells a checkout about its
// payments, pushed: the event types and payload of a payment status change,
// the endpoints that receive them, their deliveries, the Standard Webhooks
// signature (https://www.standardwebhooks.com) and the rule that keeps
// deliveries away from private networks.
//
// Events are written by internal/payflow in the transaction of the change
// they report and sent by the relay (internal/relay's WebhookWorker); the api
// manages endpoints and shows deliveries. Nothing here touches the database
// or the network, except ResolveCheck's name lookup.
package webhook

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/payment-outbox/payment-outbox/internal/payment"
)

// Error codes of the webhook API; like payment's, they never change meaning.
const (
	CodeEndpointNotFound = "webhook_endpoint_not_found"
	CodeDeliveryNotFound = "webhook_delivery_not_found"
	// CodeURLRefused: the endpoint URL points at a loopback, private or
	// link-local address (or a name that resolves to one), where a webhook
	// could reach the operator's own network.
	CodeURLRefused = "webhook_url_refused"
	// CodeEndpointDisabled: the endpoint is disabled; it receives nothing
	// and its secret cannot be rotated.
	CodeEndpointDisabled = "webhook_endpoint_disabled"
	// CodeEndpointLimit: the owner has as many active endpoints as the
	// deployment allows; disable one first.
	CodeEndpointLimit = "webhook_endpoint_limit"
	// CodeURLTaken: an active endpoint of the same owner has the URL.
	CodeURLTaken = "webhook_url_taken"
)

// DefaultMaxEndpoints is how many active endpoints an owner may have unless
// the deployment says otherwise. Each status change writes one delivery per
// endpoint in its own transaction, so the cap bounds what one change costs
// (docs/design.md, "Owners").
const DefaultMaxEndpoints = 16

// CheckRoom refuses a new endpoint for an owner that already has active
// endpoints and max of them are allowed.
func CheckRoom(active, max int) error {
	if active >= max {
		return payment.Errorf(payment.KindUnprocessable, CodeEndpointLimit,
			"this owner already has %d active webhook endpoints, the most allowed; disable one (POST /v1/webhook-endpoints/{id}/disable) before adding another", active)
	}
	return nil
}

// Headers of a delivery, as the Standard Webhooks specification names them.
const (
	HeaderID        = standardwebhooks.HeaderWebhookID
	HeaderTimestamp = standardwebhooks.HeaderWebhookTimestamp
	HeaderSignature = standardwebhooks.HeaderWebhookSignature
)

// EventTypePrefix starts every payment event's type.
const EventTypePrefix = "payment."

// EventType names the event of a payment entering status.
func EventType(s payment.Status) string { return EventTypePrefix + string(s) }

// EventTypes lists every event type: one per state a payment can enter by a
// change (a payment starts in ready; it never moves back to it).
func EventTypes() []string {
	var out []string
	for _, s := range payment.Statuses() {
		if s != payment.StatusReady {
			out = append(out, EventType(s))
		}
	}
	return out
}

// ValidEventType reports whether t is one of EventTypes.
func ValidEventType(t string) bool { return slices.Contains(EventTypes(), t) }

// Event is the JSON body of a delivery, in the Standard Webhooks payload
// shape (type, timestamp, data).
type Event struct {
	Type      string    `json:"type"`
	Timestamp time.Time `json:"timestamp"`
	Data      EventData `json:"data"`
}

// EventData is the payment as the change left it. Version grows by one with
// every save of the payment: a receiver keeps the highest it has seen and
// drops an event with a lower one (deliveries are retried independently, so
// they may arrive out of order).
type EventData struct {
	PaymentID      string        `json:"paymentId"`
	OrderID        string        `json:"orderId"`
	Status         string        `json:"status"`
	PreviousStatus string        `json:"previousStatus"`
	Version        int64         `json:"version"`
	Amount         int64         `json:"amount"`
	Currency       string        `json:"currency"`
	ApprovedAmount int64         `json:"approvedAmount"`
	BalanceAmount  int64         `json:"balanceAmount"`
	CanceledAmount int64         `json:"canceledAmount"`
	Failure        *EventFailure `json:"failure,omitempty"`
	// VirtualAccount is the account a payment by bank transfer waits on
	// (payment.waiting_for_deposit) and was paid into.
	VirtualAccount *EventAccount `json:"virtualAccount,omitempty"`
	UpdatedAt      time.Time     `json:"updatedAt"`
}

// EventAccount is a virtual account as the gateway issued it; dueDate is
// omitted when the gateway gave none.
type EventAccount struct {
	Bank          string     `json:"bank"`
	AccountNumber string     `json:"accountNumber"`
	HolderName    string     `json:"holderName"`
	DueDate       *time.Time `json:"dueDate,omitempty"`
}

// EventFailure is why a payment failed, in the gateway's words.
type EventFailure struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// NewEvent describes p having moved from the status from, at the time at.
func NewEvent(from payment.Status, p payment.Payment, at time.Time) Event {
	e := Event{
		Type:      EventType(p.Status),
		Timestamp: at.UTC(),
		Data: EventData{
			PaymentID: p.ID, OrderID: p.OrderID, Status: string(p.Status), PreviousStatus: string(from),
			Version: p.Version, Amount: p.Amount, Currency: p.Currency,
			ApprovedAmount: p.ApprovedAmount, BalanceAmount: p.BalanceAmount, CanceledAmount: p.CanceledAmount,
			UpdatedAt: p.UpdatedAt.UTC(),
		},
	}
	if p.FailureCode != "" {
		e.Data.Failure = &EventFailure{Code: p.FailureCode, Message: p.FailureMessage}
	}
	if va := p.VirtualAccount; va != nil {
		e.Data.VirtualAccount = &EventAccount{Bank: va.Bank, AccountNumber: va.AccountNumber, HolderName: va.Holder}
		if !va.DueDate.IsZero() {
			due := va.DueDate.UTC()
			e.Data.VirtualAccount.DueDate = &due
		}
	}
	return e
}

// Encode returns the bytes a delivery sends and signs.
func (e Event) Encode() ([]byte, error) {
	b, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("error encoding webhook event: %w", err)
	}
	return b, nil
}

// Endpoint is a URL a checkout registered to receive events.
type Endpoint struct {
	ID string
	// Owner is the owner whose payments' events the endpoint receives, and
	// whose keys manage it.
	Owner  payment.Owner
	URL    string
	Events []string
	// Secret signs every delivery; PreviousSecret signs beside it until
	// PreviousSecretExpiresAt, after a rotation.
	Secret                  string
	PreviousSecret          string
	PreviousSecretExpiresAt *time.Time
	CreatedAt               time.Time
	DisabledAt              *time.Time
}

// SigningSecrets returns the secrets a delivery made at now is signed with:
// the current one, and the previous one while it is still honoured.
func (e Endpoint) SigningSecrets(now time.Time) []string {
	out := []string{e.Secret}
	if e.PreviousSecret != "" && e.PreviousSecretExpiresAt != nil && now.Before(*e.PreviousSecretExpiresAt) {
		out = append(out, e.PreviousSecret)
	}
	return out
}

// RotationGrace is how long a rotated-out secret keeps signing beside the
// new one: long enough to deploy the new secret to every receiver.
const RotationGrace = 24 * time.Hour

// DeliveryStatus is where a delivery stands.
type DeliveryStatus string

// The delivery states.
const (
	// DeliveryPending: not yet answered 2xx; the relay is trying (again).
	DeliveryPending DeliveryStatus = "pending"
	// DeliverySucceeded: the endpoint answered 2xx.
	DeliverySucceeded DeliveryStatus = "succeeded"
	// DeliveryFailed: every attempt failed, or the endpoint was disabled;
	// a redelivery sends it again.
	DeliveryFailed DeliveryStatus = "failed"
)

// Delivery is one event for one endpoint.
type Delivery struct {
	ID         string
	EndpointID string
	// EventID is the webhook-id header, shared by every endpoint's delivery
	// of the event and kept across retries and redeliveries.
	EventID        string
	EventType      string
	PaymentID      string
	Payload        []byte
	Status         DeliveryStatus
	Attempts       int
	LastHTTPStatus int // 0: no answer
	LastError      string
	CreatedAt      time.Time
	LastAttemptAt  *time.Time
	DeliveredAt    *time.Time
}

// NewSecret returns a fresh signing secret: whsec_ and 32 random bytes in
// base64, the form Standard Webhooks libraries read.
func NewSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("error generating webhook secret: %w", err)
	}
	return "whsec_" + base64.StdEncoding.EncodeToString(b), nil
}

// Sign returns the webhook-signature header for a delivery: one v1
// signature per secret, space-separated, so a receiver holding either secret
// during a rotation accepts it.
func Sign(secrets []string, id string, at time.Time, body []byte) (string, error) {
	sigs := make([]string, 0, len(secrets))
	for _, s := range secrets {
		wh, err := standardwebhooks.NewWebhook(s)
		if err != nil {
			return "", fmt.Errorf("error reading webhook secret: %w", err)
		}
		sig, err := wh.Sign(id, at, body)
		if err != nil {
			return "", fmt.Errorf("error signing webhook: %w", err)
		}
		sigs = append(sigs, sig)
	}
	return strings.Join(sigs, " "), nil
}

// NewEventID returns a webhook-id for an event.
func NewEventID(uuid string) string {
	return "evt_" + strings.ReplaceAll(uuid, "-", "")
}
