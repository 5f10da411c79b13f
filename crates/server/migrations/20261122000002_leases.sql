-- Short leases that serialise work across backend instances (e.g. renewing the shared bKash token).
CREATE TABLE leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
