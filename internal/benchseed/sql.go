package benchseed

// The seed's SQL. Every statement of a batch starts from the same rows,
// seedBase: payment number i in $1..$2 and what follows from it. Times are
// kept as epoch seconds (float8) until a column needs a timestamptz.
//
// Payment classes (cls) and their share, close to a card checkout's:
//
//	0 confirmed                     76%
//	1 canceled after approval       10%   a customer cancel, done
//	2 partially_canceled             3%   a third of the amount, done
//	3 canceled while ready           2%   its cancel is void
//	4 failed                         4%   card refused
//	5 expired                        2%   session lapsed before confirm
//	6 ready                        2.99%  abandoned checkouts
//	7 unknown                      0.01%  twenty transient answers, then a lookup
//	8 confirming                   the newest N/100,000: still in the outbox
//
// A payment's gateway calls follow a plan, one letter per attempt row:
// T transient (500), U unclear (timeout), S confirm approved, L lookup
// approved, R refused, E session expired, X lookup unclear, C cancel done.
// 3% of approvals needed a retry (TS), 1% a lookup after a timeout (UL).
//
// Ids are UUIDv7 as the api makes them (time in the first 48 bits) with the
// payment number in the last 60 bits, so they are unique and in time order;
// the four hex digits after the time say which table the id is for.
//
// River job ids are 8i+1 (confirm), 8i+2 (cancel), 8i+3 (lookup), 8i+3+k
// (the payment's k-th webhook delivery); the attempts name them.
const seedBase = `
prm AS (
    SELECT $1::bigint AS lo, $2::bigint AS hi, $3::float8 AS t0, $4::float8 AS step,
           $5::timestamptz AS t_end, extract(epoch FROM $5::timestamptz)::float8 AS end_e,
           $6::bigint AS confirming_at, $7::timestamptz AS job_cutoff,
           extract(epoch FROM $7::timestamptz)::float8 AS job_cutoff_e,
           $8::timestamptz AS idem_cutoff, extract(epoch FROM $8::timestamptz)::float8 AS idem_cutoff_e
), g AS (
    SELECT prm.*, i,
           hashint8extended(i, 1) & 9223372036854775807 AS h1,
           hashint8extended(i, 2) & 9223372036854775807 AS h2,
           prm.t0 + i * prm.step AS ep,
           600 + ((hashint8extended(i, 2) & 9223372036854775807) >> 8) % (14 * 86400) AS co
    FROM prm, generate_series(prm.lo, prm.hi) AS i
), c AS (
    SELECT g.*,
           CASE WHEN i >= confirming_at THEN 8
                WHEN h1 % 10000 < 7600 THEN 0
                -- A cancel that would come after End has not happened yet.
                WHEN h1 % 10000 < 8600 THEN CASE WHEN ep + co < end_e - 60 THEN 1 ELSE 0 END
                WHEN h1 % 10000 < 8900 THEN CASE WHEN ep + co < end_e - 60 THEN 2 ELSE 0 END
                WHEN h1 % 10000 < 9100 THEN 3
                WHEN h1 % 10000 < 9500 THEN 4
                WHEN h1 % 10000 < 9700 THEN 5
                WHEN h1 % 10000 < 9999 THEN 6
                ELSE 7 END AS cls,
           1000 + (h2 % 3000) * 100 AS amount,
           (h2 >> 20) % 1000 AS r2,
           ep + 20 + h2 % 160 AS creq_e
    FROM g
), b AS (
    SELECT c.*,
           (lpad(to_hex((ep * 1000)::bigint), 12, '0') || '70008' || lpad(to_hex(i), 15, '0'))::uuid AS pid,
           'seed-' || lpad(i::text, 10, '0') AS order_id,
           to_timestamp(ep) AS ts,
           to_timestamp(creq_e) AS creq,
           creq_e + CASE WHEN r2 < 30 THEN 2.05 WHEN r2 < 40 THEN 10.15 ELSE 0.05 END
                  + (300 + h1 % 700) / 1000.0 AS ta_e,
           (amount / 300) * 100 AS pc,
           CASE WHEN cls = 3 THEN ep + 60 + h2 % 1800
                ELSE ep + co END AS tc_e,
           least(end_e, creq_e + 900) AS tu_e,
           CASE WHEN cls IN (0, 1, 2) THEN
                    CASE WHEN r2 < 30 THEN 'TS' WHEN r2 < 40 THEN 'UL' ELSE 'S' END
                    || CASE WHEN cls IN (1, 2) THEN 'C' ELSE '' END
                WHEN cls = 4 THEN 'R' WHEN cls = 5 THEN 'E'
                WHEN cls = 7 THEN repeat('T', 20) || 'X' ELSE '' END AS plan,
           CASE cls WHEN 0 THEN 'c' WHEN 1 THEN 'cx' WHEN 2 THEN 'cp' WHEN 3 THEN 'x'
                    WHEN 4 THEN 'f' WHEN 5 THEN 'e' WHEN 7 THEN 'u' ELSE '' END AS wplan,
           (ARRAY['confirmed', 'canceled', 'partially_canceled', 'canceled', 'failed', 'expired',
                  'ready', 'unknown', 'confirming'])[cls + 1] AS status,
           CASE cls WHEN 4 THEN 'REJECT_CARD_PAYMENT' WHEN 5 THEN 'NOT_FOUND_PAYMENT_SESSION'
                    WHEN 7 THEN 'FAILED_INTERNAL_SYSTEM_PROCESSING' ELSE '' END AS fcode,
           CASE cls WHEN 4 THEN '한도초과 혹은 잔액부족으로 결제에 실패했습니다.'
                    WHEN 5 THEN '결제 시간이 만료되어 결제 진행 데이터가 존재하지 않습니다.'
                    WHEN 7 THEN '내부 시스템 처리 작업이 실패했습니다. 잠시 후 다시 시도해주세요.'
                    ELSE '' END AS fmsg,
           upper(lpad(to_hex(h1), 16, '0') || lpad(to_hex(h2), 16, '0')) AS tkey
    FROM c
), d AS (
    SELECT b.*,
           to_timestamp(ta_e) AS ta, to_timestamp(tc_e) AS tc, to_timestamp(tu_e) AS tu,
           CASE WHEN cls IN (1, 2, 3) THEN
                (lpad(to_hex((tc_e * 1000)::bigint), 12, '0') || '70018' || lpad(to_hex(i), 15, '0'))::uuid END AS cid,
           'confirm-' || pid::text || '-1' AS ckey,
           to_char(to_timestamp(ta_e) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS ta_iso
    FROM b
)`

