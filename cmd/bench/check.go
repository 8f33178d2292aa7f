package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/payment-outbox/payment-outbox/internal/gatewaysim"
)

// db is the bench's own connection to the database under test: it wipes
// the payment tables between phases, times the relay from the rows, and
// checks every payment at the end of each phase.
type db struct {
	pool *pgxpool.Pool
	// The growth phase's seeded rows, which wipe keeps and the checks and
	// timings leave out: payments whose id (UUIDv7, time first) is below
	// idFloor and River jobs numbered up to jobFloor. Every query filters on
	// the primary keys, so it stays an index range scan on 10M rows. Empty
	// and 0 outside the growth phase.
	idFloor  string
	jobFloor int64
}

// minUUID is below every id.
const minUUID = "00000000-0000-0000-0000-000000000000"

// floor is the id every payment of the bench's own is at or above.
func (d *db) floor() string {
	if d.idFloor == "" {
		return minUUID
	}
	return d.idFloor
}

// keepSeeded makes wipe, the checks and the timings leave out every row
// there is now: the growth phase's seed. It returns a function that undoes it.
func (d *db) keepSeeded(ctx context.Context) (func(), error) {
	err := d.pool.QueryRow(ctx, `
SELECT (lpad(to_hex((extract(epoch FROM clock_timestamp()) * 1000)::bigint), 12, '0') || '70000000000000000000')::uuid::text,
       coalesce((SELECT max(id) FROM river_job), 0)`).Scan(&d.idFloor, &d.jobFloor)
	if err != nil {
		return nil, fmt.Errorf("error reading the seed's last ids: %w", err)
	}
	return func() { d.idFloor, d.jobFloor = "", 0 }, nil
}

func openDB(ctx context.Context, url string) (*db, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("error parsing -db: %w", err)
	}
	cfg.MaxConns = 4
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("error connecting to the database: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("error connecting to the database: %w", err)
	}
	return &db{pool: pool}, nil
}

// serverInfo returns the server's version and, when it runs on this
// machine, the postmaster's pid (for its CPU time).
func (d *db) serverInfo(ctx context.Context) (version string, postmaster int) {
	var backend int
	_ = d.pool.QueryRow(ctx, "SELECT current_setting('server_version'), pg_backend_pid()").Scan(&version, &backend)
	st, err := readProcStat(backend)
	if err != nil {
		return version, 0
	}
	comm, _ := os.ReadFile("/proc/" + strconv.Itoa(st.ppid) + "/comm")
	if c := strings.TrimSpace(string(comm)); c != "postgres" && c != "postmaster" {
		return version, 0
	}
	return version, st.ppid
}

// wipe empties the tables a phase writes, so each phase starts from the
// same place and checks only its own rows. The bench refuses to run
// against anything but a database it may wipe (see -db).
func (d *db) wipe(ctx context.Context) error {
	if d.idFloor != "" {
		return d.deleteOwn(ctx)
	}
	_, err := d.pool.Exec(ctx, "TRUNCATE payments, payment_cancels, payment_attempts, river_job CASCADE")
	if err != nil {
		return fmt.Errorf("error wiping the payment tables: %w", err)
	}
	// Fresh statistics, so a phase is not planned against the last one's
	// (or an empty table's) numbers.
	_, err = d.pool.Exec(ctx, "ANALYZE payments, payment_attempts, river_job")
	return err
}

