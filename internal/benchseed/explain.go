package benchseed

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// HotQuery is a statement the api, the relay or River runs often, with how
// to pick realistic arguments for it. The SQL is db/queries' (sqlc's @names
// as $n) or River's (riverpgxv5 internal/dbsqlc), copied: keep them in step.
type HotQuery struct {
	Name string // the sqlc or River query name
	Who  string // who runs it, and when
	SQL  string
	// Args picks arguments, given a payment of the kind Kind asks for.
	Args func(t target) []any
	// Kind is the status of the payment Args is given ("" any seeded one).
	Kind string
}

// target is the payment a run of a query is about.
type target struct {
	ID, OrderID, PaymentKey string
	JobID, AttemptID        int64
	Rand                    *rand.Rand
	Now                     time.Time
}

var activeStates = []string{"confirming", "canceling", "unknown"}

// HotQueries are the statements Explain plans.
var HotQueries = []HotQuery{
	// The api: create (with an Idempotency-Key) and confirm.
	{Name: "IdempotencyClaim", Who: "api create", SQL: `
INSERT INTO idempotency_keys (owner, api_key_id, idempotency_key, request_hash, created_at, expires_at)
VALUES ('default', $1, $2, $3, $4, $5)
ON CONFLICT (owner, idempotency_key) DO UPDATE SET
    api_key_id = EXCLUDED.api_key_id, request_hash = EXCLUDED.request_hash, response_status = NULL, response_headers = '{}',
    response_body = NULL, created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at
WHERE idempotency_keys.expires_at <= EXCLUDED.created_at
   OR (idempotency_keys.response_status IS NULL AND idempotency_keys.created_at < $6)
RETURNING *`, Args: func(t target) []any {
		return []any{APIKeyID, uuid.NewString(), []byte("0123456789abcdef0123456789abcdef"), t.Now, t.Now.Add(IdempotencyTTL), t.Now.Add(-time.Minute)}
	}},
	{Name: "PaymentInsert", Who: "api create", SQL: `
INSERT INTO payments (id, order_id, order_name, amount, currency, gateway, status)
VALUES ($1, $2, $3, $4, $5, $6, 'ready')
ON CONFLICT (order_id) DO NOTHING
RETURNING *`, Args: func(t target) []any {
		return []any{uuid.Must(uuid.NewV7()), "explain-" + strconv.FormatUint(t.Rand.Uint64(), 36), "explain order", int64(15000), "KRW", "toss"}
	}},
	{Name: "IdempotencyComplete", Who: "api create", SQL: `
UPDATE idempotency_keys SET response_status = $1, response_headers = $2, response_body = $3
WHERE owner = $4 AND idempotency_key = $5 AND created_at = $6 AND response_status IS NULL`,
		Args: func(t target) []any {
			return []any{201, []byte(`{}`), []byte(`{}`), "default", uuid.NewString(), t.Now}
		}},
	{Name: "PaymentGetByIDForUpdate", Who: "api confirm", Kind: "ready", SQL: `SELECT * FROM payments WHERE id = $1 FOR UPDATE`,
		Args: func(t target) []any { return []any{t.ID} }},
	{Name: "PaymentSave", Who: "api confirm", Kind: "ready", SQL: sqlPaymentSave,
		Args: func(t target) []any {
			return []any{t.ID, "ready", "confirming", "tgen_explain" + strconv.FormatUint(t.Rand.Uint64(), 36), nil, t.Now}
		}},
	{Name: "JobInsertFastMany (one job)", Who: "api confirm", SQL: `
INSERT INTO river_job (args, created_at, kind, max_attempts, metadata, priority, queue, scheduled_at, state, tags)
SELECT unnest($1::jsonb[]), unnest($2::timestamptz[]), unnest($3::text[]), unnest($4::smallint[]),
       unnest($5::jsonb[]), unnest($6::smallint[]), unnest($7::text[]), unnest($8::timestamptz[]),
       unnest($9::text[])::river_job_state, '{}'::varchar[]
RETURNING *`, Args: func(t target) []any {
		return []any{[]string{`{"paymentId":"` + t.ID + `"}`}, []time.Time{t.Now}, []string{"payment_confirm"}, []int16{20},
			[]string{`{}`}, []int16{1}, []string{"default"}, []time.Time{t.Now}, []string{"available"}}
	}},
	{Name: "WebhookEndpointsForEvent", Who: "api confirm, relay settle", SQL: `
SELECT * FROM webhook_endpoints WHERE owner = $2 AND disabled_at IS NULL AND $1::text = ANY(events) ORDER BY created_at, id`,
		Args: func(target) []any { return []any{"payment.confirmed", "default"} }},
	{Name: "PaymentGetByOrderID", Who: "api get", SQL: `SELECT * FROM payments WHERE order_id = $1`,
		Args: func(t target) []any { return []any{t.OrderID} }},

	// The relay's confirm path.
	{Name: "JobGetAvailable", Who: "relay fetch (River)", SQL: `
WITH locked_jobs AS (
    SELECT * FROM river_job
    WHERE state = 'available' AND queue = $1::text
      AND ($2::text[] IS NULL OR kind = ANY($2::text[]))
      AND scheduled_at <= coalesce($3::timestamptz, now())
    ORDER BY priority ASC, scheduled_at ASC, id ASC
    LIMIT $4::integer
    FOR UPDATE SKIP LOCKED
)
UPDATE river_job
SET state = 'running', attempt = river_job.attempt + 1, attempted_at = coalesce($3::timestamptz, now()),
    attempted_by = array_append(
        CASE WHEN array_length(river_job.attempted_by, 1) >= $5::int
        THEN river_job.attempted_by[array_length(river_job.attempted_by, 1) + 2 - $5:]
        ELSE river_job.attempted_by END, $6::text)
FROM locked_jobs
WHERE river_job.id = locked_jobs.id
RETURNING river_job.*`, Args: func(target) []any {
		return []any{"default", nil, nil, 100, 100, "explain"}
	}},
	{Name: "PaymentGetByID", Who: "relay confirm, api get", Kind: "confirming", SQL: `SELECT * FROM payments WHERE id = $1`,
		Args: func(t target) []any { return []any{t.ID} }},
	{Name: "AttemptListByPayment", Who: "relay confirm (key rule), api get", Kind: "confirmed", SQL: `
SELECT * FROM payment_attempts WHERE payment_id = $1 ORDER BY id`,
		Args: func(t target) []any { return []any{t.ID} }},
	{Name: "AttemptStart", Who: "relay confirm", Kind: "confirming", SQL: `
INSERT INTO payment_attempts (payment_id, cancel_id, operation, idempotency_key, job_id, job_attempt, requested_at)
VALUES ($1, $2, $3, $4, $5, $6, $7)
RETURNING id`, Args: func(t target) []any {
		return []any{t.ID, nil, "confirm", "confirm-" + t.ID + "-1", t.JobID, 1, t.Now}
	}},
	{Name: "AttemptFinish", Who: "relay confirm", Kind: "confirmed", SQL: `
UPDATE payment_attempts SET finished_at = $2, latency_us = $3, http_status = $4, gateway_code = $5,
    gateway_message = $6, classification = $7, error = $8, gateway_record = $9
WHERE id = $1`, Args: func(t target) []any {
		return []any{t.AttemptID, t.Now, int64(300000), 200, "", "", "success", "", []byte(`{"status":"DONE"}`)}
	}},
	{Name: "PaymentGetByIDForUpdate", Who: "relay settle", Kind: "confirming", SQL: `SELECT * FROM payments WHERE id = $1 FOR UPDATE`,
		Args: func(t target) []any { return []any{t.ID} }},
	{Name: "CancelListByPayment", Who: "relay settle (open cancels)", Kind: "canceled", SQL: `
SELECT * FROM payment_cancels WHERE payment_id = $1 ORDER BY created_at, id`,
		Args: func(t target) []any { return []any{t.ID} }},
	{Name: "PaymentSave", Who: "relay settle", Kind: "confirming", SQL: sqlPaymentSave,
		Args: func(t target) []any { return []any{t.ID, "confirming", "confirmed", t.PaymentKey, t.Now, t.Now} }},
	{Name: "JobSetStateIfRunningMany (one job)", Who: "relay complete (River)", Kind: "confirming", SQL: `
WITH job_input AS (
    SELECT unnest($1::bigint[]) AS id, unnest($2::timestamptz[]) AS finalized_at,
           unnest($3::text[])::river_job_state AS state
), job_to_update AS (
    SELECT river_job.id, job_input.state, job_input.finalized_at
    FROM river_job JOIN job_input ON river_job.id = job_input.id
    WHERE river_job.state = 'running'
    FOR UPDATE OF river_job
)
UPDATE river_job SET state = job_to_update.state, finalized_at = job_to_update.finalized_at
FROM job_to_update WHERE river_job.id = job_to_update.id
RETURNING river_job.*`, Args: func(t target) []any {
		return []any{[]int64{t.JobID}, []time.Time{t.Now}, []string{"completed"}}
	}},
	{Name: "WebhookDeliveryInsert", Who: "relay settle", Kind: "confirming", SQL: `
INSERT INTO webhook_deliveries (id, endpoint_id, event_id, event_type, payment_id, payload, status)
VALUES ($1, $2, $3, $4, $5, $6, 'pending')
RETURNING *`, Args: func(t target) []any {
		return []any{uuid.Must(uuid.NewV7()), EndpointID, "evt_" + strings.ReplaceAll(uuid.NewString(), "-", ""), "payment.confirmed", t.ID, []byte(`{}`)}
	}},

	// The reconciler, once a minute.
	{Name: "PaymentListByStatus", Who: "relay reconciler", SQL: `
SELECT * FROM payments
WHERE status = ANY($1::text[]) AND updated_at < $2 AND ($3::bool OR acknowledged_at IS NULL)
ORDER BY updated_at LIMIT $4`, Args: func(t target) []any {
		return []any{activeStates, t.Now.Add(-5 * time.Minute), false, 100}
	}},
	{Name: "PaymentListOrphanConfirms", Who: "relay reconciler", SQL: `
SELECT p.* FROM payments p
WHERE p.status = 'confirming' AND p.updated_at < $1
  AND NOT EXISTS (
      SELECT 1 FROM river_job j
      WHERE j.kind = 'payment_confirm'
        AND j.state IN ('available', 'pending', 'retryable', 'running', 'scheduled')
        AND j.args @> jsonb_build_object('paymentId', p.id::text))
ORDER BY p.updated_at LIMIT $2`, Args: func(t target) []any { return []any{t.Now.Add(-5 * time.Minute), 100} }},
	{Name: "CancelListOrphans", Who: "relay reconciler", SQL: `
SELECT c.* FROM payment_cancels c
WHERE c.status = 'pending' AND c.updated_at < $1
  AND NOT EXISTS (
      SELECT 1 FROM river_job j
      WHERE j.kind = 'payment_cancel'
        AND j.state IN ('available', 'pending', 'retryable', 'running', 'scheduled')
        AND j.args @> jsonb_build_object('cancelId', c.id::text))
ORDER BY c.updated_at LIMIT $2`, Args: func(t target) []any { return []any{t.Now.Add(-5 * time.Minute), 100} }},

	// The metrics collector, on every scrape (cached for a few seconds).
	{Name: "StatsOutboxJobs", Who: "metrics", SQL: `
SELECT kind, state::text AS state, count(*) AS jobs,
       extract(epoch FROM now() - min(created_at))::float8 AS oldest_age_seconds
FROM river_job WHERE state IN ('available', 'scheduled', 'retryable', 'running') GROUP BY kind, state`,
		Args: func(target) []any { return nil }},
	{Name: "StatsPaymentsByStatus", Who: "metrics", SQL: `SELECT status, count(*) AS payments FROM payments GROUP BY status`,
		Args: func(target) []any { return nil }},
	{Name: "StatsPaymentsAcknowledged", Who: "metrics", SQL: `
SELECT count(*) AS payments FROM payments WHERE status = 'unknown' AND acknowledged_at IS NOT NULL`,
		Args: func(target) []any { return nil }},
	{Name: "StatsDiscardedJobs", Who: "metrics", SQL: `SELECT kind, count(*) AS jobs FROM river_job WHERE state = 'discarded' GROUP BY kind`,
		Args: func(target) []any { return nil }},
	{Name: "StatsLastReconcile", Who: "metrics", SQL: `
SELECT (max(finalized_at) IS NOT NULL)::bool AS found, coalesce(max(finalized_at), now())::timestamptz AS finalized_at
FROM river_job WHERE kind = 'payment_reconcile' AND state = 'completed'`,
		Args: func(target) []any { return nil }},
	{Name: "StatsRecentAttempts", Who: "console", SQL: `
SELECT coalesce(classification, '')::text AS classification, count(*) AS calls, max(requested_at)::timestamptz AS newest
FROM (SELECT classification, requested_at FROM payment_attempts ORDER BY id DESC LIMIT $1) a GROUP BY 1`,
		Args: func(target) []any { return []any{200} }},

	// The operator console.
	{Name: "PaymentListAttention", Who: "console", SQL: `
SELECT p.*, c.id, a.id
FROM payments p
LEFT JOIN LATERAL (
    SELECT * FROM payment_cancels c WHERE c.payment_id = p.id ORDER BY c.created_at DESC, c.id DESC LIMIT 1
) c ON true
LEFT JOIN LATERAL (
    SELECT * FROM payment_attempts a WHERE a.payment_id = p.id ORDER BY a.id DESC LIMIT 1
) a ON true
WHERE p.status = ANY($1::text[]) AND p.updated_at < $2 AND ($3::bool OR p.acknowledged_at IS NULL)
ORDER BY p.updated_at LIMIT $4`, Args: func(t target) []any {
		return []any{activeStates, t.Now, true, 100}
	}},
	{Name: "JobListByPayment", Who: "console", Kind: "confirmed", SQL: `
SELECT id, kind, state::text AS state, args, attempt, max_attempts, errors,
       created_at, attempted_at, scheduled_at, finalized_at
FROM river_job WHERE args @> jsonb_build_object('paymentId', $1::text) ORDER BY id DESC LIMIT 50`,
		Args: func(t target) []any { return []any{t.ID} }},
	{Name: "JobListByStates", Who: "console", SQL: `
SELECT id, kind, state::text AS state, args, attempt, max_attempts, errors,
       created_at, attempted_at, scheduled_at, finalized_at
FROM river_job WHERE state IN ('retryable', 'discarded') AND state::text = ANY($1::text[])
ORDER BY id DESC LIMIT $2`,
		Args: func(target) []any { return []any{[]string{"retryable", "discarded"}, 100} }},
	{Name: "WebhookDeliveryListByEndpoint", Who: "console", SQL: `
SELECT * FROM webhook_deliveries WHERE endpoint_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2`,
		Args: func(target) []any { return []any{EndpointID, 50} }},

	// Maintenance.
	{Name: "JobDeleteBefore", Who: "River job cleaner", SQL: `
DELETE FROM river_job
WHERE id IN (
    SELECT id FROM river_job
    WHERE ((state = 'cancelled' AND finalized_at < $1::timestamptz) OR
           (state = 'completed' AND finalized_at < $2::timestamptz) OR
           (state = 'discarded' AND finalized_at < $3::timestamptz))
    ORDER BY id LIMIT $4::bigint)`, Args: func(t target) []any {
		return []any{t.Now.Add(-24 * time.Hour), t.Now.Add(-JobRetention), t.Now.Add(-JobRetention), 1000}
	}},
	{Name: "IdempotencyDeleteExpired", Who: "api sweep", SQL: `
DELETE FROM idempotency_keys
WHERE (owner, idempotency_key) IN (
    SELECT i.owner, i.idempotency_key FROM idempotency_keys i
    WHERE i.expires_at < $1 ORDER BY i.expires_at LIMIT $2 FOR UPDATE SKIP LOCKED)`,
		Args: func(t target) []any { return []any{t.Now, 100} }},
}

