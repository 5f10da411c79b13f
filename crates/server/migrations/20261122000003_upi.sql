-- UPI through Bestin Pay: per-attempt request id, deep links and deadline; notification dedupe; payouts.
ALTER TABLE attempts ADD COLUMN req_id TEXT;
ALTER TABLE attempts ADD COLUMN links TEXT;
ALTER TABLE attempts ADD COLUMN expires_at BIGINT;

CREATE TABLE notifications (
    notify_id   TEXT PRIMARY KEY,
    trx_id      TEXT NOT NULL,
    status      TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    received_at BIGINT NOT NULL
);

CREATE TABLE payouts (
    id              TEXT PRIMARY KEY,
    reference       TEXT NOT NULL UNIQUE,
    req_id          TEXT NOT NULL UNIQUE,
    amount_minor    BIGINT NOT NULL,
    currency        TEXT NOT NULL,
    upi             TEXT NOT NULL,
    status          TEXT NOT NULL,
    trx_id          TEXT,
    failure_message TEXT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX payouts_trx ON payouts (trx_id);
