-- bKash IPN (Amazon SNS): the MessageIds already handled (redeliveries keep theirs), and the payments bKash
-- announced that no checkout of ours made (QR, USSD, app): recorded and reported, never attached to a session.
CREATE TABLE bkash_ipn_messages (
    message_id  TEXT PRIMARY KEY,
    trx_id      TEXT,
    outcome     TEXT NOT NULL,
    received_at BIGINT NOT NULL
);
CREATE INDEX bkash_ipn_messages_received ON bkash_ipn_messages (received_at);

CREATE TABLE bkash_unmatched (
    trx_id           TEXT PRIMARY KEY,
    amount_minor     BIGINT NOT NULL,
    currency         TEXT NOT NULL,
    payer            TEXT,
    transaction_type TEXT,
    invoice          TEXT,
    reference        TEXT,
    paid_at          TEXT,
    message_id       TEXT NOT NULL,
    created_at       BIGINT NOT NULL
);
CREATE INDEX bkash_unmatched_created ON bkash_unmatched (created_at);