// sqlPaymentSave is PaymentSave, with only the fields a confirm changes as
// arguments ($1 id, $2 expected status, $3 status, $4 payment key, $5
// approved at, $6 confirm requested at).
const sqlPaymentSave = `
UPDATE payments SET
    status = $3, payment_key = $4, confirm_key_generation = confirm_key_generation,
    confirm_idempotency_key = 'confirm-' || id::text || '-1', approved_amount = amount, balance_amount = amount,
    canceled_amount = canceled_amount, method = method, approved_at = $5, failure_code = failure_code,
    failure_message = failure_message, confirm_requested_at = $6, version = version + 1,
    acknowledged_at = acknowledged_at, updated_at = now()
WHERE id = $1 AND status = $2
RETURNING *`

// PlanResult is how one hot query ran over several runs.
type PlanResult struct {
	Name     string  `json:"name"`
	Who      string  `json:"who"`
	Runs     int     `json:"runs"`
	ExecMs   float64 `json:"execMs"`   // median execution time
	MaxMs    float64 `json:"maxMs"`    // slowest run
	PlanMs   float64 `json:"planMs"`   // median planning time
	Buffers  float64 `json:"buffers"`  // median shared blocks hit+read
	Rows     float64 `json:"rows"`     // median rows out of the top node
	Scans    string  `json:"scans"`    // the scans of the last run's plan
	SeqScans string  `json:"seqScans"` // tables it read in full, if any
	Plan     string  `json:"-"`        // the last run's plan (text)
}

