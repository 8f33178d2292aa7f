package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The pgbench scripts are the SQL one payment's two API calls run, statement
// for statement, so pgbench's payments per second is what Postgres on this
// machine allows before any Go, HTTP or JSON: the ceiling the api is held to.
// One script execution is one payment (pgbench's "transaction").
//
// Where the statements come from:
//   - the create: db/queries/payments.sql PaymentInsert, autocommit (the
//     handler runs it on the pool, no transaction);
//   - the confirm, one transaction: PaymentGetByIDForUpdate, PaymentSave
//     (as db/queries/payments.sql has it: the status guard, and the webhook
//     endpoints for payment.confirming in the same statement; none exist
//     here, as in the bench's database, and no NOTIFY), River's InsertTx
//     (riverpgxv5 dbsqlc JobInsertFastMany with one job, the columns River
//     sets for paymentjob.ConfirmArgs: queue default, priority 1,
//     max_attempts 20, metadata {}, no tags, no unique key), COMMIT. The
//     answer is the row PaymentSave returned (a payment leaving ready has
//     no history to read), so the confirm reads nothing more.
//   - River's insert notification (PGNotifyMany on river_insert) is rate
//     limited by the client to one per FetchCooldown per queue and process,
//     and the api's River client runs with FetchCooldown 10ms
//     (cmd/api/main.go): at most 100 a second, so at the api's rate R it
//     rides on about 100/R of confirms (10-30% at the 300-1000 payments/s
//     measured here). The script sends it on notify_pct% of them, a
//     variable (pgbench -D notify_pct=N) the throughput phase sets from the
//     api's last measured rate at the same concurrency (notifyPct).
//
// Differences that remain: the payment id is made by the server (a
// time-ordered UUID like the api's v7) instead of sent by the client, and
// River's array parameters are written as one-element arrays.

const pgbenchCreate = `\set r random(1, 999999999999999)
\set amount 1000 + 10 * random(0, 996)
\set notify random(1, 100)
INSERT INTO payments (id, order_id, order_name, amount, currency, gateway, status)
VALUES ((lpad(to_hex((extract(epoch FROM clock_timestamp()) * 1000)::bigint), 12, '0') || '7' || substr(md5(random()::text), 1, 19))::uuid,
        'pgb-' || :client_id || '-' || :r, 'bench order', :amount, 'KRW', 'toss', 'ready')
ON CONFLICT (order_id) DO NOTHING
RETURNING * \gset p_
BEGIN;
SELECT * FROM payments WHERE id = :p_id FOR UPDATE;
UPDATE payments SET
    status                  = 'confirming',
    payment_key             = 'pgbk-' || :p_id,
    confirm_key_generation  = 1,
    confirm_idempotency_key = 'confirm-' || :p_id || '-1',
    approved_amount         = 0,
    balance_amount          = 0,
    canceled_amount         = 0,
    method                  = '',
    approved_at             = NULL,
    failure_code            = '',
    failure_message         = '',
    confirm_requested_at    = now(),
    version                 = version + 1,
    acknowledged_at         = NULL,
    updated_at              = now()
WHERE payments.id = :p_id AND payments.status = 'ready'
RETURNING *,
    (CASE WHEN payments.status <> 'ready'::text
        THEN ARRAY(SELECT e.id FROM webhook_endpoints e
                   WHERE e.disabled_at IS NULL AND 'payment.confirming'::text = ANY(e.events)
                   ORDER BY e.created_at, e.id) END)::uuid[] AS webhook_endpoint_ids;
WITH raw_job_data AS (
    SELECT
        unnest(ARRAY[0]::bigint[]) AS id,
        unnest(ARRAY[('{"paymentId":"' || :p_id || '"}')::jsonb]) AS args,
        unnest(ARRAY[now()]::timestamptz[]) AS created_at,
        unnest(ARRAY['payment_confirm']::text[]) AS kind,
        unnest(ARRAY[20]::smallint[]) AS max_attempts,
        unnest(ARRAY['{}']::jsonb[]) AS metadata,
        unnest(ARRAY[1]::smallint[]) AS priority,
        unnest(ARRAY['default']::text[]) AS queue,
        unnest(ARRAY[now()]::timestamptz[]) AS scheduled_at,
        unnest(ARRAY['available']::text[]) AS state,
        unnest(ARRAY['']::text[]) AS tags,
        unnest(ARRAY[NULL]::bytea[]) AS unique_key,
        unnest(ARRAY[0]::integer[]) AS unique_states
)
INSERT INTO river_job(
    id, args, created_at, kind, max_attempts, metadata, priority, queue,
    scheduled_at, state, tags, unique_key, unique_states
) SELECT
    coalesce(nullif(id, 0), nextval('river_job_id_seq'::regclass)),
    args,
    coalesce(nullif(created_at, '0001-01-01 00:00:00 +0000'), now()) AS created_at,
    kind,
    max_attempts,
    coalesce(metadata, '{}'::jsonb) AS metadata,
    priority,
    queue,
    coalesce(nullif(scheduled_at, '0001-01-01 00:00:00 +0000'), now()) AS scheduled_at,
    state::river_job_state,
    string_to_array(tags, ',')::varchar(255)[],
    nullif(unique_key, '')::bytea,
    nullif(unique_states::integer, 0)::bit(8)
FROM raw_job_data
ON CONFLICT (unique_key)
    WHERE unique_key IS NOT NULL
        AND unique_states IS NOT NULL
        AND river_job_state_in_bitmask(unique_states, state)
    DO UPDATE SET kind = river_job.kind
RETURNING river_job.*, (xmax != 0) AS unique_skipped_as_duplicate;
\if :notify <= :notify_pct
WITH topic_to_notify AS (
    SELECT concat(current_schema(), '.', 'river_insert') AS topic,
           unnest(ARRAY['{"queue": "default"}']::text[]) AS payload
)
SELECT pg_notify(topic_to_notify.topic, topic_to_notify.payload) FROM topic_to_notify;
\endif
`

