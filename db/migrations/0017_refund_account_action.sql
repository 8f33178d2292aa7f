-- refund_account: an operator names the customer's refund account for a
-- refund of deposited virtual-account money that waits for one (a deposit
-- of another amount than the intent) or that the gateway refused with the
-- account it had; the refund then goes through the outbox to it
-- (docs/design.md section 19).
ALTER TABLE operator_actions DROP CONSTRAINT operator_actions_action_check;
ALTER TABLE operator_actions ADD CONSTRAINT operator_actions_action_check CHECK (action IN (
    'lookup', 'retry', 'resend_cancel', 'resolve', 'acknowledge', 'retry_job', 'settle_cancel',
    'refund_account'));
