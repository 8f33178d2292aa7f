package relay_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/payment-outbox/payment-outbox/internal/payment"
	"github.com/payment-outbox/payment-outbox/internal/webhook"
)

// attemptsWrittenWithPayment returns, for each of a payment's attempts
// oldest first, whether the attempt row was last written by the transaction
// that last wrote the payment row.
func (b *testBundle) attemptsWrittenWithPayment(t *testing.T, id string) []bool {
	t.Helper()
	rows, err := b.pool.Query(context.Background(), `
		SELECT a.xmin::text = p.xmin::text
		FROM payment_attempts a JOIN payments p ON p.id = a.payment_id
		WHERE p.id = $1 ORDER BY a.id`, id)
	require.NoError(t, err)
	var out []bool
	for rows.Next() {
		var same bool
		require.NoError(t, rows.Scan(&same))
		out = append(out, same)
	}
	require.NoError(t, rows.Err())
	return out
}

// TestOutcomeCarriesItsAnswer: the gateway answer a confirm settles on is
// written in the outcome's own transaction (payment update, attempt
// completion, job completion), and an outcome that rolls back leaves the
// answer to be recorded on its own, the job to run again under the same
// key, and the gateway's replay to be recorded once.
func TestOutcomeCarriesItsAnswer(t *testing.T) {
	t.Parallel()

	t.Run("SameTransaction", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{})
		p, key := b.newPayment(t, 15000, nil)
		b.requestConfirm(t, p.ID, key, 15000, nil)

		got := b.waitStatus(t, p.ID, payment.StatusConfirmed)
		require.Equal(t, []string{"confirm:success"}, ops(got.Attempts))
		a := got.Attempts[0]
		require.NotNil(t, a.FinishedAt)
		require.Equal(t, 200, a.HTTPStatus)
		require.NotNil(t, a.Gateway)
		require.Equal(t, "DONE", a.Gateway.Status)
		require.Equal(t, []bool{true}, b.attemptsWrittenWithPayment(t, p.ID))
		b.waitDrained(t)
		var state string
		require.NoError(t, b.pool.QueryRow(context.Background(),
			`SELECT state FROM river_job WHERE kind = 'payment_confirm' AND args->>'paymentId' = $1`, p.ID).Scan(&state))
		require.Equal(t, "completed", state)
	})

	t.Run("RolledBackOutcome", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{})
		// The first outcome transaction that would confirm fails at the
		// payment's update; a sequence, unlike a table, keeps its count
		// through the rollback.
		_, err := b.pool.Exec(context.Background(), `
			CREATE SEQUENCE fail_once;
			CREATE FUNCTION fail_first_confirm() RETURNS trigger LANGUAGE plpgsql AS $$
			BEGIN
				IF NEW.status = 'confirmed' AND nextval('fail_once') = 1 THEN
					RAISE EXCEPTION 'injected outcome failure';
				END IF;
				RETURN NEW;
			END $$;
			CREATE TRIGGER fail_first_confirm BEFORE UPDATE ON payments
				FOR EACH ROW EXECUTE FUNCTION fail_first_confirm();`)
		require.NoError(t, err)

		p, key := b.newPayment(t, 15000, nil)
		b.requestConfirm(t, p.ID, key, 15000, nil)

		got := b.waitStatus(t, p.ID, payment.StatusConfirmed)
		// The first answer was recorded after its outcome rolled back, on
		// its own; the second, the gateway's replay under the same key,
		// with the outcome that committed.
		require.Equal(t, []string{"confirm:success", "confirm:success"}, ops(got.Attempts))
		for _, a := range got.Attempts {
			require.NotNil(t, a.FinishedAt)
			require.Equal(t, got.ConfirmIdempotencyKey, a.IdempotencyKey)
		}
		require.Equal(t, []bool{false, true}, b.attemptsWrittenWithPayment(t, p.ID))
		require.Equal(t, 1, b.ledger(t, key).Approvals)
		b.waitDrained(t)
	})
}

// TestOneEventManyEndpoints: a status change's event goes to every endpoint
// that asked for it, one delivery row and one job each (written by one
// insert each), under one event id, and each endpoint receives it once.
func TestOneEventManyEndpoints(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	var receivers []*receiver
	var endpoints []webhook.Endpoint
	for range 3 {
		rc := newReceiver(t)
		e := b.endpoint(t, rc.srv.URL, webhook.EventType(payment.StatusConfirmed))
		rc.setSecret(e.Secret)
		receivers, endpoints = append(receivers, rc), append(endpoints, e)
	}

	p, key := b.newPayment(t, 15000, nil)
	b.requestConfirm(t, p.ID, key, 15000, nil)
	confirmed := b.waitStatus(t, p.ID, payment.StatusConfirmed)
	b.waitDrained(t)

	var eventID string
	for i, e := range endpoints {
		evs := receivers[i].received()
		require.Len(t, evs, 1)
		require.Equal(t, "payment.confirmed", evs[0].Type)
		require.Equal(t, confirmed.Version, evs[0].Data.Version)
		ds := b.deliveries(t, e.ID)
		require.Len(t, ds, 1)
		require.Equal(t, webhook.DeliverySucceeded, ds[0].Status)
		if eventID == "" {
			eventID = ds[0].EventID
		}
		require.Equal(t, eventID, ds[0].EventID, "one event, one id")
	}
	var jobs int
	require.NoError(t, b.pool.QueryRow(context.Background(),
		`SELECT count(*) FROM river_job WHERE kind = 'webhook_delivery' AND state = 'completed'`).Scan(&jobs))
	require.Equal(t, len(endpoints), jobs)
}
