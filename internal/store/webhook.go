package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/payment-outbox/payment-outbox/internal/payment"
	"github.com/payment-outbox/payment-outbox/internal/store/dbsqlc"
	"github.com/payment-outbox/payment-outbox/internal/webhook"
)

var (
	errEndpointNotFound = payment.Errorf(payment.KindNotFound, webhook.CodeEndpointNotFound, "webhook endpoint not found")
	errDeliveryNotFound = payment.Errorf(payment.KindNotFound, webhook.CodeDeliveryNotFound, "webhook delivery not found")
	// ErrDeliverySettled: the delivery is no longer pending (another run
	// of its job succeeded or gave up first); an attempt's result is not
	// recorded over that.
	ErrDeliverySettled = errors.New("webhook delivery is no longer pending")
)

// InsertWebhookEndpoint stores a new endpoint of e.Owner, unless the owner
// already has max active endpoints (webhook.CheckRoom) or an active endpoint
// with e.URL (webhook.CodeURLTaken, 409): then it writes nothing. Run it in
// a transaction: the owner's row is locked until it ends, so concurrent
// registrations of one owner count one after the other.
func (s *Store) InsertWebhookEndpoint(ctx context.Context, db DBTX, e webhook.Endpoint, max int) (webhook.Endpoint, error) {
	uid, err := uuid.Parse(e.ID)
	if err != nil {
		return webhook.Endpoint{}, fmt.Errorf("error parsing webhook endpoint id: %w", err)
	}
	owner := ownerName(e.Owner)
	if _, err := s.q.OwnerLockForEndpoints(ctx, db, owner); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return webhook.Endpoint{}, fmt.Errorf("error inserting webhook endpoint: no owner %q", owner)
		}
		return webhook.Endpoint{}, fmt.Errorf("error locking owner for webhook endpoints: %w", err)
	}
	active, err := s.q.WebhookEndpointCountActive(ctx, db, owner)
	if err != nil {
		return webhook.Endpoint{}, fmt.Errorf("error counting webhook endpoints: %w", err)
	}
	if err := webhook.CheckRoom(int(active), max); err != nil {
		return webhook.Endpoint{}, err
	}
	row, err := s.q.WebhookEndpointInsert(ctx, db, dbsqlc.WebhookEndpointInsertParams{
		ID: uid, Url: e.URL, Events: e.Events, Secret: e.Secret, Owner: owner,
	})
	if isUniqueViolation(err, constraintEndpointURL) {
		return webhook.Endpoint{}, payment.Errorf(payment.KindConflict, webhook.CodeURLTaken,
			"an active webhook endpoint already has the URL %s; rotate its secret, or disable it first", e.URL)
	}
	if err != nil {
		return webhook.Endpoint{}, fmt.Errorf("error inserting webhook endpoint: %w", err)
	}
	return toAppEndpoint(row), nil
}

// constraintEndpointURL is the index that keeps an owner's active
// endpoints' URLs apart.
const constraintEndpointURL = "webhook_endpoints_owner_url_idx"

// WebhookEndpoint returns an endpoint of reach by id; an id that is not a
// UUID, or an endpoint out of reach, is not found.
func (s *Store) WebhookEndpoint(ctx context.Context, db DBTX, reach payment.Reach, id string) (webhook.Endpoint, error) {
	uid, err := uuid.Parse(id)
	if err != nil {
		return webhook.Endpoint{}, errEndpointNotFound
	}
	return endpointOrNotFound(s.q.WebhookEndpointGet(ctx, db, dbsqlc.WebhookEndpointGetParams{ID: uid, Owner: ownerArg(reach)}))
}

// WebhookEndpoints returns every endpoint of reach, oldest first.
func (s *Store) WebhookEndpoints(ctx context.Context, db DBTX, reach payment.Reach) ([]webhook.Endpoint, error) {
	rows, err := s.q.WebhookEndpointList(ctx, db, ownerArg(reach))
	if err != nil {
		return nil, fmt.Errorf("error listing webhook endpoints: %w", err)
	}
	return toAppEndpoints(rows), nil
}

