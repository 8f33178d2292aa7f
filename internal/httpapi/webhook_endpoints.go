package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/labstack/echo/v4"

	"github.com/payment-outbox/payment-outbox/internal/payment"
	"github.com/payment-outbox/payment-outbox/internal/webhook"
)

// The checkout's webhook endpoints: where the relay sends a signed event for
// every payment status change (internal/webhook). The api only records them;
// it never calls out.

// createWebhookEndpointRequest is the body of POST /v1/webhook-endpoints.
// Without events the endpoint receives every event type.
type createWebhookEndpointRequest struct {
	URL    string    `json:"url"`
	Events *[]string `json:"events"`
}

// webhookEndpointResponse is an endpoint as the API shows it. Secret is
// there only in the answers that make one (create and rotate): it is shown
// once.
type webhookEndpointResponse struct {
	ID         string     `json:"id"`
	Owner      string     `json:"owner"`
	URL        string     `json:"url"`
	Events     []string   `json:"events"`
	Secret     string     `json:"secret,omitempty"`
	CreatedAt  time.Time  `json:"createdAt"`
	DisabledAt *time.Time `json:"disabledAt"`
}

// webhookEndpointListResponse is every endpoint, oldest first.
type webhookEndpointListResponse struct {
	Endpoints []webhookEndpointResponse `json:"endpoints"`
}

// webhookDeliveryResponse is one event for one endpoint and how sending it
// went.
type webhookDeliveryResponse struct {
	ID             string          `json:"id"`
	EndpointID     string          `json:"endpointId"`
	EventID        string          `json:"eventId"`
	EventType      string          `json:"eventType"`
	PaymentID      string          `json:"paymentId"`
	Status         string          `json:"status"`
	Attempts       int             `json:"attempts"`
	LastHTTPStatus *int            `json:"lastHttpStatus"`
	LastError      string          `json:"lastError"`
	Payload        json.RawMessage `json:"payload"`
	CreatedAt      time.Time       `json:"createdAt"`
	LastAttemptAt  *time.Time      `json:"lastAttemptAt"`
	DeliveredAt    *time.Time      `json:"deliveredAt"`
}

// webhookDeliveryListResponse is an endpoint's deliveries, newest first.
type webhookDeliveryListResponse struct {
	Deliveries []webhookDeliveryResponse `json:"deliveries"`
}

func toWebhookEndpointResponse(e webhook.Endpoint) webhookEndpointResponse {
	events := e.Events
	if events == nil {
		events = []string{}
	}
	return webhookEndpointResponse{
		ID: e.ID, Owner: string(e.Owner), URL: e.URL, Events: events, CreatedAt: e.CreatedAt.UTC(), DisabledAt: utcPtr(e.DisabledAt),
	}
}

func toWebhookDeliveryResponse(d webhook.Delivery) webhookDeliveryResponse {
	r := webhookDeliveryResponse{
		ID: d.ID, EndpointID: d.EndpointID, EventID: d.EventID, EventType: d.EventType, PaymentID: d.PaymentID,
		Status: string(d.Status), Attempts: d.Attempts, LastError: d.LastError, Payload: json.RawMessage(d.Payload),
		CreatedAt: d.CreatedAt.UTC(), LastAttemptAt: utcPtr(d.LastAttemptAt), DeliveredAt: utcPtr(d.DeliveredAt),
	}
	if len(r.Payload) == 0 {
		r.Payload = json.RawMessage("{}")
	}
	if d.LastHTTPStatus != 0 {
		s := d.LastHTTPStatus
		r.LastHTTPStatus = &s
	}
	return r
}

// createWebhookEndpoint registers an endpoint of the caller's owner and
// answers with its signing secret, the only time the secret is shown. An
// owner has at most Config.MaxWebhookEndpoints active endpoints, none two
// with one URL.
func (s *Server) createWebhookEndpoint(c echo.Context) error {
	var req createWebhookEndpointRequest
	if err := s.readJSON(c, &req); err != nil {
		return err
	}
	events := webhook.EventTypes()
	if req.Events != nil {
		if len(*req.Events) == 0 {
			return payment.Errorf(payment.KindInvalid, payment.CodeInvalidRequest,
				"events must name at least one event type; omit it to receive them all")
		}
		events = nil
		for _, ev := range *req.Events {
			if !webhook.ValidEventType(ev) {
				return payment.Errorf(payment.KindInvalid, payment.CodeInvalidRequest,
					"events: %s is not an event type; they are %v", quote(ev), webhook.EventTypes())
			}
			if !slices.Contains(events, ev) {
				events = append(events, ev)
			}
		}
	}
	ctx := c.Request().Context()
	if err := webhook.CheckURL(ctx, req.URL, s.webhookAllowPrivate, s.resolver); err != nil {
		return err
	}
	secret, err := webhook.NewSecret()
	if err != nil {
		return err
	}
	// In a transaction: the store counts the owner's endpoints under a lock
	// of its row, and a refusal writes nothing.
	var e webhook.Endpoint
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		e, err = s.store.InsertWebhookEndpoint(ctx, tx, webhook.Endpoint{
			ID: uuid.Must(uuid.NewV7()).String(), Owner: ownerOf(c), URL: req.URL, Events: events, Secret: secret,
		}, s.maxWebhookEndpoints)
		return err
	})
	if err != nil {
		return fmt.Errorf("error creating webhook endpoint: %w", err)
	}
	out := toWebhookEndpointResponse(e)
	out.Secret = e.Secret
	c.Response().Header().Set(echo.HeaderLocation, "/v1/webhook-endpoints/"+e.ID)
	return c.JSON(http.StatusCreated, out)
}

