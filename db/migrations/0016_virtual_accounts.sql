-- Virtual accounts (docs/design.md section 19): a payment whose confirm
-- issued a bank account waits, sometimes for days, for the customer's
-- transfer in its own state, holding the account as the gateway gave it.

ALTER TABLE payments DROP CONSTRAINT payments_status_check;
ALTER TABLE payments ADD CONSTRAINT payments_status_check CHECK (status IN (
    'ready', 'confirming', 'waiting_for_deposit', 'confirmed', 'failed', 'expired',
    'unknown', 'canceling', 'canceled', 'partially_canceled'));

-- The issued account, shown to the customer: the gateway's bank code, the
-- number, the holder and the due date. All NULL for every other payment, so
-- the rows of earlier payments (and of the previous release running beside
-- this one) need nothing.
ALTER TABLE payments ADD COLUMN va_bank           text;
ALTER TABLE payments ADD COLUMN va_account_number text;
ALTER TABLE payments ADD COLUMN va_holder         text;
ALTER TABLE payments ADD COLUMN va_due_at         timestamptz;
-- Toss's Payment.secret from the answer that issued the account: a
-- DEPOSIT_CALLBACK is believed only when it carries the same value.
ALTER TABLE payments ADD COLUMN deposit_secret    text;
-- When the relay's deposit sweep next looks the payment up.
ALTER TABLE payments ADD COLUMN deposit_next_look_at timestamptz;

ALTER TABLE payments ADD CONSTRAINT payments_waiting_has_account
    CHECK (status <> 'waiting_for_deposit' OR va_account_number IS NOT NULL);

-- Payments waiting for a deposit, by their next look: the sweep reads it,
-- and the metrics count waiting payments through it (a partial index stays
-- as small as the waiting payments are few, never a pass over the table).
CREATE INDEX payments_waiting_deposit_idx ON payments (deposit_next_look_at)
    WHERE status = 'waiting_for_deposit';

-- The customer's refund account of a cancel of a deposited virtual-account
-- payment. The audit keeps the bank and the last four digits for good; the
-- whole number and the holder are kept only while the cancel may still be
-- sent (waiting, pending, or unknown and possibly sent again), and the check
-- makes it impossible for them to outlive it.
ALTER TABLE payment_cancels ADD COLUMN refund_bank           text;
ALTER TABLE payment_cancels ADD COLUMN refund_account_last4  text;
ALTER TABLE payment_cancels ADD COLUMN refund_account_number text;
ALTER TABLE payment_cancels ADD COLUMN refund_holder_name    text;
ALTER TABLE payment_cancels ADD CONSTRAINT payment_cancels_refund_account_while_open
    CHECK ((refund_account_number IS NULL AND refund_holder_name IS NULL)
        OR status IN ('waiting', 'pending', 'unknown'));