// DisableWebhookEndpoint disables an endpoint of reach (again: a no-op).
func (s *Store) DisableWebhookEndpoint(ctx context.Context, db DBTX, reach payment.Reach, id string) (webhook.Endpoint, error) {
	uid, err := uuid.Parse(id)
	if err != nil {
		return webhook.Endpoint{}, errEndpointNotFound
	}
	return endpointOrNotFound(s.q.WebhookEndpointDisable(ctx, db, dbsqlc.WebhookEndpointDisableParams{ID: uid, Owner: ownerArg(reach)}))
}

// RotateWebhookSecret makes secret an enabled endpoint's signing secret; the
// old one keeps signing until previousExpiresAt. A disabled endpoint is not
// found by it: the caller tells the two apart.
func (s *Store) RotateWebhookSecret(ctx context.Context, db DBTX, id, secret string, previousExpiresAt time.Time) (webhook.Endpoint, error) {
	uid, err := uuid.Parse(id)
	if err != nil {
		return webhook.Endpoint{}, errEndpointNotFound
	}
	return endpointOrNotFound(s.q.WebhookEndpointRotateSecret(ctx, db, dbsqlc.WebhookEndpointRotateSecretParams{
		ID: uid, Secret: secret, PreviousExpiresAt: &previousExpiresAt,
	}))
}

// InsertWebhookDelivery stores a pending delivery.
func (s *Store) InsertWebhookDelivery(ctx context.Context, db DBTX, d webhook.Delivery) (webhook.Delivery, error) {
	id, err := uuid.Parse(d.ID)
	if err != nil {
		return webhook.Delivery{}, fmt.Errorf("error parsing webhook delivery id: %w", err)
	}
	endpointID, err := uuid.Parse(d.EndpointID)
	if err != nil {
		return webhook.Delivery{}, fmt.Errorf("error parsing webhook endpoint id: %w", err)
	}
	paymentID, err := uuid.Parse(d.PaymentID)
	if err != nil {
		return webhook.Delivery{}, fmt.Errorf("error parsing payment id: %w", err)
	}
	row, err := s.q.WebhookDeliveryInsert(ctx, db, dbsqlc.WebhookDeliveryInsertParams{
		ID: id, EndpointID: endpointID, EventID: d.EventID, EventType: d.EventType, PaymentID: paymentID, Payload: d.Payload,
	})
	if err != nil {
		return webhook.Delivery{}, fmt.Errorf("error inserting webhook delivery: %w", err)
	}
	return toAppDelivery(row), nil
}

// InsertWebhookDeliveries stores one pending delivery of an event per
// endpoint, in one statement; ids are the deliveries' ids, one per
// endpoint.
func (s *Store) InsertWebhookDeliveries(ctx context.Context, db DBTX, ids, endpointIDs []string, eventID, eventType, paymentID string, payload []byte) error {
	if len(ids) != len(endpointIDs) {
		return fmt.Errorf("error inserting webhook deliveries: %d ids for %d endpoints", len(ids), len(endpointIDs))
	}
	params := dbsqlc.WebhookDeliveryInsertManyParams{
		Ids: make([]uuid.UUID, len(ids)), EndpointIds: make([]uuid.UUID, len(ids)),
		EventID: eventID, EventType: eventType, Payload: payload,
	}
	var err error
	for i := range ids {
		if params.Ids[i], err = uuid.Parse(ids[i]); err != nil {
			return fmt.Errorf("error parsing webhook delivery id: %w", err)
		}
		if params.EndpointIds[i], err = uuid.Parse(endpointIDs[i]); err != nil {
			return fmt.Errorf("error parsing webhook endpoint id: %w", err)
		}
	}
	if params.PaymentID, err = uuid.Parse(paymentID); err != nil {
		return fmt.Errorf("error parsing payment id: %w", err)
	}
	if err := s.q.WebhookDeliveryInsertMany(ctx, db, params); err != nil {
		return fmt.Errorf("error inserting webhook deliveries: %w", err)
	}
	return nil
}

// WebhookDelivery returns a delivery by id.
func (s *Store) WebhookDelivery(ctx context.Context, db DBTX, id string) (webhook.Delivery, error) {
	uid, err := uuid.Parse(id)
	if err != nil {
		return webhook.Delivery{}, errDeliveryNotFound
	}
	return deliveryOrNotFound(s.q.WebhookDeliveryGet(ctx, db, uid))
}