const pgbenchCommit = "COMMIT;\n"

// pgbenchFloor is the relay's floor: per confirm, the SQL the relay must run
// at the least, whatever its code does today (the list of issue 11), one
// script run per confirm with no gateway call in it:
//   - fetch and lock one job: River's own fetch, riverpgxv5 dbsqlc
//     JobGetAvailable (max_to_lock 1, queue default, no kind filter, River's
//     max_attempted_by 100), autocommit as River's producer runs it;
//   - the attempt row before the call: db/queries/attempts.sql AttemptStart,
//     autocommit (it must be durable before the call leaves);
//   - one outcome transaction: the payment's update (PaymentSave as
//     db/queries/payments.sql has it, with its status guard, so no separate
//     FOR UPDATE read, and the webhook endpoints for payment.confirmed), the attempt's completion
//     (AttemptFinish) and the job's completion (River's completer statement,
//     JobSetStateIfRunningMany with one job set completed).
//
// At gateway latency 50ms the floor is the same SQL: waiting for the gateway
// is not Postgres work, so this is the Postgres ceiling a relay with enough
// workers could reach.
const pgbenchFloor = `WITH locked_jobs AS (
    SELECT
        *
    FROM
        river_job
    WHERE
        state = 'available'
        AND queue = 'default'::text
        AND (NULL::text[] IS NULL OR kind = ANY(NULL::text[]))
        AND scheduled_at <= coalesce(NULL::timestamptz, now())
    ORDER BY
        priority ASC,
        scheduled_at ASC,
        id ASC
    LIMIT 1::integer
    FOR UPDATE
    SKIP LOCKED
)
UPDATE
    river_job
SET
    state = 'running',
    attempt = river_job.attempt + 1,
    attempted_at = coalesce(NULL::timestamptz, now()),
    attempted_by = array_append(
        CASE WHEN array_length(river_job.attempted_by, 1) >= 100::int
        THEN river_job.attempted_by[array_length(river_job.attempted_by, 1) + 2 - 100:]
        ELSE river_job.attempted_by
        END,
        'bench-floor'::text
    )
FROM
    locked_jobs
WHERE
    river_job.id = locked_jobs.id
RETURNING
    river_job.* \gset j_
INSERT INTO payment_attempts (payment_id, cancel_id, operation, idempotency_key, job_id, job_attempt, requested_at)
VALUES ((:j_args::jsonb ->> 'paymentId')::uuid, NULL, 'confirm', 'confirm-' || (:j_args::jsonb ->> 'paymentId') || '-1', :j_id, :j_attempt, now())
RETURNING id \gset a_
BEGIN;
UPDATE payments SET
    status                  = 'confirmed',
    payment_key             = payment_key,
    confirm_key_generation  = confirm_key_generation,
    confirm_idempotency_key = confirm_idempotency_key,
    approved_amount         = amount,
    balance_amount          = amount,
    canceled_amount         = 0,
    method                  = 'CARD',
    approved_at             = now(),
    failure_code            = '',
    failure_message         = '',
    confirm_requested_at    = confirm_requested_at,
    version                 = version + 1,
    acknowledged_at         = NULL,
    updated_at              = now()
WHERE payments.id = (:j_args::jsonb ->> 'paymentId')::uuid AND payments.status = 'confirming'
RETURNING *,
    (CASE WHEN payments.status <> 'confirming'::text
        THEN ARRAY(SELECT e.id FROM webhook_endpoints e
                   WHERE e.disabled_at IS NULL AND 'payment.confirmed'::text = ANY(e.events)
                   ORDER BY e.created_at, e.id) END)::uuid[] AS webhook_endpoint_ids;
UPDATE payment_attempts SET
    finished_at     = now(),
    latency_us      = 1000,
    http_status     = 200,
    gateway_code    = '',
    gateway_message = '',
    classification  = 'success',
    error           = '',
    gateway_record  = '{"status":"DONE","method":"CARD","totalAmount":1000,"balanceAmount":1000,"cancels":[]}'::jsonb
WHERE id = :a_id;
WITH job_input AS (
    SELECT
        unnest(ARRAY[:j_id::bigint]::bigint[])            AS id,
        unnest(ARRAY[false]::boolean[])                   AS attempt_do_update,
        unnest(ARRAY[0]::int[])                           AS attempt,
        unnest(ARRAY[false]::boolean[])                   AS errors_do_update,
        unnest(ARRAY['{}']::jsonb[])                      AS errors,
        unnest(ARRAY[true]::boolean[])                    AS finalized_at_do_update,
        unnest(ARRAY[now()]::timestamptz[])               AS finalized_at,
        unnest(ARRAY[false]::boolean[])                   AS metadata_do_merge,
        unnest(ARRAY['{}']::jsonb[])                      AS metadata_updates,
        unnest(ARRAY[false]::boolean[])                   AS scheduled_at_do_update,
        unnest(ARRAY[now()]::timestamptz[])               AS scheduled_at,
        unnest(ARRAY['completed']::text[])::river_job_state AS state
),
updated AS (
    UPDATE river_job
    SET
        attempt = CASE
            WHEN river_job.state = 'running'
                 AND NOT (job_input.state IN ('available','retryable','scheduled') AND river_job.metadata ? 'cancel_attempted_at')
                 AND job_input.attempt_do_update
            THEN job_input.attempt
            ELSE river_job.attempt
        END,
        errors = CASE
            WHEN river_job.state = 'running'
                 AND job_input.errors_do_update
            THEN array_append(river_job.errors, job_input.errors)
            ELSE river_job.errors
        END,
        finalized_at = CASE
            WHEN river_job.state = 'running'
                 AND (job_input.state IN ('available','retryable','scheduled') AND river_job.metadata ? 'cancel_attempted_at')
            THEN coalesce(NULL::timestamptz, now())
            WHEN river_job.state = 'running'
                 AND job_input.finalized_at_do_update
            THEN job_input.finalized_at
            ELSE river_job.finalized_at
        END,
        metadata = CASE
            WHEN job_input.metadata_do_merge
            THEN river_job.metadata || job_input.metadata_updates
            ELSE river_job.metadata
        END,
        scheduled_at = CASE
            WHEN river_job.state = 'running'
                 AND NOT (job_input.state IN ('available','retryable','scheduled') AND river_job.metadata ? 'cancel_attempted_at')
                 AND job_input.scheduled_at_do_update
            THEN job_input.scheduled_at
            ELSE river_job.scheduled_at
        END,
        state = CASE
            WHEN river_job.state = 'running'
                 AND (job_input.state IN ('available','retryable','scheduled') AND river_job.metadata ? 'cancel_attempted_at')
            THEN 'cancelled'::river_job_state
            WHEN river_job.state = 'running'
            THEN job_input.state
            ELSE river_job.state
        END
    FROM job_input
    WHERE river_job.id = job_input.id
      AND (river_job.state = 'running' OR job_input.metadata_do_merge)
    RETURNING river_job.*
)
SELECT river_job.*
FROM river_job
JOIN job_input ON river_job.id = job_input.id
WHERE NOT EXISTS (
    SELECT 1
    FROM updated
    WHERE updated.id = river_job.id
)
UNION ALL
SELECT *
FROM updated
ORDER BY id;
COMMIT;
`

