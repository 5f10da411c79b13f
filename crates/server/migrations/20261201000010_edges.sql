-- Indexes for the lookups made on every notification, callback, poll and reconciler pass, and for the
-- retention sweeps (idempotency keys, notifications, events).
CREATE INDEX IF NOT EXISTS attempts_req_id ON attempts (req_id);
CREATE INDEX IF NOT EXISTS attempts_method_status ON attempts (method, status, updated_at);
CREATE INDEX IF NOT EXISTS refunds_attempt ON refunds (attempt_id);
CREATE INDEX IF NOT EXISTS refunds_status ON refunds (status, updated_at);
CREATE INDEX IF NOT EXISTS notifications_trx ON notifications (trx_id);
CREATE INDEX IF NOT EXISTS notifications_received ON notifications (received_at);
CREATE INDEX IF NOT EXISTS payouts_status ON payouts (status, updated_at);
CREATE INDEX IF NOT EXISTS idempotency_created ON idempotency (created_at);
CREATE INDEX IF NOT EXISTS events_created ON events (created_at);