// WebhookDeliveries returns an endpoint's newest deliveries, at most limit.
func (s *Store) WebhookDeliveries(ctx context.Context, db DBTX, endpointID string, limit int) ([]webhook.Delivery, error) {
	uid, err := uuid.Parse(endpointID)
	if err != nil {
		return nil, errEndpointNotFound
	}
	rows, err := s.q.WebhookDeliveryListByEndpoint(ctx, db, dbsqlc.WebhookDeliveryListByEndpointParams{
		EndpointID: uid, MaxRows: int32(limit),
	})
	if err != nil {
		return nil, fmt.Errorf("error listing webhook deliveries: %w", err)
	}
	out := make([]webhook.Delivery, len(rows))
	for i, r := range rows {
		out[i] = toAppDelivery(r)
	}
	return out, nil
}

// RecordWebhookAttempt counts one attempt at a delivery and what came of it
// (httpStatus 0: no answer).
func (s *Store) RecordWebhookAttempt(ctx context.Context, db DBTX, id string, status webhook.DeliveryStatus, httpStatus int, errText string) (webhook.Delivery, error) {
	uid, err := uuid.Parse(id)
	if err != nil {
		return webhook.Delivery{}, errDeliveryNotFound
	}
	var hs *int32
	if httpStatus != 0 {
		v := int32(httpStatus)
		hs = &v
	}
	row, err := s.q.WebhookDeliveryRecordAttempt(ctx, db, dbsqlc.WebhookDeliveryRecordAttemptParams{
		ID: uid, Status: string(status), LastHttpStatus: hs, LastError: errText,
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return webhook.Delivery{}, ErrDeliverySettled
	}
	return deliveryOrNotFound(row, err)
}

// RequeueWebhookDelivery makes a delivery pending again, for a redelivery.
func (s *Store) RequeueWebhookDelivery(ctx context.Context, db DBTX, id string) (webhook.Delivery, error) {
	uid, err := uuid.Parse(id)
	if err != nil {
		return webhook.Delivery{}, errDeliveryNotFound
	}
	return deliveryOrNotFound(s.q.WebhookDeliveryRequeue(ctx, db, uid))
}

func endpointOrNotFound(row dbsqlc.WebhookEndpoint, err error) (webhook.Endpoint, error) {
	if errors.Is(err, pgx.ErrNoRows) {
		return webhook.Endpoint{}, errEndpointNotFound
	}
	if err != nil {
		return webhook.Endpoint{}, fmt.Errorf("error reading webhook endpoint: %w", err)
	}
	return toAppEndpoint(row), nil
}

func deliveryOrNotFound(row dbsqlc.WebhookDelivery, err error) (webhook.Delivery, error) {
	if errors.Is(err, pgx.ErrNoRows) {
		return webhook.Delivery{}, errDeliveryNotFound
	}
	if err != nil {
		return webhook.Delivery{}, fmt.Errorf("error reading webhook delivery: %w", err)
	}
	return toAppDelivery(row), nil
}

func toAppEndpoints(rows []dbsqlc.WebhookEndpoint) []webhook.Endpoint {
	out := make([]webhook.Endpoint, len(rows))
	for i, r := range rows {
		out[i] = toAppEndpoint(r)
	}
	return out
}

func toAppEndpoint(r dbsqlc.WebhookEndpoint) webhook.Endpoint {
	return webhook.Endpoint{
		ID: r.ID.String(), Owner: payment.Owner(r.Owner), URL: r.Url, Events: r.Events, Secret: r.Secret,
		PreviousSecret: deref(r.PreviousSecret), PreviousSecretExpiresAt: r.PreviousSecretExpiresAt,
		CreatedAt: r.CreatedAt, DisabledAt: r.DisabledAt,
	}
}

func toAppDelivery(r dbsqlc.WebhookDelivery) webhook.Delivery {
	d := webhook.Delivery{
		ID: r.ID.String(), EndpointID: r.EndpointID.String(), EventID: r.EventID, EventType: r.EventType,
		PaymentID: r.PaymentID.String(), Payload: r.Payload, Status: webhook.DeliveryStatus(r.Status),
		Attempts: int(r.Attempts), LastError: r.LastError, CreatedAt: r.CreatedAt,
		LastAttemptAt: r.LastAttemptAt, DeliveredAt: r.DeliveredAt,
	}
	if r.LastHttpStatus != nil {
		d.LastHTTPStatus = int(*r.LastHttpStatus)
	}
	return d
}
