-- Reconciliation against the gateways' books (대사; docs/design.md,
-- "Reconciliation"). Each run lists one gateway's transactions for a window
-- and compares them with our rows; what differs is kept until a later run no
-- longer finds it. Nothing here changes a payment: only lookups do.

CREATE TABLE books_runs (
    id            bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    gateway       text        NOT NULL,
    window_from   timestamptz NOT NULL,
    window_until  timestamptz NOT NULL,
    started_at    timestamptz NOT NULL,
    finished_at   timestamptz,
    pages         integer     NOT NULL DEFAULT 0,
    -- Transactions listed, and those that agreed with our rows.
    transactions  integer     NOT NULL DEFAULT 0,
    matched       integer     NOT NULL DEFAULT 0,
    -- Differences this run found; of them, those an earlier run had found
    -- too (they outlived a run), those handed to a lookup, and those only
    -- an operator can settle (listed).
    differences   integer     NOT NULL DEFAULT 0,
    persisting    integer     NOT NULL DEFAULT 0,
    lookups       integer     NOT NULL DEFAULT 0,
    listed        integer     NOT NULL DEFAULT 0,
    -- Open differences of earlier runs this run no longer found.
    resolved      integer     NOT NULL DEFAULT 0,
    -- Why the run did not finish its comparison (a gateway error, say);
    -- empty for a run that did.
    error         text        NOT NULL DEFAULT '',
    CHECK (window_from < window_until)
);

CREATE INDEX books_runs_gateway_idx ON books_runs (gateway, id);

CREATE TABLE books_differences (
    id             bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    gateway        text        NOT NULL,
    kind           text        NOT NULL CHECK (kind IN (
                       'unknown_payment', 'approval_missing', 'amount_differs',
                       'refund_missing', 'missing_at_gateway')),
    payment_key    text        NOT NULL,
    -- What the difference is about: the transaction's key, or the payment
    -- key for a difference about a whole payment. One open difference per
    -- (gateway, kind, subject).
    subject        text        NOT NULL,
    -- Our payment, when we have one (NULL: a gateway payment we never
    -- heard of).
    payment_id     uuid        REFERENCES payments (id),
    -- When the gateway's transaction (or our charge) happened: a later run
    -- resolves the difference only if its window covers this moment.
    occurred_at    timestamptz NOT NULL,
    gateway_record jsonb,
    ours           text        NOT NULL DEFAULT '',
    -- A lookup was enqueued for it (the lookup settles; this row does not).
    lookup         boolean     NOT NULL DEFAULT false,
    first_run_id   bigint      NOT NULL REFERENCES books_runs (id),
    last_run_id    bigint      NOT NULL REFERENCES books_runs (id),
    -- How many runs found it; above 1 it outlived a run.
    runs           integer     NOT NULL DEFAULT 1,
    created_at     timestamptz NOT NULL DEFAULT now(),
    resolved_at    timestamptz
);

CREATE UNIQUE INDEX books_differences_open_idx ON books_differences (gateway, kind, subject)
    WHERE resolved_at IS NULL;
CREATE INDEX books_differences_run_idx ON books_differences (last_run_id);

-- Our payments charged in a window, per gateway: what a run looks for in the
-- gateway's books. approved_at is written once, at the approval, so the index
-- costs that one update and no other.
CREATE INDEX payments_books_idx ON payments (gateway, approved_at) WHERE approved_at IS NOT NULL;