// Explain runs EXPLAIN (ANALYZE, BUFFERS) of every hot query runs times,
// each in a transaction it rolls back, with arguments drawn from the seeded
// payments, and reports the median. The tables should be analyzed.
func Explain(ctx context.Context, pool *pgxpool.Pool, runs int) ([]PlanResult, error) {
	if runs <= 0 {
		runs = 9
	}
	var maxOrder string
	if err := pool.QueryRow(ctx, `SELECT coalesce(max(order_id), '') FROM payments WHERE order_id LIKE 'seed-%'`).Scan(&maxOrder); err != nil {
		return nil, fmt.Errorf("error reading the seed's size: %w", err)
	}
	n, _ := strconv.Atoi(strings.TrimPrefix(maxOrder, OrderPrefix))
	if n == 0 {
		return nil, fmt.Errorf("benchseed: no seeded payments to explain against")
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var out []PlanResult
	for _, q := range HotQueries {
		res := PlanResult{Name: q.Name, Who: q.Who, Runs: runs}
		var exec, plan, bufs, rows []float64
		for r := range runs {
			t, err := pickTarget(ctx, pool, q.Kind, n, rng)
			if err != nil {
				return out, fmt.Errorf("%s: %w", q.Name, err)
			}
			ex, err := explainOnce(ctx, pool, q.SQL, q.Args(t), r == runs-1)
			if err != nil {
				return out, fmt.Errorf("%s: %w", q.Name, err)
			}
			exec = append(exec, ex.ExecutionTime)
			plan = append(plan, ex.PlanningTime)
			bufs = append(bufs, float64(ex.Plan.SharedHit+ex.Plan.SharedRead))
			rows = append(rows, ex.Plan.ActualRows)
			if r == runs-1 {
				var scans, seq []string
				ex.Plan.walk(func(p *planNode) {
					if strings.Contains(p.NodeType, "Scan") && p.RelationName != "" {
						s := p.NodeType + " " + p.RelationName
						if p.IndexName != "" {
							s = p.NodeType + " " + p.IndexName
						}
						if !slices.Contains(scans, s) {
							scans = append(scans, s)
						}
						if p.NodeType == "Seq Scan" && !slices.Contains(seq, p.RelationName) {
							seq = append(seq, p.RelationName)
						}
					}
				})
				res.Scans = strings.Join(scans, ", ")
				res.SeqScans = strings.Join(seq, ", ")
				res.Plan = ex.text
			}
		}
		res.ExecMs, res.PlanMs, res.Buffers, res.Rows = median(exec), median(plan), median(bufs), median(rows)
		res.MaxMs = slices.Max(exec)
		out = append(out, res)
	}
	return out, nil
}

// pickTarget finds a seeded payment in status kind (any, if empty) near a
// random payment number, with its newest attempt and its confirm job.
func pickTarget(ctx context.Context, pool *pgxpool.Pool, kind string, n int, rng *rand.Rand) (target, error) {
	t := target{Rand: rng, Now: time.Now()}
	from := fmt.Sprintf("%s%010d", OrderPrefix, 1+rng.IntN(n))
	q := `SELECT id::text, order_id, coalesce(payment_key, '') FROM payments
	      WHERE order_id >= $1 AND order_id LIKE 'seed-%' AND ($2 = '' OR status = $2) ORDER BY order_id LIMIT 1`
	err := pool.QueryRow(ctx, q, from, kind).Scan(&t.ID, &t.OrderID, &t.PaymentKey)
	if errors.Is(err, pgx.ErrNoRows) {
		// Past the last one in that status: the first one.
		err = pool.QueryRow(ctx, q, OrderPrefix, kind).Scan(&t.ID, &t.OrderID, &t.PaymentKey)
	}
	if err != nil {
		return t, fmt.Errorf("error picking a %q payment: %w", kind, err)
	}
	_ = pool.QueryRow(ctx, `SELECT coalesce(max(id), 0) FROM payment_attempts WHERE payment_id = $1`, t.ID).Scan(&t.AttemptID)
	_ = pool.QueryRow(ctx, `SELECT coalesce(max(id), 0) FROM river_job WHERE args @> jsonb_build_object('paymentId', $1::text)`, t.ID).Scan(&t.JobID)
	return t, nil
}

type explained struct {
	Plan          planNode `json:"Plan"`
	PlanningTime  float64  `json:"Planning Time"`
	ExecutionTime float64  `json:"Execution Time"`
	text          string
}

type planNode struct {
	NodeType     string     `json:"Node Type"`
	RelationName string     `json:"Relation Name"`
	IndexName    string     `json:"Index Name"`
	ActualRows   float64    `json:"Actual Rows"`
	SharedHit    int64      `json:"Shared Hit Blocks"`
	SharedRead   int64      `json:"Shared Read Blocks"`
	Plans        []planNode `json:"Plans"`
}

func (p *planNode) walk(f func(*planNode)) {
	f(p)
	for i := range p.Plans {
		p.Plans[i].walk(f)
	}
}

// explainOnce runs one EXPLAIN ANALYZE in a transaction it rolls back; with
// withText, the text form too (a second run).
func explainOnce(ctx context.Context, pool *pgxpool.Pool, sql string, args []any, withText bool) (explained, error) {
	var ex explained
	tx, err := pool.Begin(ctx)
	if err != nil {
		return ex, err
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if _, err := tx.Exec(ctx, "SET LOCAL jit = off"); err != nil {
		return ex, err
	}
	var raw []byte
	if err := tx.QueryRow(ctx, "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) "+sql, args...).Scan(&raw); err != nil {
		return ex, err
	}
	var all []explained
	if err := json.Unmarshal(raw, &all); err != nil || len(all) != 1 {
		return ex, fmt.Errorf("error reading the plan: %v", err)
	}
	ex = all[0]
	if withText {
		if _, err := tx.Exec(ctx, "SAVEPOINT text_plan"); err != nil {
			return ex, err
		}
		rows, err := tx.Query(ctx, "EXPLAIN (ANALYZE, BUFFERS) "+sql, args...)
		if err != nil {
			return ex, err
		}
		var lines []string
		for rows.Next() {
			var l string
			if err := rows.Scan(&l); err != nil {
				rows.Close()
				return ex, err
			}
			lines = append(lines, l)
		}
		rows.Close()
		ex.text = strings.Join(lines, "\n")
	}
	return ex, nil
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	sort.Float64s(s)
	return s[len(s)/2]
}

// PrintComparison writes two Explain results side by side (e.g. on a small
// seed and on a grown one), flagging a query whose median is more than 10%
// and 0.1 ms slower, or which reads a table in full.
func PrintComparison(w io.Writer, labelA, labelB string, a, b []PlanResult) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "query\twho\t%s ms\t%s ms\tratio\t%s bufs\t%s bufs\tflag\t%s plan\n", labelA, labelB, labelA, labelB, labelB)
	for i := range b {
		var ra PlanResult
		if i < len(a) {
			ra = a[i]
		}
		rb := b[i]
		ratio := 0.0
		if ra.ExecMs > 0 {
			ratio = rb.ExecMs / ra.ExecMs
		}
		flag := ""
		if rb.ExecMs > ra.ExecMs*1.1 && rb.ExecMs-ra.ExecMs > 0.1 {
			flag = "SLOWER"
		}
		if rb.SeqScans != "" {
			flag = strings.TrimSpace(flag + " seq:" + rb.SeqScans)
		}
		fmt.Fprintf(tw, "%s\t%s\t%.3f\t%.3f\t%.1fx\t%.0f\t%.0f\t%s\t%s\n", rb.Name, rb.Who, ra.ExecMs, rb.ExecMs, ratio, ra.Buffers, rb.Buffers, flag, rb.Scans)
	}
	tw.Flush()
}