// pgbenchScripts writes the scripts: "same" is every statement the api
// runs for a payment; "floor" is the relay's floor (pgbenchFloor).
func pgbenchScripts(dir string) (same, floor string, err error) {
	same = filepath.Join(dir, "pgbench-same-sql.sql")
	floor = filepath.Join(dir, "pgbench-relay-floor.sql")
	for path, text := range map[string]string{
		same:  pgbenchCreate + pgbenchCommit,
		floor: pgbenchFloor,
	} {
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			return "", "", fmt.Errorf("error writing pgbench script: %w", err)
		}
	}
	return same, floor, nil
}

// findPgbench returns pgbench from PATH or the newest installed server.
func findPgbench(flagValue string) (string, error) {
	if flagValue != "" {
		return flagValue, nil
	}
	if p, err := exec.LookPath("pgbench"); err == nil {
		return p, nil
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pgbench")
	if len(matches) == 0 {
		return "", errors.New("pgbench not found: install postgresql-client or pass -pgbench")
	}
	sort.Slice(matches, func(i, j int) bool { return versionOf(matches[i]) < versionOf(matches[j]) })
	return matches[len(matches)-1], nil
}

func versionOf(path string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(path))))
	return n
}

// pgbenchRun is one pgbench run.
type pgbenchRun struct {
	Payments   int           // script runs completed in the measured window
	Total      int           // script runs completed over the whole run (its CPU's unit)
	Failed     int           // pgbench's count over the whole run
	Aborted    bool          // a client aborted (an error, or the floor's backlog ran dry)
	PerSecond  float64       // Payments / Window
	Window     time.Duration // the measured stretch: after the warm-up, up to the last completion
	TPS        float64       // pgbench's own figure over the whole run, for reference
	Elapsed    time.Duration
	CPUSeconds float64
	latencies  []time.Duration
}

