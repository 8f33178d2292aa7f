-- The refundableAmount each cancel request was sent with (the balance it
-- expected the gateway to hold), so that a gateway balance that is neither
-- ours nor what the cancel leaves can be matched against the gateway's own
-- list of cancels: a request of ours could only have been performed at
-- exactly that balance. NULL for confirms, lookups and requests sent before
-- this column existed (then only the cancel's amount and time are matched).
ALTER TABLE payment_attempts ADD COLUMN refundable_amount bigint;

-- settle_cancel: a person's decision on a cancel the relay could not settle
-- from the gateway's record (an unexplained balance), carried out by a
-- lookup of that record.
ALTER TABLE operator_actions DROP CONSTRAINT operator_actions_action_check;
ALTER TABLE operator_actions ADD CONSTRAINT operator_actions_action_check CHECK (action IN (
    'lookup', 'retry', 'resend_cancel', 'resolve', 'acknowledge', 'retry_job', 'settle_cancel'));
