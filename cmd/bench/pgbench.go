package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
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
//   - the confirm, one transaction: PaymentGetByIDForUpdate, PaymentSave,
//     River's InsertTx (riverpgxv5 dbsqlc JobInsertFastMany with one job, the
//     columns River sets for paymentjob.ConfirmArgs: queue default, priority
//     1, max_attempts 20, metadata {}, no tags, no unique key), then the
//     response's PaymentWithHistory (PaymentGetByID, CancelListByPayment,
//     AttemptListByPayment).
//   - River's insert notification (PGNotifyMany on river_insert) is rate
//     limited by the client to one per FetchCooldown (100ms) per queue and
//     process, so at the rates measured here it rides on about 1% of
//     confirms; the script sends it on 1% of them.
//
// Differences that remain: the payment id is made by the server (a
// time-ordered UUID like the api's v7) instead of sent by the client, and
// River's array parameters are written as one-element arrays.

const pgbenchCreate = `\set r random(1, 999999999999999)
\set amount 1000 + 10 * random(0, 996)
\set notify random(1, 100)
INSERT INTO payments (id, order_id, order_name, amount, currency, status)
VALUES ((lpad(to_hex((extract(epoch FROM clock_timestamp()) * 1000)::bigint), 12, '0') || '7' || substr(md5(random()::text), 1, 19))::uuid,
        'pgb-' || :client_id || '-' || :r, 'bench order', :amount, 'KRW', 'ready')
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
    updated_at              = now()
WHERE id = :p_id
RETURNING *;
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
\if :notify = 1
WITH topic_to_notify AS (
    SELECT concat(current_schema(), '.', 'river_insert') AS topic,
           unnest(ARRAY['{"queue": "default"}']::text[]) AS payload
)
SELECT pg_notify(topic_to_notify.topic, topic_to_notify.payload) FROM topic_to_notify;
\endif
`

// pgbenchHistory is the end of the confirm as the api runs it: the answer's
// payment with its (empty) history, read inside the transaction.
const pgbenchHistory = `SELECT * FROM payments WHERE id = :p_id;
SELECT * FROM payment_cancels WHERE payment_id = :p_id ORDER BY created_at, id;
SELECT * FROM payment_attempts WHERE payment_id = :p_id ORDER BY id;
`

const pgbenchCommit = "COMMIT;\n"

// pgbenchScripts writes the two scripts: "same" is every statement the api
// runs; "writes" leaves out the confirm's three reads for its answer (the
// list the issue names), to show what those reads cost.
func pgbenchScripts(dir string) (same, writes string, err error) {
	same = filepath.Join(dir, "pgbench-same-sql.sql")
	writes = filepath.Join(dir, "pgbench-writes-only.sql")
	if err := os.WriteFile(same, []byte(pgbenchCreate+pgbenchHistory+pgbenchCommit), 0o644); err != nil {
		return "", "", fmt.Errorf("error writing pgbench script: %w", err)
	}
	if err := os.WriteFile(writes, []byte(pgbenchCreate+pgbenchCommit), 0o644); err != nil {
		return "", "", fmt.Errorf("error writing pgbench script: %w", err)
	}
	return same, writes, nil
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
	Payments   int
	Failed     int
	Aborted    bool
	PerSecond  float64
	Elapsed    time.Duration
	CPUSeconds float64
	latencies  []time.Duration
}

var (
	reProcessed = regexp.MustCompile(`number of transactions actually processed: (\d+)`)
	reFailed    = regexp.MustCompile(`number of failed transactions: (\d+)`)
	reTPS       = regexp.MustCompile(`tps = ([0-9.]+) \(without initial connection time\)`)
)

// runPgbench runs script at conc connections for dur (whole seconds) and
// reads the per-transaction log for latencies.
func runPgbench(ctx context.Context, bin, dbURL, script, logDir string, conc int, dur time.Duration) (*pgbenchRun, error) {
	secs := max(1, int(dur.Round(time.Second)/time.Second))
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
		dbURL,
	}
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
	if m := reProcessed.FindStringSubmatch(text); m != nil {
		r.Payments, _ = strconv.Atoi(m[1])
	}
	if m := reFailed.FindStringSubmatch(text); m != nil {
		r.Failed, _ = strconv.Atoi(m[1])
	}
	if m := reTPS.FindStringSubmatch(text); m != nil {
		r.PerSecond, _ = strconv.ParseFloat(m[1], 64)
	}
	files, _ := filepath.Glob(prefix + ".*")
	for _, f := range files {
		lat, err := readPgbenchLog(f)
		if err != nil {
			return nil, err
		}
		r.latencies = append(r.latencies, lat...)
		_ = os.Remove(f)
	}
	return r, nil
}

// readPgbenchLog reads a per-transaction log: "client_id transaction_no
// time script_no time_epoch time_us", time being the latency in µs.
func readPgbenchLog(path string) ([]time.Duration, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("error opening pgbench log: %w", err)
	}
	defer f.Close()
	var out []time.Duration
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 3 {
			continue
		}
		us, err := strconv.ParseInt(fields[2], 10, 64)
		if err != nil {
			continue // "failed" and "skipped" transactions carry no latency
		}
		out = append(out, time.Duration(us)*time.Microsecond)
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