// relayID is a River client id as River makes them (host and start time).
const relayID = `'payment-outbox-relay-7d9f8b6c5-x2k4p_2026_06_01T00_00_00_000000'`

type batchStatement struct {
	name, table, sql string
}

var batchStatements = []batchStatement{
	{"payments", "payments", `WITH ` + seedBase + `
INSERT INTO payments (id, order_id, order_name, amount, currency, status, payment_key, confirm_key_generation,
    confirm_idempotency_key, approved_amount, balance_amount, canceled_amount, method, approved_at,
    failure_code, failure_message, confirm_requested_at, created_at, updated_at, version, gateway)
SELECT pid, order_id, 'Seed order ' || (h2 % 100000)::text || ' (' || (1 + h1 % 5)::text || ' items)',
       amount, 'KRW', status,
       CASE WHEN cls IN (3, 6) THEN NULL
            ELSE 'tgen_' || lpad(i::text, 14, '0') || lpad(to_hex(h2 & 281474976710655), 12, '0') END,
       1,
       CASE WHEN cls IN (3, 6) THEN NULL ELSE ckey END,
       CASE WHEN cls IN (0, 1, 2) THEN amount ELSE 0 END,
       CASE cls WHEN 0 THEN amount WHEN 2 THEN amount - pc ELSE 0 END,
       CASE cls WHEN 1 THEN amount WHEN 2 THEN pc ELSE 0 END,
       CASE WHEN cls IN (0, 1, 2) THEN '카드' ELSE '' END,
       CASE WHEN cls IN (0, 1, 2) THEN ta END,
       fcode, fmsg,
       CASE WHEN cls IN (3, 6) THEN NULL ELSE creq END,
       ts,
       CASE cls WHEN 1 THEN tc WHEN 2 THEN tc WHEN 3 THEN tc WHEN 6 THEN ts WHEN 7 THEN tu
                WHEN 8 THEN creq ELSE ta END,
       (ARRAY[3, 5, 5, 2, 3, 3, 1, 3, 2])[cls + 1],
       CASE WHEN h1 % 10 < 3 THEN 'portone' ELSE 'toss' END
FROM d`},

	{"payment_cancels", "payment_cancels", `WITH ` + seedBase + `
INSERT INTO payment_cancels (id, payment_id, kind, amount, reason, status, idempotency_key, canceled_amount,
    transaction_key, created_at, updated_at, completed_at)
SELECT cid, pid, 'customer', CASE WHEN cls = 2 THEN pc END,
       (ARRAY['고객 변심', 'customer asked to cancel', '상품 품절로 인한 취소', 'duplicate order'])[1 + h1 % 4],
       CASE WHEN cls = 3 THEN 'void' ELSE 'done' END,
       'cancel-' || cid::text,
       CASE cls WHEN 1 THEN amount WHEN 2 THEN pc ELSE 0 END,
       CASE WHEN cls = 3 THEN '' ELSE tkey END,
       tc, to_timestamp(tc_e + 0.4), to_timestamp(tc_e + 0.4)
FROM d WHERE cls IN (1, 2, 3)`},

	{"payment_attempts", "payment_attempts", `WITH ` + seedBase + `, a AS (
    SELECT d.*, k, substr(plan, k, 1) AS ak,
           CASE substr(plan, k, 1)
                WHEN 'C' THEN tc_e + 0.05
                WHEN 'X' THEN tu_e
                WHEN 'L' THEN creq_e + 10.1
                ELSE creq_e + 0.05 + (k - 1) * CASE WHEN cls = 7 THEN 45 ELSE 2 END END AS req_e,
           CASE WHEN substr(plan, k, 1) IN ('U', 'X') THEN 10000000
                ELSE 150000 + (h1 >> (k * 3)) % 750000 END AS lat
    FROM d CROSS JOIN LATERAL generate_series(1, length(plan)) AS k
)
INSERT INTO payment_attempts (payment_id, cancel_id, operation, idempotency_key, job_id, job_attempt,
    requested_at, finished_at, latency_us, http_status, gateway_code, gateway_message, classification,
    error, gateway_record)
SELECT pid, CASE WHEN ak = 'C' THEN cid END,
       CASE ak WHEN 'L' THEN 'lookup' WHEN 'X' THEN 'lookup' WHEN 'C' THEN 'cancel' ELSE 'confirm' END,
       CASE ak WHEN 'L' THEN '' WHEN 'X' THEN '' WHEN 'C' THEN 'cancel-' || cid::text ELSE ckey END,
       8 * i + CASE ak WHEN 'C' THEN 2 WHEN 'X' THEN 3 ELSE 1 END,
       CASE WHEN ak IN ('T', 'S') THEN k ELSE 1 END,
       to_timestamp(req_e), to_timestamp(req_e + lat / 1e6), lat,
       CASE ak WHEN 'T' THEN 500 WHEN 'R' THEN 403 WHEN 'E' THEN 404 WHEN 'U' THEN NULL WHEN 'X' THEN NULL
               ELSE 200 END,
       CASE ak WHEN 'T' THEN 'FAILED_INTERNAL_SYSTEM_PROCESSING' WHEN 'R' THEN 'REJECT_CARD_PAYMENT'
               WHEN 'E' THEN 'NOT_FOUND_PAYMENT_SESSION' ELSE '' END,
       CASE ak WHEN 'T' THEN '내부 시스템 처리 작업이 실패했습니다. 잠시 후 다시 시도해주세요.'
               WHEN 'R' THEN '한도초과 혹은 잔액부족으로 결제에 실패했습니다.'
               WHEN 'E' THEN '결제 시간이 만료되어 결제 진행 데이터가 존재하지 않습니다.' ELSE '' END,
       CASE ak WHEN 'T' THEN 'transient' WHEN 'U' THEN 'unclear' WHEN 'X' THEN 'unclear'
               WHEN 'R' THEN 'refused' WHEN 'E' THEN 'session_expired' ELSE 'success' END,
       CASE ak WHEN 'U' THEN 'Post "https://api.tosspayments.com/v1/payments/confirm": context deadline exceeded'
               WHEN 'X' THEN 'Get "https://api.tosspayments.com/v1/payments/' || 'tgen_' || lpad(i::text, 14, '0')
                             || '": context deadline exceeded'
               ELSE '' END,
       CASE WHEN ak IN ('S', 'L') THEN
                ('{"status":"DONE","orderId":"' || order_id || '","totalAmount":' || amount
                 || ',"balanceAmount":' || amount || ',"method":"카드","approvedAt":"' || ta_iso
                 || '","cancels":0}')::jsonb
            WHEN ak = 'C' THEN
                ('{"status":"' || CASE cls WHEN 1 THEN 'CANCELED' ELSE 'PARTIAL_CANCELED' END
                 || '","orderId":"' || order_id || '","totalAmount":' || amount
                 || ',"balanceAmount":' || CASE cls WHEN 1 THEN 0 ELSE amount - pc END
                 || ',"method":"카드","approvedAt":"' || ta_iso
                 || '","cancels":1,"lastTransactionKey":"' || tkey || '"}')::jsonb END
FROM a`},

	{"webhook_deliveries", "webhook_deliveries", `WITH ` + seedBase + `, w AS (
    SELECT d.*, k, substr(wplan, k, 1) AS wk,
           CASE substr(wplan, k, 1) WHEN 'u' THEN tu_e WHEN 'x' THEN tc_e + 0.4 WHEN 'p' THEN tc_e + 0.4
                ELSE ta_e + 0.3 END AS et_e
    FROM d CROSS JOIN LATERAL generate_series(1, length(wplan)) AS k
), w2 AS (
    SELECT w.*,
           (lpad(to_hex((et_e * 1000)::bigint), 12, '0') || '700' || (1 + k)::text || '8' || lpad(to_hex(i), 15, '0'))::uuid AS did,
           'evt_' || lpad(to_hex((et_e * 1000)::bigint), 12, '0') || '700' || (4 + k)::text || '8' || lpad(to_hex(i), 15, '0') AS event_id,
           CASE wk WHEN 'c' THEN 'confirmed' WHEN 'x' THEN 'canceled' WHEN 'p' THEN 'partially_canceled'
                   WHEN 'f' THEN 'failed' WHEN 'e' THEN 'expired' ELSE 'unknown' END AS est,
           (h2 >> 30) % 1000 < 3 AND et_e < end_e - 3 * 86400 AS wfailed,
           to_char(to_timestamp(et_e) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS et_iso
    FROM w
)
INSERT INTO webhook_deliveries (id, endpoint_id, event_id, event_type, payment_id, payload, status, attempts,
    last_http_status, last_error, created_at, last_attempt_at, delivered_at)
SELECT did, '` + EndpointID + `', event_id, 'payment.' || est, pid,
       convert_to('{"type":"payment.' || est || '","timestamp":"' || et_iso
           || '","data":{"paymentId":"' || pid::text || '","orderId":"' || order_id
           || '","status":"' || est || '","previousStatus":"'
           || CASE WHEN wk = 'x' AND cls = 3 THEN 'ready' WHEN wk IN ('x', 'p') THEN 'canceling' ELSE 'confirming' END
           || '","version":' || CASE WHEN wk = 'x' AND cls = 3 THEN 2 WHEN wk IN ('x', 'p') THEN 5 ELSE 3 END
           || ',"amount":' || amount || ',"currency":"KRW","approvedAmount":'
           || CASE WHEN cls IN (0, 1, 2) THEN amount ELSE 0 END
           || ',"balanceAmount":' || CASE wk WHEN 'c' THEN amount WHEN 'p' THEN amount - pc ELSE 0 END
           || ',"canceledAmount":' || CASE WHEN wk = 'x' AND cls = 1 THEN amount WHEN wk = 'p' THEN pc ELSE 0 END
           || ',"updatedAt":"' || et_iso || '"'
           || CASE WHEN wk IN ('f', 'e', 'u')
                   THEN ',"failure":{"code":"' || fcode || '","message":"' || fmsg || '"}' ELSE '' END
           || '}}', 'UTF8'),
       CASE WHEN wfailed THEN 'failed' ELSE 'succeeded' END,
       CASE WHEN wfailed THEN 23 ELSE 1 END,
       CASE WHEN wfailed THEN 503 ELSE 200 END,
       CASE WHEN wfailed THEN 'the receiver answered 503 Service Unavailable' ELSE '' END,
       to_timestamp(et_e),
       to_timestamp(et_e + CASE WHEN wfailed THEN 3 * 86400 ELSE 0.2 END),
       CASE WHEN wfailed THEN NULL ELSE to_timestamp(et_e + 0.2) END
FROM w2`},

	// The confirm jobs River still keeps: finished within its retention, or
	// not yet run.
	{"river_job confirm", "river_job", `WITH ` + seedBase + `, j AS (
    SELECT d.*,
           CASE WHEN cls = 7 THEN 20 WHEN plan LIKE 'TS%' THEN 2 ELSE 1 END AS natt,
           CASE WHEN cls = 7 THEN creq_e + 19 * 45 + 0.5 ELSE ta_e END AS fin_e
    FROM d WHERE cls IN (0, 1, 2, 4, 5, 7, 8)
)
INSERT INTO river_job (id, state, attempt, max_attempts, attempted_at, created_at, finalized_at, scheduled_at,
    priority, args, attempted_by, errors, kind, metadata, queue, tags)
SELECT 8 * i + 1,
       CASE WHEN cls = 8 THEN 'available' ELSE 'completed' END::river_job_state,
       CASE WHEN cls = 8 THEN 0 ELSE natt END,
       20,
       CASE WHEN cls = 8 THEN NULL ELSE to_timestamp(fin_e - 0.4) END,
       creq,
       CASE WHEN cls = 8 THEN NULL ELSE to_timestamp(fin_e) END,
       CASE WHEN cls = 8 OR natt = 1 THEN creq ELSE to_timestamp(fin_e - 0.4) END,
       1,
       ('{"paymentId": "' || pid::text || '"}')::jsonb,
       CASE WHEN cls = 8 THEN NULL ELSE ARRAY[` + relayID + `] END,
       CASE WHEN cls <> 8 AND natt > 1 THEN
            ARRAY(SELECT ('{"at": "' || to_char(to_timestamp(creq_e + (e - 1) * 2) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') || '", "attempt": ' || e
                      || ', "error": "the gateway answered 500 FAILED_INTERNAL_SYSTEM_PROCESSING: 내부 시스템 처리 작업이 실패했습니다. 잠시 후 다시 시도해주세요.", "trace": ""}')::jsonb
                  FROM generate_series(1, natt - 1) AS e) END,
       'payment_confirm', '{}'::jsonb, 'default', '{}'::varchar[]
FROM j
WHERE cls = 8 OR fin_e >= job_cutoff_e`},

	{"river_job cancel", "river_job", `WITH ` + seedBase + `
INSERT INTO river_job (id, state, attempt, max_attempts, attempted_at, created_at, finalized_at, scheduled_at,
    priority, args, attempted_by, kind, metadata, queue, tags)
SELECT 8 * i + 2, 'completed', 1, 20, tc, tc, to_timestamp(tc_e + 0.4), tc, 1,
       ('{"paymentId": "' || pid::text || '", "cancelId": "' || cid::text || '"}')::jsonb, ARRAY[` + relayID + `],
       'payment_cancel', '{}'::jsonb, 'default', '{}'::varchar[]
FROM d
WHERE cls IN (1, 2) AND tc_e + 0.4 >= job_cutoff_e`},

	{"river_job lookup", "river_job", `WITH ` + seedBase + `
INSERT INTO river_job (id, state, attempt, max_attempts, attempted_at, created_at, finalized_at, scheduled_at,
    priority, args, attempted_by, kind, metadata, queue, tags, unique_key, unique_states)
SELECT 8 * i + 3, 'completed', 1, 5, tu, tu, to_timestamp(tu_e + 10), tu, 1,
       ('{"paymentId": "' || pid::text || '"}')::jsonb, ARRAY[` + relayID + `],
       'payment_lookup', '{}'::jsonb, 'default', '{}'::varchar[],
       sha256(convert_to('payment_lookup' || pid::text, 'UTF8')), B'11110001'
FROM d
WHERE cls = 7 AND tu_e + 10 >= job_cutoff_e`},

	{"river_job webhook", "river_job", `WITH ` + seedBase + `, w AS (
    SELECT d.*, k,
           CASE substr(wplan, k, 1) WHEN 'u' THEN tu_e WHEN 'x' THEN tc_e + 0.4 WHEN 'p' THEN tc_e + 0.4
                ELSE ta_e + 0.3 END AS et_e
    FROM d CROSS JOIN LATERAL generate_series(1, length(wplan)) AS k
), w2 AS (
    SELECT w.*,
           (lpad(to_hex((et_e * 1000)::bigint), 12, '0') || '700' || (1 + k)::text || '8' || lpad(to_hex(i), 15, '0'))::uuid AS did,
           (h2 >> 30) % 1000 < 3 AND et_e < end_e - 3 * 86400 AS wfailed
    FROM w
), w3 AS (
    SELECT w2.*, et_e + CASE WHEN wfailed THEN 3 * 86400 ELSE 0.2 END AS fin_e FROM w2
)
INSERT INTO river_job (id, state, attempt, max_attempts, attempted_at, created_at, finalized_at, scheduled_at,
    priority, args, attempted_by, errors, kind, metadata, queue, tags, unique_key, unique_states)
SELECT 8 * i + 3 + k,
       CASE WHEN wfailed THEN 'discarded' ELSE 'completed' END::river_job_state,
       CASE WHEN wfailed THEN 23 ELSE 1 END, 23,
       to_timestamp(fin_e - 0.1), to_timestamp(et_e), to_timestamp(fin_e),
       to_timestamp(CASE WHEN wfailed THEN fin_e - 0.1 ELSE et_e END), 1,
       ('{"deliveryId": "' || did::text || '"}')::jsonb, ARRAY[` + relayID + `],
       CASE WHEN wfailed THEN
            ARRAY(SELECT ('{"at": "' || to_char(to_timestamp(et_e + e * 10000) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') || '", "attempt": ' || e
                      || ', "error": "webhook delivery: the receiver answered 503 Service Unavailable", "trace": ""}')::jsonb
                  FROM generate_series(1, 23) AS e) END,
       'webhook_delivery', '{}'::jsonb, 'webhook', '{}'::varchar[],
       sha256(convert_to('webhook_delivery' || did::text, 'UTF8')), B'11110001'
FROM w3
WHERE fin_e >= job_cutoff_e`},

	// The api's Idempotency-Key records within their TTL: the create's and
	// the confirm's.
	{"idempotency_keys", "idempotency_keys", `WITH ` + seedBase + `, r AS (
    SELECT d.*, k
    FROM d CROSS JOIN LATERAL generate_series(1, CASE WHEN cls IN (3, 6) THEN 1 ELSE 2 END) AS k
    WHERE ep >= idem_cutoff_e
)
INSERT INTO idempotency_keys (api_key_id, idempotency_key, request_hash, response_status, response_headers,
    response_body, created_at, expires_at)
SELECT '` + APIKeyID + `',
       (lpad(to_hex((ep * 1000)::bigint), 12, '0') || '7004' || '8' || lpad(to_hex(2 * i + k), 15, '0'))::uuid::text,
       sha256(convert_to(order_id || k::text, 'UTF8')),
       CASE k WHEN 1 THEN 201 ELSE 202 END,
       CASE k WHEN 1 THEN ('{"Content-Type": "application/json", "Location": "/v1/payments/' || pid::text || '"}')::jsonb
              ELSE '{"Content-Type": "application/json"}'::jsonb END,
       convert_to('{"id":"' || pid::text || '","orderId":"' || order_id
           || '","orderName":"Seed order ' || (h2 % 100000)::text || ' (' || (1 + h1 % 5)::text || ' items)'
           || '","amount":' || amount || ',"currency":"KRW","gateway":"'
           || CASE WHEN h1 % 10 < 3 THEN 'portone' ELSE 'toss' END
           || '","status":"' || CASE k WHEN 1 THEN 'ready' ELSE 'confirming' END || '"'
           || CASE k WHEN 1 THEN '' ELSE ',"paymentKey":"tgen_' || lpad(i::text, 14, '0') || lpad(to_hex(h2 & 281474976710655), 12, '0') || '"' END
           || ',"approvedAmount":0,"balanceAmount":0,"canceledAmount":0,"version":' || k
           || ',"createdAt":"' || to_char(to_timestamp(ep) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
           || '","updatedAt":"' || to_char(to_timestamp(CASE k WHEN 1 THEN ep ELSE creq_e END) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
           || '","attempts":[],"cancels":[]}', 'UTF8'),
       CASE k WHEN 1 THEN ts ELSE creq END,
       CASE k WHEN 1 THEN ts ELSE creq END + interval '24 hours'
FROM r`},
}

// sqlReconcileJobs is the reconciler's periodic job, once a minute over
// River's retention ($2 to $1).
const sqlReconcileJobs = `
INSERT INTO river_job (state, attempt, max_attempts, attempted_at, created_at, finalized_at, scheduled_at,
    priority, args, attempted_by, kind, metadata, queue, tags)
SELECT 'completed', 1, 25, t + interval '5 milliseconds', t, t + interval '40 milliseconds', t, 1, '{}'::jsonb,
       ARRAY[` + relayID + `], 'payment_reconcile', '{}'::jsonb, 'default', '{}'::varchar[]
FROM generate_series($2::timestamptz, $1::timestamptz - interval '1 minute', interval '1 minute') AS t`
