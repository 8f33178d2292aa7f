-- name: BooksRunStart :one
INSERT INTO books_runs (gateway, window_from, window_until, started_at)
VALUES (@gateway, @window_from, @window_until, @started_at)
RETURNING id;

-- name: BooksRunFinish :exec
UPDATE books_runs SET
    finished_at  = @finished_at,
    pages        = @pages,
    transactions = @transactions,
    matched      = @matched,
    differences  = @differences,
    persisting   = @persisting,
    lookups      = @lookups,
    listed       = @listed,
    resolved     = @resolved,
    error        = @error
WHERE id = @id;

-- name: BooksPaymentsByKeys :many
-- Our payments the gateway's listing names, whatever their status (a PortOne
-- intent carries its paymentId from creation), with what their cancels
-- refunded: in total, and by the gateway transaction each was booked under.
SELECT p.id, p.payment_key, p.status, p.amount, p.approved_amount, p.balance_amount, p.canceled_amount,
    p.approved_at, p.created_at,
    coalesce(c.keys, '{}')::text[]      AS cancel_transaction_keys,
    coalesce(c.amounts, '{}')::bigint[] AS cancel_amounts
FROM payments p
LEFT JOIN LATERAL (
    SELECT array_agg(pc.transaction_key ORDER BY pc.created_at) AS keys,
           array_agg(pc.canceled_amount ORDER BY pc.created_at) AS amounts
    FROM payment_cancels pc
    WHERE pc.payment_id = p.id AND pc.status = 'done'
) c ON true
WHERE p.gateway = @gateway AND p.payment_key = ANY(@payment_keys::text[]);

-- name: BooksPaymentsCharged :many
-- Our payments of a gateway charged in a window and created in it too (a
-- gateway that lists by creation would not show the others), through
-- payments_books_idx.
SELECT p.id, p.payment_key, p.status, p.approved_amount, p.approved_at
FROM payments p
WHERE p.gateway = @gateway AND p.approved_at >= @charged_from AND p.approved_at < @charged_until
  AND p.created_at >= @created_from AND p.payment_key IS NOT NULL
ORDER BY p.approved_at;

-- name: BooksDifferenceFound :one
-- Records a difference a run found: a new row, or the open row an earlier
-- run left, now found once more. runs above 1 says it outlived a run.
INSERT INTO books_differences (gateway, kind, payment_key, subject, payment_id, occurred_at,
    gateway_record, ours, lookup, first_run_id, last_run_id)
VALUES (@gateway, @kind, @payment_key, @subject, @payment_id, @occurred_at,
    @gateway_record, @ours, @lookup, @run_id, @run_id)
ON CONFLICT (gateway, kind, subject) WHERE resolved_at IS NULL DO UPDATE SET
    payment_id     = excluded.payment_id,
    occurred_at    = excluded.occurred_at,
    gateway_record = excluded.gateway_record,
    ours           = excluded.ours,
    lookup         = excluded.lookup,
    last_run_id    = excluded.last_run_id,
    runs           = books_differences.runs + 1
RETURNING runs;

-- name: BooksDifferencesResolve :execrows
-- Closes the open differences of a gateway that a run did not find again,
-- among those its window covers (one outside it was not looked at).
UPDATE books_differences SET resolved_at = @resolved_at
WHERE gateway = @gateway AND resolved_at IS NULL AND last_run_id <> @run_id
  AND occurred_at >= @window_from AND occurred_at < @window_until;

-- name: BooksRunsRecent :many
SELECT * FROM books_runs ORDER BY id DESC LIMIT @max_runs;

-- name: BooksDifferencesOpen :many
SELECT * FROM books_differences WHERE resolved_at IS NULL ORDER BY id DESC LIMIT @max_differences;

-- name: BooksUnexplained :many
-- The open differences the latest successful run of each gateway found:
-- what the books leave unexplained now. A failed run compared nothing, so it
-- explains nothing either way.
SELECT d.* FROM books_differences d
JOIN (
    SELECT DISTINCT ON (gateway) gateway, id FROM books_runs
    WHERE finished_at IS NOT NULL AND error = '' ORDER BY gateway, id DESC
) r ON r.gateway = d.gateway AND r.id = d.last_run_id
WHERE d.resolved_at IS NULL
ORDER BY d.id;

-- name: BooksStats :many
-- Per gateway, for the metrics collector: when its last run finished
-- without an error (0: never), and its open differences, all and those that outlived
-- a run.
SELECT g.gateway,
    coalesce(extract(epoch FROM (SELECT max(finished_at) FROM books_runs r
        WHERE r.gateway = g.gateway AND r.error = '')), 0)::float8 AS last_success_unix,
    (SELECT count(*) FROM books_differences d WHERE d.gateway = g.gateway AND d.resolved_at IS NULL) AS open,
    (SELECT count(*) FROM books_differences d WHERE d.gateway = g.gateway AND d.resolved_at IS NULL AND d.runs > 1) AS persisting
FROM (SELECT DISTINCT gateway FROM books_runs) g
ORDER BY g.gateway;