// deleteOwn deletes the rows above the seed's (keepSeeded): the phase's
// own, by primary key ranges; the seed's rows stay, and their statistics
// with them. Deleting a payment makes Postgres check every table that
// references it, and webhook_deliveries has no index on payment_id, so each
// deleted payment would scan all the seeded deliveries. The bench's payments
// have no deliveries and their attempts and cancels go first, so the
// deletes run with the foreign-key triggers off (session_replication_role
// replica: the bench's clusters let it connect as their superuser); where
// that is refused, they run with the checks, slowly.
func (d *db) deleteOwn(ctx context.Context) error {
	tx, err := d.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("error deleting the phase's rows: %w", err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, "SAVEPOINT rr"); err != nil {
		return fmt.Errorf("error deleting the phase's rows: %w", err)
	}
	if _, err := tx.Exec(ctx, "SET LOCAL session_replication_role = replica"); err != nil {
		if _, err := tx.Exec(ctx, "ROLLBACK TO SAVEPOINT rr"); err != nil {
			return fmt.Errorf("error deleting the phase's rows: %w", err)
		}
	}
	for _, q := range []string{
		"DELETE FROM payment_attempts WHERE payment_id >= $1::uuid",
		"DELETE FROM payment_cancels WHERE payment_id >= $1::uuid",
		"DELETE FROM payments WHERE id >= $1::uuid",
	} {
		if _, err := tx.Exec(ctx, q, d.idFloor); err != nil {
			return fmt.Errorf("error deleting the phase's rows: %w", err)
		}
	}
	if _, err := tx.Exec(ctx, "DELETE FROM river_job WHERE id > $1", d.jobFloor); err != nil {
		return fmt.Errorf("error deleting the phase's jobs: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("error deleting the phase's rows: %w", err)
	}
	// The empty-table rounds start from a TRUNCATE; these start from the
	// seeded tables with the last round's rows deleted. Vacuum them now, as
	// autovacuum keeps a production database (db/migrations
	// 0008_autovacuum.sql), so that a round does not walk the dead index
	// entries of the rounds before it. Only pages the rounds touched are
	// read (the visibility map), so it takes seconds, not a pass over 10M.
	if _, err := d.pool.Exec(ctx, "VACUUM (ANALYZE) payments, payment_attempts, payment_cancels, river_job"); err != nil {
		return fmt.Errorf("error vacuuming after the phase's rows: %w", err)
	}
	return nil
}

// countStatus counts the payments in status.
func (d *db) countStatus(ctx context.Context, status string) (int, error) {
	var n int
	err := d.pool.QueryRow(ctx, "SELECT count(*) FROM payments WHERE status = $1 AND id >= $2::uuid", status, d.floor()).Scan(&n)
	return n, err
}

// waitSettled waits until no payment is confirming any more (or until the
// deadline) and returns how many still are.
func (d *db) waitSettled(ctx context.Context, deadline time.Duration) (int, error) {
	end := time.Now().Add(deadline)
	for {
		n, err := d.countStatus(ctx, "confirming")
		if err != nil || n == 0 || time.Now().After(end) {
			return n, err
		}
		select {
		case <-ctx.Done():
			return n, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// confirmTimes is when the relay confirmed the payments, from the rows:
// updated_at is set by the outcome transaction (now(), its start), the
// same transaction that completes the job.
type confirmTimes struct {
	n           int
	first, last time.Time // the first and last confirm
	p10, p90    time.Time // when 10% and 90% of them were done
	// confirm_requested_at (the api accepting the confirm) to updated_at,
	// in ms.
	e2eP50, e2eP95, e2eP99, e2eMax, e2eMean float64
	requestedFirst, requestedLast           time.Time
}

// confirmTimes reads the confirmed payments whose confirm was accepted at
// or after since.
func (d *db) confirmTimes(ctx context.Context, since time.Time) (confirmTimes, error) {
	var t confirmTimes
	var pct []float64
	err := d.pool.QueryRow(ctx, `
SELECT count(*), min(updated_at), max(updated_at),
       percentile_disc(0.1) WITHIN GROUP (ORDER BY updated_at),
       percentile_disc(0.9) WITHIN GROUP (ORDER BY updated_at),
       percentile_disc(ARRAY[0.5, 0.95, 0.99, 1.0]) WITHIN GROUP (
           ORDER BY (extract(epoch FROM updated_at - confirm_requested_at) * 1000)::float8),
       avg((extract(epoch FROM updated_at - confirm_requested_at) * 1000)::float8),
       min(confirm_requested_at), max(confirm_requested_at)
FROM payments WHERE status = 'confirmed' AND confirm_requested_at >= $1 AND id >= $2::uuid`, since, d.floor()).Scan(&t.n, &t.first, &t.last, &t.p10, &t.p90, &pct, &t.e2eMean,
		&t.requestedFirst, &t.requestedLast)
	if err != nil {
		return t, fmt.Errorf("error reading confirm times: %w", err)
	}
	if len(pct) == 4 {
		t.e2eP50, t.e2eP95, t.e2eP99, t.e2eMax = pct[0], pct[1], pct[2], pct[3]
	}
	return t, nil
}

// checkResult is the verdict on one phase's payments.
type checkResult struct {
	Phase     string   `json:"phase"`
	Made      int      `json:"made"`     // creates the api answered 201
	Accepted  int      `json:"accepted"` // confirms the api answered 202
	Final     int      `json:"final"`    // accepted payments in the state expected
	Approvals int      `json:"gatewayApprovals"`
	Retried   int      `json:"retried"` // payments with more than one gateway attempt
	Notes     []string `json:"notes,omitempty"`
	Problems  []string `json:"problems,omitempty"`
}

func (c *checkResult) problem(format string, args ...any) {
	// A long list says nothing more than its first entries and its size.
	if len(c.Problems) < 20 {
		c.Problems = append(c.Problems, fmt.Sprintf(format, args...))
	} else if len(c.Problems) == 20 {
		c.Problems = append(c.Problems, "… (more)")
	}
}

// dbPayment is a payment row as the check reads it.
type dbPayment struct {
	id, status, paymentKey string
	amount                 int64
	attempts               int
	jobs, jobsDone         int
	jobsAvailable          int
}

// check holds the phase's payments against the database and, when the relay
// ran, against the gateway's ledger: every accepted confirm ends in want
// (confirming when no relay ran, confirmed otherwise) with exactly one confirm
// job, and the gateway approved each confirmed payment exactly once and
// nothing else. Payments from pgbench (order ids "pgb-…") are not the api's
// and are left out.
func (d *db) check(ctx context.Context, phase string, made []payment, want string, ledger []gatewaysim.LedgerEntry) (checkResult, error) {
	res := checkResult{Phase: phase}
	rows := map[string]*dbPayment{} // by order id
	r, err := d.pool.Query(ctx, `
SELECT p.id::text, p.order_id, p.status, coalesce(p.payment_key, ''), p.amount,
       coalesce(a.n, 0), coalesce(j.n, 0), coalesce(j.done, 0), coalesce(j.avail, 0)
FROM payments p
LEFT JOIN (SELECT payment_id, count(*) AS n FROM payment_attempts WHERE payment_id >= $1::uuid GROUP BY payment_id) a ON a.payment_id = p.id
LEFT JOIN (SELECT args->>'paymentId' AS payment_id, count(*) AS n,
                  count(*) FILTER (WHERE state = 'completed') AS done,
                  count(*) FILTER (WHERE state = 'available') AS avail
           FROM river_job WHERE kind = 'payment_confirm' AND id > $2 GROUP BY 1) j ON j.payment_id = p.id::text
WHERE p.order_id NOT LIKE 'pgb-%' AND p.id >= $1::uuid`, d.floor(), d.jobFloor)
	if err != nil {
		return res, fmt.Errorf("error reading payments for the check: %w", err)
	}
	for r.Next() {
		var p dbPayment
		var orderID string
		if err := r.Scan(&p.id, &orderID, &p.status, &p.paymentKey, &p.amount, &p.attempts, &p.jobs, &p.jobsDone, &p.jobsAvailable); err != nil {
			r.Close()
			return res, fmt.Errorf("error reading payments for the check: %w", err)
		}
		rows[orderID] = &p
	}
	r.Close()
	if err := r.Err(); err != nil {
		return res, fmt.Errorf("error reading payments for the check: %w", err)
	}

	byKey := map[string]gatewaysim.LedgerEntry{}
	for _, e := range ledger {
		byKey[e.PaymentKey] = e
		res.Approvals += e.Approvals
		if e.Approvals > 1 {
			res.problem("gateway approved %s (order %s) %d times", e.PaymentKey, e.OrderID, e.Approvals)
		}
	}

	known := map[string]bool{}
	notConfirmedByClient := 0
	for _, m := range made {
		known[m.orderID] = true
		if m.id != "" {
			res.Made++
		}
		row := rows[m.orderID]
		if !m.accepted {
			// The api did not promise anything for this one (its create or
			// confirm failed, or the answer was lost): it may be ready, or
			// confirmed if the confirm committed after all.
			notConfirmedByClient++
			if row != nil && row.status != "ready" && row.status != want {
				res.problem("payment %s (order %s, confirm not accepted) is %s", row.id, m.orderID, row.status)
			}
			continue
		}
		res.Accepted++
		switch {
		case row == nil:
			res.problem("accepted payment for order %s is missing from the database", m.orderID)
			continue
		case row.id != m.id:
			res.problem("order %s: the api answered id %s, the database holds %s", m.orderID, m.id, row.id)
		case row.paymentKey != m.paymentKey || row.amount != m.amount:
			res.problem("payment %s: paymentKey/amount %s/%d, want %s/%d", row.id, row.paymentKey, row.amount, m.paymentKey, m.amount)
		case row.status != want:
			res.problem("payment %s is %s, want %s", row.id, row.status, want)
		case row.jobs != 1:
			res.problem("payment %s has %d confirm jobs, want exactly 1", row.id, row.jobs)
		case want == "confirming" && row.jobsAvailable != 1:
			res.problem("payment %s: its confirm job is not available", row.id)
		case want == "confirmed" && row.jobsDone != 1:
			res.problem("payment %s is confirmed but its job is not completed", row.id)
		default:
			res.Final++
		}
		if row.attempts > 1 {
			res.Retried++
		}
	}
	if notConfirmedByClient > 0 {
		res.Notes = append(res.Notes, fmt.Sprintf("%d payments not confirmed by the client (HTTP errors); not counted", notConfirmedByClient))
	}

	// The other direction: what the database and the gateway hold that the
	// bench did not make, and every confirmed row against the ledger.
	for orderID, row := range rows {
		if !known[orderID] {
			res.Notes = append(res.Notes, fmt.Sprintf("order %s (%s) was not made by this phase", orderID, row.status))
			continue
		}
		if row.status != "confirmed" {
			continue
		}
		e, ok := byKey[row.paymentKey]
		switch {
		case !ok:
			res.problem("payment %s is confirmed but the gateway has no approval for %s", row.id, row.paymentKey)
		case e.Approvals != 1:
			// Counted above when more than one.
			if e.Approvals == 0 {
				res.problem("payment %s is confirmed but the gateway shows 0 approvals (%s)", row.id, e.Status)
			}
		case e.TotalAmount != row.amount || e.OrderID != orderID:
			res.problem("payment %s: gateway holds %s/%d, we hold %s/%d", row.id, e.OrderID, e.TotalAmount, orderID, row.amount)
		}
		delete(byKey, row.paymentKey)
	}
	for key, e := range byKey {
		if e.Approvals > 0 {
			res.problem("the gateway approved %s (order %s) but no payment of ours is confirmed with it", key, e.OrderID)
		}
	}
	return res, nil
}

// seedBacklog writes n payments as the api leaves them after an accepted
// confirm with no relay running: status confirming with a paymentKey and
// its idempotency key, version 2, and one available payment_confirm job
// each, with the columns River's insert sets. The relay's rounds and its
// floor's start from the same table state, and a backlog of thousands costs
// a second instead of the api's minute. It returns the payments for the
// check; their order ids and paymentKeys start with "o"+prefix and
// "pk"+prefix.
func (d *db) seedBacklog(ctx context.Context, prefix string, n int) ([]payment, error) {
	rows, err := d.pool.Query(ctx, `
WITH p AS (
    INSERT INTO payments (id, order_id, order_name, amount, currency, gateway, status, payment_key,
                          confirm_key_generation, confirm_idempotency_key, confirm_requested_at, version, updated_at)
    SELECT u.id, $1 || i, 'bench order', 1000 + 10 * (i % 997), 'KRW', 'toss', 'confirming', $2 || i,
           1, 'confirm-' || u.id || '-1', now(), 2, now()
    FROM generate_series(1, $3::int) AS i,
         LATERAL (SELECT (lpad(to_hex((extract(epoch FROM clock_timestamp()) * 1000)::bigint), 12, '0') || '7'
                          || substr(md5(i::text || random()::text), 1, 19))::uuid AS id) u
    RETURNING id, order_id, payment_key, amount
), j AS (
    INSERT INTO river_job (args, kind, max_attempts, metadata, priority, queue, scheduled_at, state, tags)
    SELECT jsonb_build_object('paymentId', id::text), 'payment_confirm', 20, '{}'::jsonb, 1, 'default', now(),
           'available'::river_job_state, '{}'::varchar(255)[]
    FROM p ORDER BY id
)
SELECT id::text, order_id, payment_key, amount FROM p`, "o"+prefix, "pk"+prefix, n)
	if err != nil {
		return nil, fmt.Errorf("error seeding the backlog: %w", err)
	}
	defer rows.Close()
	out := make([]payment, 0, n)
	for rows.Next() {
		p := payment{accepted: true}
		if err := rows.Scan(&p.id, &p.orderID, &p.paymentKey, &p.amount); err != nil {
			return nil, fmt.Errorf("error seeding the backlog: %w", err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("error seeding the backlog: %w", err)
	}
	// Planned like a table the api filled, not an empty one.
	if _, err := d.pool.Exec(ctx, "ANALYZE payments, payment_attempts, river_job"); err != nil {
		return nil, fmt.Errorf("error analysing the backlog: %w", err)
	}
	return out, nil
}

// durability says how the server commits: "durable" when fsync,
// synchronous_commit and full_page_writes are on (as in production), "fast"
// when any is off (scripts/localpg's test settings, bench -fast), with the
// three settings as the server reports them.
func (d *db) durability(ctx context.Context) string {
	var fsync, syncCommit, fpw string
	if err := d.pool.QueryRow(ctx, "SELECT current_setting('fsync'), current_setting('synchronous_commit'), current_setting('full_page_writes')").
		Scan(&fsync, &syncCommit, &fpw); err != nil {
		return "unknown: " + err.Error()
	}
	mode := "fast"
	if fsync == "on" && syncCommit != "off" && fpw == "on" {
		mode = "durable"
	}
	return fmt.Sprintf("%s (fsync=%s, synchronous_commit=%s, full_page_writes=%s)", mode, fsync, syncCommit, fpw)
}

// walPos is where the server's WAL and transaction ids stand: the deltas
// between two are the WAL bytes written and the write transactions begun in
// between (a transaction gets an xid at its first write), read at once, not
// from the statistics a backend flushes when it pleases.
type walPos struct {
	lsn float64
	xid float64
}

func (d *db) walPos(ctx context.Context) walPos {
	var p walPos
	var xid string
	if err := d.pool.QueryRow(ctx, "SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::float8, pg_snapshot_xmax(pg_current_snapshot())::text").
		Scan(&p.lsn, &xid); err != nil {
		return walPos{}
	}
	p.xid, _ = strconv.ParseFloat(xid, 64)
	return p
}
