-- River's job table, as far as the project's own queries (db/queries/stats.sql)
-- read it. sqlc only: this file is never applied. River's migrator creates the
-- real table (`api migrate`, see internal/store/migrate.go), and db.Migrations
-- embeds db/migrations alone. Keep the columns here a subset of River's, with
-- River's types (riverpgxv5 migration/main/002_initial_schema.up.sql).

CREATE TYPE river_job_state AS ENUM (
    'available',
    'cancelled',
    'completed',
    'discarded',
    'pending',
    'retryable',
    'running',
    'scheduled'
);

CREATE TABLE river_job (
    id           bigserial       PRIMARY KEY,
    state        river_job_state NOT NULL DEFAULT 'available',
    created_at   timestamptz     NOT NULL DEFAULT now(),
    kind         text            NOT NULL
);

-- The columns the operator console reads (db/queries/operators.sql).
ALTER TABLE river_job
    ADD COLUMN args         jsonb       NOT NULL DEFAULT '{}',
    ADD COLUMN attempt      smallint    NOT NULL DEFAULT 0,
    ADD COLUMN max_attempts smallint    NOT NULL,
    ADD COLUMN attempted_at timestamptz,
    ADD COLUMN errors       jsonb[],
    ADD COLUMN finalized_at timestamptz,
    ADD COLUMN scheduled_at timestamptz NOT NULL DEFAULT now();
