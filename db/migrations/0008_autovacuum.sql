-- Vacuum the busy tables by a fixed number of dead rows, not by a share of
-- the table. Postgres's default waits for 20% of a table to be dead: on
-- river_job holding a week of finished jobs (~850k rows at 10M payments)
-- that is ~170k dead rows, and on payments millions. Until then every
-- finished job and every status change leaves dead entries in the indexes
-- the hot paths walk: River's fetch scans the available range of its fetch
-- index past the dead entries of the jobs fetched before it, and the
-- attention index grows the same way. Grown to 10 million payments, the
-- relay drained at 0.64 of its empty-table rate (docs/benchmarks.md, "Cost
-- as it grows"). A fixed threshold keeps each vacuum small and frequent,
-- whatever the table's size.
ALTER TABLE river_job SET (
    autovacuum_vacuum_scale_factor = 0,
    autovacuum_vacuum_threshold = 5000,
    autovacuum_vacuum_insert_scale_factor = 0,
    autovacuum_vacuum_insert_threshold = 20000,
    autovacuum_analyze_scale_factor = 0,
    autovacuum_analyze_threshold = 20000
);

ALTER TABLE payments SET (
    autovacuum_vacuum_scale_factor = 0,
    autovacuum_vacuum_threshold = 10000,
    autovacuum_analyze_scale_factor = 0.01
);

ALTER TABLE payment_attempts SET (
    autovacuum_vacuum_scale_factor = 0,
    autovacuum_vacuum_threshold = 10000,
    autovacuum_analyze_scale_factor = 0.01
);

ALTER TABLE payment_cancels SET (
    autovacuum_vacuum_scale_factor = 0,
    autovacuum_vacuum_threshold = 10000
);

ALTER TABLE webhook_deliveries SET (
    autovacuum_vacuum_scale_factor = 0,
    autovacuum_vacuum_threshold = 10000
);
