package benchseed

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// PartitionResult compares payment_attempts as it is with the same rows in
// a copy partitioned by month on requested_at (the table's only time
// column), both with the same indexes: the primary key (which on the
// partitioned copy must include requested_at) and (payment_id, id).
type PartitionResult struct {
	Rows       int64 `json:"rows"`
	Partitions int   `json:"partitions"`
	// The copy of every attempt (INSERT ... SELECT, indexes in place,
	// foreign keys added afterwards and timed apart).
	LoadPlain  time.Duration `json:"loadPlainNs"`
	LoadPart   time.Duration `json:"loadPartNs"`
	FKPlain    time.Duration `json:"fkPlainNs"`
	FKPart     time.Duration `json:"fkPartNs"`
	BytesPlain int64         `json:"bytesPlain"`
	BytesPart  int64         `json:"bytesPart"`
	// AttemptStart: one row per statement, as the relay inserts (µs, median
	// server execution time; the rows are rolled back).
	InsertPlainUs float64 `json:"insertPlainUs"`
	InsertPartUs  float64 `json:"insertPartUs"`
	// AttemptListByPayment for random seeded payments: median server
	// execution time (µs) and shared buffers touched per query.
	ListPlainUs    float64 `json:"listPlainUs"`
	ListPartUs     float64 `json:"listPartUs"`
	ListPrunedUs   float64 `json:"listPrunedUs"` // partitioned, with requested_at >= the payment's created_at
	ListPlainBufs  float64 `json:"listPlainBuffers"`
	ListPartBufs   float64 `json:"listPartBuffers"`
	ListPrunedBufs float64 `json:"listPrunedBuffers"`
	// The newest attempt per payment for the console's attention list
	// (ORDER BY id DESC LIMIT 1), median µs.
	LatestPlainUs float64 `json:"latestPlainUs"`
	LatestPartUs  float64 `json:"latestPartUs"`
	// StatsRecentAttempts (newest 200 by id), median ms.
	RecentPlainMs float64 `json:"recentPlainMs"`
	RecentPartMs  float64 `json:"recentPartMs"`
	PlanPlain     string  `json:"-"`
	PlanPart      string  `json:"-"`
	PlanPruned    string  `json:"-"`
}

const (
	plainCopyName = "growth_attempts_plain"
	partCopy      = "growth_attempts_part"
)

