-- Why the relay did something beyond reading the answer: e.g. the lookup that
-- justified moving an operation to a new Idempotency-Key says so here.
ALTER TABLE payment_attempts ADD COLUMN note text NOT NULL DEFAULT '';
