package relay_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"github.com/stretchr/testify/require"

	"github.com/payment-outbox/payment-outbox/internal/payflow"
	"github.com/payment-outbox/payment-outbox/internal/payment"
	"github.com/payment-outbox/payment-outbox/internal/paymentjob"
	"github.com/payment-outbox/payment-outbox/internal/relay"
	"github.com/payment-outbox/payment-outbox/internal/webhook"
)

// receiver is a webhook endpoint that verifies every delivery's signature
// with the Standard Webhooks library, and answers from a script.
type receiver struct {
	t      *testing.T
	srv    *httptest.Server
	secret string

	mu       sync.Mutex
	answers  []int // status per request; 200 once they run out
	events   []webhook.Event
	ids      []string
	requests int
}

func newReceiver(t *testing.T, answers ...int) *receiver {
	rc := &receiver{t: t, answers: answers}
	rc.srv = httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.requests++
	if len(rc.answers) > 0 {
		status := rc.answers[0]
		rc.answers = rc.answers[1:]
		if status != http.StatusOK {
			w.WriteHeader(status)
			return
		}
	}
	wh, err := standardwebhooks.NewWebhook(rc.secret)
	if err == nil {
		err = wh.Verify(body, r.Header)
	}
	if err != nil {
		rc.t.Errorf("delivery does not verify: %v", err)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var ev webhook.Event
	if err := json.Unmarshal(body, &ev); err != nil {
		rc.t.Errorf("delivery body: %v", err)
	}
	rc.events = append(rc.events, ev)
	rc.ids = append(rc.ids, r.Header.Get(webhook.HeaderID))
	w.WriteHeader(http.StatusNoContent)
}

func (rc *receiver) setSecret(s string) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.secret = s
}

func (rc *receiver) received() []webhook.Event {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]webhook.Event(nil), rc.events...)
}

// endpoint registers rc for events the way the api does.
func (b *testBundle) endpoint(t *testing.T, url string, events ...string) webhook.Endpoint {
	t.Helper()
	secret, err := webhook.NewSecret()
	require.NoError(t, err)
	e, err := b.store.InsertWebhookEndpoint(context.Background(), b.pool, webhook.Endpoint{
		ID: uuid.NewString(), URL: url, Events: events, Secret: secret,
	}, webhook.DefaultMaxEndpoints)
	require.NoError(t, err)
	return e
}

func (b *testBundle) deliveries(t *testing.T, endpointID string) []webhook.Delivery {
	t.Helper()
	ds, err := b.store.WebhookDeliveries(context.Background(), b.pool, endpointID, 100)
	require.NoError(t, err)
	return ds
}

