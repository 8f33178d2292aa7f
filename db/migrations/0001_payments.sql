-- Payments, their cancel requests and every gateway call made for them.
-- River's own tables are created by River's migrator (see internal/store/migrate.go).

CREATE TABLE payments (
    id                      uuid        PRIMARY KEY,
    order_id                text        NOT NULL UNIQUE CHECK (order_id ~ '^[A-Za-z0-9_-]{6,64}$'),
    order_name              text        NOT NULL CHECK (length(order_name) BETWEEN 1 AND 100),
    amount                  bigint      NOT NULL CHECK (amount > 0),
    currency                text        NOT NULL DEFAULT 'KRW',
    status                  text        NOT NULL CHECK (status IN (
                                'ready', 'confirming', 'confirmed', 'failed', 'expired',
                                'unknown', 'canceling', 'canceled', 'partially_canceled')),
    payment_key             text        UNIQUE,
    -- Bumped only when a lookup proved the gateway did not perform the
    -- confirm under the previous key.
    confirm_key_generation  integer     NOT NULL DEFAULT 1,
    confirm_idempotency_key text,
    approved_amount         bigint      NOT NULL DEFAULT 0,
    balance_amount          bigint      NOT NULL DEFAULT 0,
    canceled_amount         bigint      NOT NULL DEFAULT 0,
    method                  text        NOT NULL DEFAULT '',
    approved_at             timestamptz,
    failure_code            text        NOT NULL DEFAULT '',
    failure_message         text        NOT NULL DEFAULT '',
    confirm_requested_at    timestamptz,
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now(),
    CHECK (balance_amount >= 0 AND canceled_amount >= 0),
    CHECK (status = 'ready' OR payment_key IS NOT NULL OR status = 'canceled')
);

-- Payments that need the gateway's word: the reconciler and operators read these.
CREATE INDEX payments_attention_idx ON payments (updated_at)
    WHERE status IN ('confirming', 'canceling', 'unknown');

CREATE TABLE payment_cancels (
    id               uuid        PRIMARY KEY,
    payment_id       uuid        NOT NULL REFERENCES payments (id),
    kind             text        NOT NULL CHECK (kind IN ('customer', 'compensation')),
    -- NULL: the whole balance.
    amount           bigint      CHECK (amount > 0),
    reason           text        NOT NULL CHECK (length(reason) BETWEEN 1 AND 200),
    status           text        NOT NULL CHECK (status IN ('waiting', 'pending', 'done', 'failed', 'unknown', 'void')),
    idempotency_key  text        NOT NULL UNIQUE,
    canceled_amount  bigint      NOT NULL DEFAULT 0,
    transaction_key  text        NOT NULL DEFAULT '',
    failure_code     text        NOT NULL DEFAULT '',
    failure_message  text        NOT NULL DEFAULT '',
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    completed_at     timestamptz
);

CREATE INDEX payment_cancels_payment_idx ON payment_cancels (payment_id, created_at);

-- At most one cancel per payment is with the gateway at a time, so a partial
-- cancel is never computed against a balance another cancel is changing.
CREATE UNIQUE INDEX payment_cancels_one_open_idx ON payment_cancels (payment_id)
    WHERE status = 'pending';

CREATE TABLE payment_attempts (
    id               bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    payment_id       uuid        NOT NULL REFERENCES payments (id),
    cancel_id        uuid        REFERENCES payment_cancels (id),
    operation        text        NOT NULL CHECK (operation IN ('confirm', 'cancel', 'lookup')),
    idempotency_key  text        NOT NULL DEFAULT '',
    job_id           bigint,
    job_attempt      integer,
    requested_at     timestamptz NOT NULL,
    finished_at      timestamptz,
    latency_us       bigint,
    http_status      integer,
    gateway_code     text        NOT NULL DEFAULT '',
    gateway_message  text        NOT NULL DEFAULT '',
    -- How the relay read the answer; NULL while the call is in flight or if
    -- the relay died during it.
    classification   text,
    error            text        NOT NULL DEFAULT ''
);

CREATE INDEX payment_attempts_payment_idx ON payment_attempts (payment_id, id);