// listWebhookEndpoints answers with every endpoint, without secrets.
func (s *Server) listWebhookEndpoints(c echo.Context) error {
	es, err := s.store.WebhookEndpoints(c.Request().Context(), s.pool, reachOf(c))
	if err != nil {
		return err
	}
	out := webhookEndpointListResponse{Endpoints: make([]webhookEndpointResponse, len(es))}
	for i, e := range es {
		out.Endpoints[i] = toWebhookEndpointResponse(e)
	}
	return c.JSON(http.StatusOK, out)
}

// disableWebhookEndpoint stops all deliveries to an endpoint, including the
// ones still being retried (they end failed). There is no enabling again:
// register the URL anew.
func (s *Server) disableWebhookEndpoint(c echo.Context) error {
	e, err := s.store.DisableWebhookEndpoint(c.Request().Context(), s.pool, reachOf(c), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toWebhookEndpointResponse(e))
}

// rotateWebhookSecret gives an endpoint a new signing secret, shown once.
// The old one keeps signing beside it (a second v1 signature) for
// webhook.RotationGrace, so receivers can switch without losing an event.
func (s *Server) rotateWebhookSecret(c echo.Context) error {
	ctx := c.Request().Context()
	secret, err := webhook.NewSecret()
	if err != nil {
		return err
	}
	var e webhook.Endpoint
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		found, err := s.store.WebhookEndpoint(ctx, tx, reachOf(c), c.Param("id"))
		if err != nil {
			return err
		}
		if found.DisabledAt != nil {
			return payment.Errorf(payment.KindConflict, webhook.CodeEndpointDisabled,
				"webhook endpoint %s is disabled; register a new one", found.ID)
		}
		e, err = s.store.RotateWebhookSecret(ctx, tx, found.ID, secret, s.now().Add(webhook.RotationGrace))
		return err
	})
	if err != nil {
		return err
	}
	out := toWebhookEndpointResponse(e)
	out.Secret = e.Secret
	return c.JSON(http.StatusOK, out)
}

// Bounds of GET /v1/webhook-endpoints/{id}/deliveries.
const (
	defaultDeliveryLimit = 100
	maxDeliveryLimit     = 1000
)

// listWebhookDeliveries answers with an endpoint's newest deliveries, at
// most ?limit= (default 100, at most 1000).
func (s *Server) listWebhookDeliveries(c echo.Context) error {
	limit := defaultDeliveryLimit
	if v, err := singleQueryValue(c.QueryParams(), "limit"); err != nil {
		return err
	} else if v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxDeliveryLimit {
			return payment.Errorf(payment.KindInvalid, payment.CodeInvalidRequest,
				"limit must be an integer from 1 to %d, not %s", maxDeliveryLimit, quote(v))
		}
		limit = n
	}
	ctx := c.Request().Context()
	e, err := s.store.WebhookEndpoint(ctx, s.pool, reachOf(c), c.Param("id"))
	if err != nil {
		return err
	}
	ds, err := s.store.WebhookDeliveries(ctx, s.pool, e.ID, limit)
	if err != nil {
		return err
	}
	out := webhookDeliveryListResponse{Deliveries: make([]webhookDeliveryResponse, len(ds))}
	for i, d := range ds {
		out.Deliveries[i] = toWebhookDeliveryResponse(d)
	}
	return c.JSON(http.StatusOK, out)
}

// redeliverWebhook sends a delivery again, under the same webhook-id (the
// receiver may drop it as a duplicate if it processed the first): 202, the
// relay sends it.
func (s *Server) redeliverWebhook(c echo.Context) error {
	ctx := c.Request().Context()
	var d webhook.Delivery
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		d, err = s.flow.Redeliver(ctx, tx, reachOf(c), c.Param("id"), c.Param("deliveryId"))
		return err
	})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, toWebhookDeliveryResponse(d))
}