func TestWebhooks(t *testing.T) {
	t.Parallel()

	t.Run("a confirmed payment is delivered once, signed, with its version", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{})
		rc := newReceiver(t)
		e := b.endpoint(t, rc.srv.URL, webhook.EventType(payment.StatusConfirmed), webhook.EventType(payment.StatusCanceled))
		rc.setSecret(e.Secret)
		other := b.endpoint(t, rc.srv.URL+"/failed", webhook.EventType(payment.StatusFailed))

		p, key := b.newPayment(t, 15000, nil)
		b.requestConfirm(t, p.ID, key, 15000, nil)
		confirmed := b.waitStatus(t, p.ID, payment.StatusConfirmed)
		b.waitDrained(t)

		evs := rc.received()
		require.Len(t, evs, 1)
		require.Equal(t, "payment.confirmed", evs[0].Type)
		require.Equal(t, p.ID, evs[0].Data.PaymentID)
		require.Equal(t, "confirmed", evs[0].Data.Status)
		require.Equal(t, "confirming", evs[0].Data.PreviousStatus)
		require.Equal(t, confirmed.Version, evs[0].Data.Version)
		require.Equal(t, int64(15000), evs[0].Data.BalanceAmount)

		ds := b.deliveries(t, e.ID)
		require.Len(t, ds, 1)
		require.Equal(t, webhook.DeliverySucceeded, ds[0].Status)
		require.Equal(t, 1, ds[0].Attempts)
		require.Equal(t, http.StatusNoContent, ds[0].LastHTTPStatus)
		require.Empty(t, b.deliveries(t, other.ID), "an endpoint gets only the events it asked for")

		// The cancel's outcome is the second event, with a higher version.
		b.requestCancel(t, p.ID, 0)
		canceled := b.waitStatus(t, p.ID, payment.StatusCanceled)
		b.waitDrained(t)
		evs = rc.received()
		require.Len(t, evs, 2)
		require.Equal(t, "payment.canceled", evs[1].Type)
		require.Equal(t, canceled.Version, evs[1].Data.Version)
		require.Greater(t, evs[1].Data.Version, evs[0].Data.Version)
	})

	t.Run("a failing endpoint is retried with the same webhook-id until it answers 2xx", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{})
		rc := newReceiver(t, http.StatusInternalServerError, http.StatusServiceUnavailable)
		e := b.endpoint(t, rc.srv.URL, webhook.EventType(payment.StatusConfirmed))
		rc.setSecret(e.Secret)

		p, key := b.newPayment(t, 1000, nil)
		b.requestConfirm(t, p.ID, key, 1000, nil)
		b.waitStatus(t, p.ID, payment.StatusConfirmed)
		b.waitDrained(t)

		ds := b.deliveries(t, e.ID)
		require.Len(t, ds, 1)
		require.Equal(t, webhook.DeliverySucceeded, ds[0].Status)
		require.Equal(t, 3, ds[0].Attempts)
		require.Len(t, rc.received(), 1)
		rc.mu.Lock()
		defer rc.mu.Unlock()
		require.Equal(t, ds[0].EventID, rc.ids[0])
	})

	t.Run("a change that rolls back sends nothing", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{paused: true})
		rc := newReceiver(t)
		e := b.endpoint(t, rc.srv.URL, webhook.EventType(payment.StatusCanceled))
		p, _ := b.newPayment(t, 1000, nil)

		flow, err := payflow.New(payflow.Config{Store: b.store, Outbox: b.client})
		require.NoError(t, err)
		ctx := context.Background()
		errRollback := errors.New("roll back")
		err = pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error {
			got, err := flow.Cancel(ctx, tx, payment.Everyone(), p.ID, uuid.NewString(), "changed my mind", 0, nil)
			require.NoError(t, err)
			require.Equal(t, payment.StatusCanceled, got.Status)
			require.Len(t, b.deliveriesOn(t, tx, e.ID), 1, "written in the change's transaction")
			return errRollback
		})
		require.ErrorIs(t, err, errRollback)
		require.Empty(t, b.deliveries(t, e.ID))
		var jobs int
		require.NoError(t, b.pool.QueryRow(ctx, "SELECT count(*) FROM river_job WHERE kind = $1",
			paymentjob.WebhookArgs{}.Kind()).Scan(&jobs))
		require.Zero(t, jobs)
	})

	t.Run("a disabled endpoint gets nothing", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{})
		rc := newReceiver(t)
		e := b.endpoint(t, rc.srv.URL, webhook.EventType(payment.StatusConfirmed))
		_, err := b.store.DisableWebhookEndpoint(context.Background(), b.pool, payment.Everyone(), e.ID)
		require.NoError(t, err)

		p, key := b.newPayment(t, 1000, nil)
		b.requestConfirm(t, p.ID, key, 1000, nil)
		b.waitStatus(t, p.ID, payment.StatusConfirmed)
		b.waitDrained(t)
		require.Empty(t, b.deliveries(t, e.ID))
		rc.mu.Lock()
		defer rc.mu.Unlock()
		require.Zero(t, rc.requests)
	})

	t.Run("without AllowPrivate a loopback endpoint is never dialled", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{webhooks: relay.WebhookConfig{
			Schedule: relay.Schedule{Initial: 10 * time.Millisecond, Max: 10 * time.Millisecond},
		}})
		rc := newTLSReceiver(t)
		e := b.endpoint(t, rc.srv.URL, webhook.EventType(payment.StatusConfirmed))

		p, key := b.newPayment(t, 1000, nil)
		b.requestConfirm(t, p.ID, key, 1000, nil)
		b.waitStatus(t, p.ID, payment.StatusConfirmed)
		require.Eventually(t, func() bool {
			ds := b.deliveries(t, e.ID)
			return len(ds) == 1 && ds[0].Attempts >= 2
		}, 10*time.Second, 10*time.Millisecond)
		ds := b.deliveries(t, e.ID)
		require.Equal(t, webhook.DeliveryPending, ds[0].Status)
		require.Contains(t, ds[0].LastError, "not a public address")
		rc.mu.Lock()
		defer rc.mu.Unlock()
		require.Zero(t, rc.requests)
	})

	t.Run("without AllowPrivate a plain http endpoint is never sent to", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{webhooks: relay.WebhookConfig{
			Schedule: relay.Schedule{Initial: 10 * time.Millisecond, Max: 10 * time.Millisecond},
		}})
		rc := newReceiver(t)
		// Registered before the api required https (or straight into the
		// table): the relay still refuses to send a payment in the clear.
		e := b.endpoint(t, rc.srv.URL, webhook.EventType(payment.StatusConfirmed))

		p, key := b.newPayment(t, 1000, nil)
		b.requestConfirm(t, p.ID, key, 1000, nil)
		b.waitStatus(t, p.ID, payment.StatusConfirmed)
		b.waitDrained(t)
		ds := b.deliveries(t, e.ID)
		require.Len(t, ds, 1)
		require.Equal(t, webhook.DeliveryFailed, ds[0].Status, "failed at once, not retried for days")
		require.Contains(t, ds[0].LastError, "not https")
		rc.mu.Lock()
		defer rc.mu.Unlock()
		require.Zero(t, rc.requests)
	})
}

// newTLSReceiver is newReceiver over https (a certificate the relay does
// not trust: for tests in which it must never get as far as TLS).
func newTLSReceiver(t *testing.T, answers ...int) *receiver {
	rc := &receiver{t: t, answers: answers}
	rc.srv = httptest.NewTLSServer(http.HandlerFunc(rc.serve))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (b *testBundle) deliveriesOn(t *testing.T, tx pgx.Tx, endpointID string) []webhook.Delivery {
	t.Helper()
	ds, err := b.store.WebhookDeliveries(context.Background(), tx, endpointID, 100)
	require.NoError(t, err)
	return ds
}

// TestWebhookSchedule: a delivery's attempts span about three days, the
// time a receiver has to come back.
func TestWebhookSchedule(t *testing.T) {
	t.Parallel()
	var total time.Duration
	for attempt := 1; attempt < paymentjob.WebhookMaxAttempts; attempt++ {
		total += relay.WebhookSchedule.Delay(attempt)
	}
	require.Greater(t, total, 50*time.Hour)
	require.Less(t, total, 90*time.Hour)
}
