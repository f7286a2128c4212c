-- +goose Up
-- A change held by a challenge (JSON), applied when the challenge is completed.
ALTER TABLE challenges ADD COLUMN pending text NOT NULL DEFAULT '';

-- The transactional outbox: every customer event, written with the change,
-- delivered to the tenant's webhooks in seq order per customer.
CREATE TABLE events (
    seq          integer     PRIMARY KEY AUTOINCREMENT,
    id           text        NOT NULL UNIQUE,
    tenant_id    text        NOT NULL,
    customer_id  text        NOT NULL,
    type         text        NOT NULL,
    payload      text        NOT NULL,
    created_at   datetime    NOT NULL,
    attempts     integer     NOT NULL DEFAULT 0,
    next_at      datetime    NOT NULL,
    lease_until  datetime,
    delivered_at datetime,
    dead_at      datetime,
    last_error   text        NOT NULL DEFAULT ''
);
CREATE INDEX events_due ON events (next_at) WHERE delivered_at IS NULL AND dead_at IS NULL;
CREATE INDEX events_customer ON events (tenant_id, customer_id, seq) WHERE delivered_at IS NULL AND dead_at IS NULL;

-- Idempotency-Key of POST /customer: the first answer, kept for replays.
CREATE TABLE idempotency_keys (
    tenant_id    text        NOT NULL,
    key          text        NOT NULL,
    request_hash text        NOT NULL,
    status       integer     NOT NULL DEFAULT 0,
    content_type text        NOT NULL DEFAULT '',
    body         blob,
    created_at   datetime    NOT NULL,
    PRIMARY KEY (tenant_id, key)
);

-- +goose Down
DROP TABLE idempotency_keys;
DROP TABLE events;
ALTER TABLE challenges DROP COLUMN pending;
