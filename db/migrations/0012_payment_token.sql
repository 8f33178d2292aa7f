-- PortOne's manual confirm (docs/design.md section 13): the paymentToken the
-- customer's browser got from PortOne, which the relay sends with its
-- confirm. It is kept only while a confirm may still be sent (confirming,
-- or unknown after a confirm spent its budget) and cleared by the save that
-- moves the payment on; the check makes a token outliving its confirm
-- impossible rather than merely unlikely.
--
-- Nullable with no default, so the rows of every payment made before (and
-- of every payment the previous release still writes while it runs beside
-- this one) need nothing.
ALTER TABLE payments ADD COLUMN payment_token text;

ALTER TABLE payments ADD CONSTRAINT payments_payment_token_in_confirm
    CHECK (payment_token IS NULL OR status IN ('confirming', 'unknown'));
