-- Operators: scoped API keys, an audit row per operator action, console
-- sessions, acknowledged payments, and the gateway's record as each call saw
-- it (for the console's side-by-side view).

-- What a key may do (internal/apikey.Scope). Every key made before scopes
-- existed belonged to a checkout, so that is the default.
ALTER TABLE api_keys ADD COLUMN scope text NOT NULL DEFAULT 'checkout'
    CHECK (scope IN ('checkout', 'operator', 'readonly'));

-- When an operator took an unknown payment off the alert list (acknowledge).
-- It holds for the status it was given in: any status change clears it.
ALTER TABLE payments ADD COLUMN acknowledged_at timestamptz;

-- The gateway's Payment object as one call's answer carried it (status,
-- amounts, order, cancels), NULL when the answer carried none. The api never
-- calls the gateway; this is how it shows the gateway's side.
ALTER TABLE payment_attempts ADD COLUMN gateway_record jsonb;

-- One row per operator action, written in the transaction that takes it.
CREATE TABLE operator_actions (
    id             bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- NULL for an action on an outbox job that belongs to no payment.
    payment_id     uuid        REFERENCES payments (id),
    cancel_id      uuid        REFERENCES payment_cancels (id),
    -- Who: the key's id and its name as it was then (a key can be renamed
    -- by revoking it and creating another; the row must still say who).
    api_key_id     uuid        NOT NULL REFERENCES api_keys (id),
    api_key_name   text        NOT NULL,
    action         text        NOT NULL CHECK (action IN (
                       'lookup', 'retry', 'resend_cancel', 'resolve', 'acknowledge', 'retry_job')),
    reason         text        NOT NULL CHECK (length(reason) BETWEEN 1 AND 500),
    status_before  text        NOT NULL DEFAULT '',
    status_after   text        NOT NULL DEFAULT '',
    -- The outbox job the action enqueued or retried.
    job_id         bigint,
    -- What the action did, in words (the key a cancel was sent under, ...).
    detail         text        NOT NULL DEFAULT '',
    -- For lookup and resolve: what the relay found when the lookup ran, and
    -- the status it left; written by the relay in the transaction that
    -- settles the payment.
    outcome        text        NOT NULL DEFAULT '',
    outcome_status text        NOT NULL DEFAULT '',
    completed_at   timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX operator_actions_payment_idx ON operator_actions (payment_id, id);

-- Signed-in console users. Only a hash of the session token is kept, as for
-- API keys; the key it was made with must stay unrevoked for it to work.
CREATE TABLE console_sessions (
    token_hash  bytea       PRIMARY KEY CHECK (length(token_hash) = 32),
    api_key_id  uuid        NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    -- The synchronizer token every console form must carry.
    csrf_token  text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL
);

CREATE INDEX console_sessions_expires_idx ON console_sessions (expires_at);
