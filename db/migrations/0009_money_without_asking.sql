-- Money can move at the gateway without our asking: a PortOne customer pays
-- in the browser before our server hears of it, a shop's staff refund in the
-- gateway's console. These columns let the relay go and look
-- (docs/design.md, "Money that moves without our asking").

-- When the relay next looks the payment up, and until when it keeps doing so,
-- for a payment whose record rests on not having seen money that the gateway
-- could still take without us: a PortOne intent still ready, or one we
-- recorded failed, expired or canceled before any charge was seen. NULL for
-- every other payment.
ALTER TABLE payments ADD COLUMN next_recheck_at timestamptz;
ALTER TABLE payments ADD COLUMN recheck_until   timestamptz;

-- The newest moment someone (a gateway webhook, an operator) asked for a
-- lookup that no lookup has answered yet. A lookup that ran while it was set
-- anew leaves a follow-up behind it, and one that was lost (discarded after
-- its attempts) is found again by the reconciler, so no request to look is
-- lost. It is not a change to the payment: setting it leaves updated_at alone.
ALTER TABLE payments ADD COLUMN lookup_wanted_at timestamptz;

CREATE INDEX payments_next_recheck_idx ON payments (next_recheck_at)
    WHERE next_recheck_at IS NOT NULL;
CREATE INDEX payments_lookup_wanted_idx ON payments (lookup_wanted_at)
    WHERE lookup_wanted_at IS NOT NULL;

-- Ready intents by age, for the relay's sweep of PortOne intents the customer
-- may have paid for without our hearing of it.
CREATE INDEX payments_ready_idx ON payments (created_at) WHERE status = 'ready';
