package benchseed

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
)

// invariants are queries that count seeded rows breaking a rule the bench's
// checks (and the relay) rely on; each must return 0.
var invariants = []struct{ name, sql string }{
	{"an approved payment without a confirm attempt", `
SELECT count(*) FROM payments p
WHERE p.status IN ('confirmed', 'canceled', 'partially_canceled') AND p.approved_at IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM payment_attempts a WHERE a.payment_id = p.id AND a.operation = 'confirm')`},
	{"an approved payment without an approving answer (confirm or lookup success)", `
SELECT count(*) FROM payments p
WHERE p.status IN ('confirmed', 'canceled', 'partially_canceled') AND p.approved_at IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM payment_attempts a WHERE a.payment_id = p.id
                  AND a.operation IN ('confirm', 'lookup') AND a.classification = 'success'
                  AND a.gateway_record->>'status' = 'DONE')`},
	{"a confirmed payment with a cancel", `
SELECT count(*) FROM payments p WHERE p.status = 'confirmed'
  AND EXISTS (SELECT 1 FROM payment_cancels c WHERE c.payment_id = p.id)`},
	{"amounts that do not add up", `
SELECT count(*) FROM payments
WHERE balance_amount <> approved_amount - canceled_amount
   OR (approved_at IS NOT NULL AND approved_amount <> amount)
   OR (approved_at IS NULL AND approved_amount <> 0)
   OR (status = 'confirmed' AND canceled_amount <> 0)
   OR (status = 'partially_canceled' AND (canceled_amount <= 0 OR balance_amount <= 0))`},
	{"a canceled or partially canceled payment whose cancels do not account for its canceled amount", `
SELECT count(*) FROM payments p
WHERE p.status IN ('canceled', 'partially_canceled') AND p.canceled_amount <>
      (SELECT coalesce(sum(c.canceled_amount), 0) FROM payment_cancels c WHERE c.payment_id = p.id AND c.status = 'done')`},
	{"a cancel done without its gateway call", `
SELECT count(*) FROM payment_cancels c WHERE c.status = 'done'
  AND NOT EXISTS (SELECT 1 FROM payment_attempts a WHERE a.cancel_id = c.id AND a.operation = 'cancel'
                  AND a.classification = 'success' AND a.idempotency_key = c.idempotency_key)`},
	{"an open cancel (the seed leaves none)", `
SELECT count(*) FROM payment_cancels WHERE status IN ('waiting', 'pending', 'unknown')`},
	{"a payment that never reached the gateway with an attempt", `
SELECT count(*) FROM payments p WHERE p.payment_key IS NULL
  AND EXISTS (SELECT 1 FROM payment_attempts a WHERE a.payment_id = p.id)`},
	{"a confirming payment without exactly one live confirm job", `
SELECT count(*) FROM payments p WHERE p.status = 'confirming'
  AND (SELECT count(*) FROM river_job j WHERE j.kind = 'payment_confirm' AND j.state = 'available'
       AND j.args @> jsonb_build_object('paymentId', p.id::text)) <> 1`},
	{"a live job for a payment that is not confirming", `
SELECT count(*) FROM river_job j JOIN payments p ON j.args->>'paymentId' = p.id::text
WHERE j.state NOT IN ('completed', 'discarded', 'cancelled') AND p.status <> 'confirming'`},
	{"a job for a payment that does not exist", `
SELECT count(*) FROM river_job j WHERE j.args ? 'paymentId'
  AND NOT EXISTS (SELECT 1 FROM payments p WHERE p.id::text = j.args->>'paymentId')`},
	{"a webhook job for a delivery that does not exist", `
SELECT count(*) FROM river_job j WHERE j.kind = 'webhook_delivery'
  AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.id::text = j.args->>'deliveryId')`},
	{"a finished job River would already have deleted", `
SELECT count(*) FROM river_job
WHERE state IN ('completed', 'discarded') AND finalized_at < now() - interval '7 days 1 hour'`},
	{"a confirm job (still kept) whose attempts do not name it", `
SELECT count(*) FROM river_job j WHERE j.kind = 'payment_confirm' AND j.state = 'completed'
  AND NOT EXISTS (SELECT 1 FROM payment_attempts a WHERE a.job_id = j.id)`},
	{"a delivery failed or succeeded out of step with its job", `
SELECT count(*) FROM webhook_deliveries d JOIN river_job j ON j.args->>'deliveryId' = d.id::text
WHERE (d.status = 'failed') <> (j.state = 'discarded')`},
	{"river_job_id_seq behind the ids in use", `
SELECT count(*) FROM river_job WHERE id > (SELECT last_value FROM river_job_id_seq)`},
	{"an expired idempotency record the api would have swept", `
SELECT count(*) FROM idempotency_keys WHERE expires_at < now() - interval '1 hour'`},
}

// Verify checks the seeded rows against the rules the bench and the relay
// rely on (the schema's own constraints hold by construction: a seed that
// broke one would have failed). It returns one line per rule broken.
func Verify(ctx context.Context, pool *pgxpool.Pool) ([]string, error) {
	var problems []string
	for _, inv := range invariants {
		var n int64
		if err := pool.QueryRow(ctx, inv.sql).Scan(&n); err != nil {
			return problems, fmt.Errorf("error checking %q: %w", inv.name, err)
		}
		if n != 0 {
			problems = append(problems, fmt.Sprintf("%d × %s", n, inv.name))
		}
	}
	return problems, nil
}

// StatusCounts returns the payments by status.
func StatusCounts(ctx context.Context, pool *pgxpool.Pool) (map[string]int64, error) {
	rows, err := pool.Query(ctx, "SELECT status, count(*) FROM payments GROUP BY status")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var s string
		var n int64
		if err := rows.Scan(&s, &n); err != nil {
			return nil, err
		}
		out[s] = n
	}
	return out, rows.Err()
}
