-- One row per merchant invoice: creating a session and paying one take this row's lock first, so that two
-- requests for one invoice are serialised on PostgreSQL (READ COMMITTED) as on SQLite.
CREATE TABLE invoices (
    invoice    TEXT PRIMARY KEY,
    updated_at BIGINT NOT NULL
);
INSERT INTO invoices (invoice, updated_at) SELECT invoice, MAX(updated_at) FROM sessions GROUP BY invoice;

-- A refund bKash made is ours once: two pending refunds of one amount cannot both claim it.
CREATE UNIQUE INDEX refunds_refund_trx_id ON refunds (refund_trx_id);