var (
	reFailed = regexp.MustCompile(`number of failed transactions: (\d+)`)
	reTPS    = regexp.MustCompile(`tps = ([0-9.]+) \(without initial connection time\)`)
)

// runPgbench runs script at conc connections for warm + dur and counts, from
// pgbench's per-transaction log, only the script runs that ended after the
// warm-up (and after every client's first, see measured): pgbench opens
// fresh connections every run, and their first second
// (64 backends forking, filling their caches and preparing every statement,
// on two cores) is not what Postgres sustains; the api's pool and kept-alive
// connections are warm by then. Latencies are of the same runs.
// notifyPct is the share of confirms, in percent, that carry River's insert
// notification when the api confirms perSec payments a second: the api's
// River client sends at most one per FetchCooldown (10ms), 100 a second.
func notifyPct(perSec float64) int {
	if perSec <= 0 {
		return 10
	}
	return max(1, min(100, int(math.Round(100*100/perSec))))
}

// runPgbench runs script with conc clients for warm + dur; defines are
// pgbench -D variables (NAME=VALUE).
func runPgbench(ctx context.Context, bin, dbURL, script, logDir string, conc int, warm, dur time.Duration, defines ...string) (*pgbenchRun, error) {
	secs := max(1, int(math.Ceil((warm + dur).Seconds())))
	prefix := filepath.Join(logDir, "pgbench-tx")
	old, _ := filepath.Glob(prefix + ".*")
	for _, f := range old {
		_ = os.Remove(f)
	}
	args := []string{
		"-n",             // no pgbench_* tables to vacuum
		"-M", "prepared", // pgx caches prepared statements per connection too
		"-c", strconv.Itoa(conc), "-j", strconv.Itoa(min(conc, 2)),
		"-T", strconv.Itoa(secs),
		"-f", script,
		"-l", "--log-prefix=" + prefix,
	}
	for _, d := range defines {
		args = append(args, "-D", d)
	}
	args = append(args, dbURL)
	cmd := exec.CommandContext(ctx, bin, args...)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	r := &pgbenchRun{Elapsed: time.Since(start)}
	if cmd.ProcessState != nil {
		r.CPUSeconds = (cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()).Seconds()
	}
	text := string(out)
	if err != nil {
		// pgbench exits 2 when a client aborted; its numbers are still
		// printed and still mean something, but the run is flagged.
		r.Aborted = true
		if !strings.Contains(text, "tps =") {
			return nil, fmt.Errorf("error running pgbench: %w: %s", err, lastLines(text, 8))
		}
	}
	if m := reFailed.FindStringSubmatch(text); m != nil {
		r.Failed, _ = strconv.Atoi(m[1])
	}
	if m := reTPS.FindStringSubmatch(text); m != nil {
		r.TPS, _ = strconv.ParseFloat(m[1], 64)
	}
	var txs []pgbenchTx
	files, _ := filepath.Glob(prefix + ".*")
	for _, f := range files {
		t, err := readPgbenchLog(f)
		if err != nil {
			return nil, err
		}
		txs = append(txs, t...)
		_ = os.Remove(f)
	}
	r.Total = len(txs)
	r.Payments, r.latencies, r.Window = measured(txs, start.Add(warm), start.Add(warm+dur))
	if r.Window > 0 {
		r.PerSecond = float64(r.Payments) / r.Window.Seconds()
	}
	return r, nil
}

