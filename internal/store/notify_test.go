package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/payment-outbox/payment-outbox/internal/dbtest"
	"github.com/payment-outbox/payment-outbox/internal/store"
	"github.com/payment-outbox/payment-outbox/internal/webhook"
)

// TestNotifyAndWebhookEndpointsFor: the one statement a status change runs
// notifies the payment's waiters on commit whether or not an endpoint
// matches, and lists exactly the enabled endpoints that asked for the event,
// as WebhookEndpointsFor does.
func TestNotifyAndWebhookEndpointsFor(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	pool := dbtest.Pool(t)
	st := store.New()

	listener, err := pgx.ConnectConfig(ctx, pool.Config().ConnConfig)
	require.NoError(t, err)
	defer func() { _ = listener.Close(context.WithoutCancel(ctx)) }()
	_, err = listener.Exec(ctx, "LISTEN "+store.WaitChannel)
	require.NoError(t, err)
	notified := func() string {
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		n, err := listener.WaitForNotification(wctx)
		require.NoError(t, err)
		return n.Payload
	}
	check := func(paymentID, eventType string) []string {
		var ids []string
		require.NoError(t, pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			eps, err := st.NotifyAndWebhookEndpointsFor(ctx, tx, paymentID, eventType)
			for _, e := range eps {
				ids = append(ids, e.ID)
			}
			want, err2 := st.WebhookEndpointsFor(ctx, tx, eventType)
			require.NoError(t, err2)
			require.Equal(t, want, eps)
			return err
		}))
		require.Equal(t, paymentID, notified())
		return ids
	}

	// No endpoint at all: still notified.
	p1 := uuid.NewString()
	require.Empty(t, check(p1, "payment.confirmed"))

	add := func(events ...string) string {
		e, err := st.InsertWebhookEndpoint(ctx, pool, webhook.Endpoint{
			ID: uuid.NewString(), URL: "https://shop.example/webhooks", Events: events, Secret: "whsec_dGVzdA==",
		})
		require.NoError(t, err)
		return e.ID
	}
	all := add(webhook.EventTypes()...)
	confirmedOnly := add("payment.confirmed")
	add("payment.canceled")
	disabled := add("payment.confirmed")
	_, err = st.DisableWebhookEndpoint(ctx, pool, disabled)
	require.NoError(t, err)

	require.Equal(t, []string{all, confirmedOnly}, check(uuid.NewString(), "payment.confirmed"))
	require.Equal(t, []string{all}, check(uuid.NewString(), "payment.failed"))

	// Rolled back: no notification (the next one is the later commit's).
	require.Error(t, pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		_, err := st.NotifyAndWebhookEndpointsFor(ctx, tx, "rolled-back", "payment.confirmed")
		require.NoError(t, err)
		return context.Canceled
	}))
	p2 := uuid.NewString()
	check(p2, "payment.confirmed")
}
