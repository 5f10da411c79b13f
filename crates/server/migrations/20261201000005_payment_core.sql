-- The payment core: the session-level claim, reconciler leases, late successes, provider check schedules and
-- Stripe-like idempotency locks.

-- The attempt whose Execute (or approval) is being confirmed: claimed in the same transaction as the attempt's
-- own created -> executing move, so two attempts of one session can never both execute.
ALTER TABLE sessions ADD COLUMN executing_attempt_id TEXT;

-- A reconciler instance holds a stuck attempt until this time (Unix ms) while it works on it.
ALTER TABLE attempts ADD COLUMN lease_until BIGINT;
-- 1 when a provider-confirmed success arrived after the attempt had been closed and still paid the session.
ALTER TABLE attempts ADD COLUMN late BIGINT NOT NULL DEFAULT 0;
-- When the provider should next be asked about this attempt (Bestin /query back-off, the one re-check of an
-- attempt failed after an Execute timeout); NULL: never.
ALTER TABLE attempts ADD COLUMN next_check_at BIGINT;
-- Provider checks made so far (the back-off schedule and the retry budget).
ALTER TABLE attempts ADD COLUMN checks BIGINT NOT NULL DEFAULT 0;
CREATE INDEX attempts_next_check ON attempts (next_check_at);
CREATE INDEX attempts_req_id ON attempts (req_id);

-- An in-flight idempotency key whose request died is retaken after this time.
ALTER TABLE idempotency ADD COLUMN locked_until BIGINT;

-- Refund settlement: checks so far and the provider's answer (a pending refund is never failed without one).
ALTER TABLE refunds ADD COLUMN checks BIGINT NOT NULL DEFAULT 0;
CREATE INDEX refunds_attempt ON refunds (attempt_id);
CREATE INDEX refunds_pending ON refunds (status, updated_at);

-- The Idempotency-Key a refund was created with: a retaken key (its first request died) finds the refund that
-- request made instead of refunding again.
ALTER TABLE refunds ADD COLUMN request_key TEXT;
CREATE UNIQUE INDEX refunds_request_key ON refunds (request_key);
