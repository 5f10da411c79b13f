-- Signed webhooks to the merchant: an outbox row is written in the same transaction as the change it reports
-- (a payment completed, a refund settled), then delivered with retries by any instance holding its lease.
CREATE TABLE webhook_deliveries (
    id              TEXT PRIMARY KEY,
    event_type      TEXT NOT NULL,
    payload         TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    attempts        BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    lease_until     BIGINT,
    delivered_at    BIGINT,
    gave_up_at      BIGINT,
    last_error      TEXT
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at);