// ComparePartitioning builds a partitioned copy of payment_attempts from its
// current rows and measures it against an unpartitioned one with lookups
// random lookups and single-row inserts, and drops the copies again (unless
// keep). With copyBaseline the unpartitioned side is a fresh copy too, built
// the same way (so the bulk loads compare); without, it is payment_attempts
// itself (half the work; the inserts into it are deleted afterwards).
func ComparePartitioning(ctx context.Context, pool *pgxpool.Pool, lookups int, copyBaseline, keep bool, log io.Writer) (PartitionResult, error) {
	var r PartitionResult
	plainCopy := plainCopyName
	if !copyBaseline {
		plainCopy = "payment_attempts"
	}
	if lookups <= 0 {
		lookups = 2000
	}
	logf := func(format string, args ...any) {
		if log != nil {
			fmt.Fprintf(log, format+"\n", args...)
		}
	}
	drop := func(ctx context.Context) {
		_, _ = pool.Exec(ctx, "DROP TABLE IF EXISTS "+plainCopyName+", "+partCopy+" CASCADE")
		_, _ = pool.Exec(ctx, "DROP SEQUENCE IF EXISTS growth_attempts_seq")
	}
	drop(ctx)
	if !keep {
		defer drop(context.WithoutCancel(ctx))
	}

	var lo, hi time.Time
	if err := pool.QueryRow(ctx, `SELECT count(*), min(requested_at), max(requested_at) FROM payment_attempts`).Scan(&r.Rows, &lo, &hi); err != nil {
		return r, fmt.Errorf("error reading attempts: %w", err)
	}
	setup := []string{`CREATE SEQUENCE growth_attempts_seq`}
	if copyBaseline {
		setup = append(setup,
			`CREATE TABLE `+plainCopy+` (LIKE payment_attempts INCLUDING DEFAULTS INCLUDING CONSTRAINTS)`,
			`ALTER TABLE `+plainCopy+` ALTER COLUMN id SET DEFAULT nextval('growth_attempts_seq')`,
			`ALTER TABLE `+plainCopy+` ADD PRIMARY KEY (id)`,
			`CREATE INDEX ON `+plainCopy+` (payment_id, id)`)
	}
	setup = append(setup,
		`CREATE TABLE `+partCopy+` (LIKE payment_attempts INCLUDING DEFAULTS INCLUDING CONSTRAINTS) PARTITION BY RANGE (requested_at)`,
		`ALTER TABLE `+partCopy+` ALTER COLUMN id SET DEFAULT nextval('growth_attempts_seq')`,
		// A unique constraint on a partitioned table must include the
		// partition key: id alone can no longer be the primary key.
		`ALTER TABLE `+partCopy+` ADD PRIMARY KEY (id, requested_at)`,
		`CREATE INDEX ON `+partCopy+` (payment_id, id)`,
		`CREATE TABLE `+partCopy+`_default PARTITION OF `+partCopy+` DEFAULT`)
	month := time.Date(lo.UTC().Year(), lo.UTC().Month(), 1, 0, 0, 0, 0, time.UTC)
	for ; !month.After(hi); month = month.AddDate(0, 1, 0) {
		next := month.AddDate(0, 1, 0)
		setup = append(setup, fmt.Sprintf(`CREATE TABLE %s_%s PARTITION OF %s FOR VALUES FROM ('%s') TO ('%s')`,
			partCopy, month.Format("200601"), partCopy, month.Format(time.RFC3339), next.Format(time.RFC3339)))
		r.Partitions++
	}
	r.Partitions++ // the default partition
	for _, s := range setup {
		if _, err := pool.Exec(ctx, s); err != nil {
			return r, fmt.Errorf("error running %q: %w", s, err)
		}
	}

	cols := `id, payment_id, cancel_id, operation, idempotency_key, job_id, job_attempt, requested_at, finished_at,
		latency_us, http_status, gateway_code, gateway_message, classification, error, note, gateway_record`
	load := func(table string) (time.Duration, time.Duration, error) {
		t := time.Now()
		if _, err := pool.Exec(ctx, `INSERT INTO `+table+` (`+cols+`) SELECT `+cols+` FROM payment_attempts ORDER BY id`); err != nil {
			return 0, 0, fmt.Errorf("error loading %s: %w", table, err)
		}
		dl := time.Since(t)
		t = time.Now()
		for _, fk := range []string{
			`ALTER TABLE ` + table + ` ADD FOREIGN KEY (payment_id) REFERENCES payments (id)`,
			`ALTER TABLE ` + table + ` ADD FOREIGN KEY (cancel_id) REFERENCES payment_cancels (id)`,
		} {
			if _, err := pool.Exec(ctx, fk); err != nil {
				return 0, 0, fmt.Errorf("error adding a foreign key to %s: %w", table, err)
			}
		}
		dfk := time.Since(t)
		if _, err := pool.Exec(ctx, `VACUUM ANALYZE `+table); err != nil {
			return 0, 0, err
		}
		return dl, dfk, nil
	}
	var err error
	var maxID int64
	if err := pool.QueryRow(ctx, `SELECT coalesce(max(id), 0) FROM payment_attempts`).Scan(&maxID); err != nil {
		return r, err
	}
	if _, err := pool.Exec(ctx, `SELECT setval('growth_attempts_seq', $1)`, maxID+1_000_000); err != nil {
		return r, err
	}
	if copyBaseline {
		logf("partitioning: loading %d attempts into %s", r.Rows, plainCopy)
		if r.LoadPlain, r.FKPlain, err = load(plainCopy); err != nil {
			return r, err
		}
	}
	logf("partitioning: loading %d attempts into %s (%d partitions)", r.Rows, partCopy, r.Partitions)
	if r.LoadPart, r.FKPart, err = load(partCopy); err != nil {
		return r, err
	}
	if err := pool.QueryRow(ctx, `SELECT pg_total_relation_size($1::regclass)`, plainCopy).Scan(&r.BytesPlain); err != nil {
		return r, err
	}
	if err := pool.QueryRow(ctx, `
SELECT sum(pg_total_relation_size(relid)) FROM pg_partition_tree($1::regclass)`, partCopy).Scan(&r.BytesPart); err != nil {
		return r, err
	}

	// Random seeded payments that have attempts, with their created_at.
	type pay struct {
		id      string
		created time.Time
	}
	var pays []pay
	rows, err := pool.Query(ctx, `
SELECT id, created_at FROM (
    SELECT p.id::text AS id, p.created_at FROM payments p TABLESAMPLE SYSTEM (1) REPEATABLE (7)
    WHERE p.payment_key IS NOT NULL) s
-- Spread over the whole span, not the first pages sampled (the oldest).
ORDER BY md5(id) LIMIT $1`, lookups)
	if err != nil {
		return r, err
	}
	for rows.Next() {
		var p pay
		if err := rows.Scan(&p.id, &p.created); err != nil {
			rows.Close()
			return r, err
		}
		pays = append(pays, p)
	}
	rows.Close()
	if len(pays) == 0 {
		return r, fmt.Errorf("benchseed: no payments to look up")
	}
	rand.New(rand.NewPCG(3, 4)).Shuffle(len(pays), func(i, j int) { pays[i], pays[j] = pays[j], pays[i] })

	// Every statement is measured on the server (EXPLAIN ANALYZE's
	// execution time, in a transaction rolled back), alternating the two
	// tables so that whatever else the machine does falls on both alike.
	listPlain := `SELECT * FROM ` + plainCopy + ` WHERE payment_id = $1 ORDER BY id`
	listPart := `SELECT * FROM ` + partCopy + ` WHERE payment_id = $1 ORDER BY id`
	listPruned := `SELECT * FROM ` + partCopy + ` WHERE payment_id = $1 AND requested_at >= $2 ORDER BY id`
	latestPlain := `SELECT * FROM ` + plainCopy + ` WHERE payment_id = $1 ORDER BY id DESC LIMIT 1`
	latestPart := `SELECT * FROM ` + partCopy + ` WHERE payment_id = $1 ORDER BY id DESC LIMIT 1`
	ins := func(table string) string {
		return `INSERT INTO ` + table + ` (payment_id, operation, idempotency_key, job_id, job_attempt, requested_at)
VALUES ($1::uuid, 'confirm', 'confirm-' || $1::uuid::text || '-1', 1, 1, now()) RETURNING id`
	}
	recent := func(table string) string {
		return `SELECT coalesce(classification, '')::text, count(*), max(requested_at)
FROM (SELECT classification, requested_at FROM ` + table + ` ORDER BY id DESC LIMIT 200) a GROUP BY 1`
	}
	type measure struct {
		sql  string
		args func(p pay) []any
		ms   []float64
		bufs []float64
		text string
	}
	byID := func(p pay) []any { return []any{p.id} }
	ms := []*measure{
		{sql: listPlain, args: byID}, {sql: listPart, args: byID},
		{sql: listPruned, args: func(p pay) []any { return []any{p.id, p.created} }},
		{sql: latestPlain, args: byID}, {sql: latestPart, args: byID},
		{sql: ins(plainCopy), args: byID}, {sql: ins(partCopy), args: byID},
		{sql: recent(plainCopy), args: func(pay) []any { return nil }},
		{sql: recent(partCopy), args: func(pay) []any { return nil }},
	}
	for i, p := range pays {
		for k, m := range ms {
			if k >= 7 && i >= 20 {
				continue
			}
			ex, err := explainOnce(ctx, pool, m.sql, m.args(p), i == 0)
			if err != nil {
				return r, fmt.Errorf("error measuring %q: %w", m.sql, err)
			}
			m.ms = append(m.ms, ex.ExecutionTime)
			m.bufs = append(m.bufs, float64(ex.Plan.SharedHit+ex.Plan.SharedRead))
			if i == 0 {
				m.text = ex.text
			}
		}
	}
	us := func(m *measure) float64 { return median(m.ms) * 1000 }
	r.ListPlainUs, r.ListPartUs, r.ListPrunedUs = us(ms[0]), us(ms[1]), us(ms[2])
	r.ListPlainBufs, r.ListPartBufs, r.ListPrunedBufs = median(ms[0].bufs), median(ms[1].bufs), median(ms[2].bufs)
	r.LatestPlainUs, r.LatestPartUs = us(ms[3]), us(ms[4])
	r.InsertPlainUs, r.InsertPartUs = us(ms[5]), us(ms[6])
	r.RecentPlainMs, r.RecentPartMs = median(ms[7].ms), median(ms[8].ms)
	r.PlanPlain, r.PlanPart, r.PlanPruned = ms[0].text, ms[1].text, ms[2].text
	logf("partitioning: measured %d lookups", len(pays))
	return r, nil
}