// measured picks the transactions that ended in [from, to] and returns
// how many, their latencies and the window's length. The window starts no
// earlier than the moment every client had finished its first transaction:
// on a loaded machine, 64 fresh backends can take two seconds to get through
// their first (connect, fill caches, prepare every statement), far more than
// -warm, and that pile-up is not what Postgres sustains. It ends at the last
// transaction when the run ended early (aborted clients).
func measured(txs []pgbenchTx, from, to time.Time) (n int, lat []time.Duration, window time.Duration) {
	var last time.Time
	first := map[int]time.Time{}
	for _, t := range txs {
		if t.end.After(last) {
			last = t.end
		}
		if f, ok := first[t.client]; !ok || t.end.Before(f) {
			first[t.client] = t.end
		}
	}
	for _, f := range first {
		if f.After(from) {
			from = f
		}
	}
	if last.Before(to) {
		to = last
	}
	if !to.After(from) {
		return 0, nil, 0
	}
	for _, t := range txs {
		if !t.end.Before(from) && !t.end.After(to) {
			n++
			lat = append(lat, t.latency)
		}
	}
	return n, lat, to.Sub(from)
}

// pgbenchTx is one line of pgbench's per-transaction log.
type pgbenchTx struct {
	client  int
	end     time.Time
	latency time.Duration
}

// readPgbenchLog reads a per-transaction log: "client_id transaction_no
// time script_no time_epoch time_us", time being the latency in µs and
// time_epoch.time_us when the transaction ended.
func readPgbenchLog(path string) ([]pgbenchTx, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("error opening pgbench log: %w", err)
	}
	defer f.Close()
	var out []pgbenchTx
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 {
			continue
		}
		us, err := strconv.ParseInt(fields[2], 10, 64)
		if err != nil {
			continue // "failed" and "skipped" transactions carry no latency
		}
		sec, err1 := strconv.ParseInt(fields[4], 10, 64)
		usec, err2 := strconv.ParseInt(fields[5], 10, 64)
		if err1 != nil || err2 != nil {
			continue
		}
		client, _ := strconv.Atoi(fields[0])
		out = append(out, pgbenchTx{client: client, end: time.Unix(sec, usec*1000), latency: time.Duration(us) * time.Microsecond})
	}
	return out, sc.Err()
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