// Print writes the comparison.
func (r PartitionResult) Print(w io.Writer) {
	ratio := func(a, b float64) string {
		if a == 0 {
			return "-"
		}
		return fmt.Sprintf("%.2fx", b/a)
	}
	fmt.Fprintf(w, "payment_attempts: %d rows; partitioned copy: %d monthly partitions on requested_at (+ default)\n", r.Rows, r.Partitions)
	lines := [][]string{
		{"", "unpartitioned", "partitioned", "ratio"},
		{"bulk load (INSERT…SELECT, indexes in place)", r.LoadPlain.Round(time.Millisecond).String(), r.LoadPart.Round(time.Millisecond).String(), ratio(r.LoadPlain.Seconds(), r.LoadPart.Seconds())},
		{"adding the two foreign keys", r.FKPlain.Round(time.Millisecond).String(), r.FKPart.Round(time.Millisecond).String(), ratio(r.FKPlain.Seconds(), r.FKPart.Seconds())},
		{"size (table + indexes + toast)", MB(r.BytesPlain), MB(r.BytesPart), ratio(float64(r.BytesPlain), float64(r.BytesPart))},
		{"AttemptStart, one row (µs, median)", fmt.Sprintf("%.0f", r.InsertPlainUs), fmt.Sprintf("%.0f", r.InsertPartUs), ratio(r.InsertPlainUs, r.InsertPartUs)},
		{"AttemptListByPayment (µs, median)", fmt.Sprintf("%.0f", r.ListPlainUs), fmt.Sprintf("%.0f", r.ListPartUs), ratio(r.ListPlainUs, r.ListPartUs)},
		{"  … with requested_at >= created_at (pruned)", "", fmt.Sprintf("%.0f", r.ListPrunedUs), ratio(r.ListPlainUs, r.ListPrunedUs)},
		{"  shared buffers per lookup (median)", fmt.Sprintf("%.0f", r.ListPlainBufs), fmt.Sprintf("%.0f (pruned %.0f)", r.ListPartBufs, r.ListPrunedBufs), ratio(r.ListPlainBufs, r.ListPartBufs)},
		{"newest attempt of a payment (µs, median)", fmt.Sprintf("%.0f", r.LatestPlainUs), fmt.Sprintf("%.0f", r.LatestPartUs), ratio(r.LatestPlainUs, r.LatestPartUs)},
		{"StatsRecentAttempts (ms, median)", fmt.Sprintf("%.3f", r.RecentPlainMs), fmt.Sprintf("%.3f", r.RecentPartMs), ratio(r.RecentPlainMs, r.RecentPartMs)},
	}
	width := make([]int, 4)
	for _, l := range lines {
		for i, c := range l {
			width[i] = max(width[i], len([]rune(c)))
		}
	}
	for _, l := range lines {
		var b strings.Builder
		for i, c := range l {
			pad := width[i] - len([]rune(c))
			if i == 0 {
				b.WriteString(c + strings.Repeat(" ", pad))
			} else {
				b.WriteString("  " + strings.Repeat(" ", pad) + c)
			}
		}
		fmt.Fprintln(w, b.String())
	}
}
