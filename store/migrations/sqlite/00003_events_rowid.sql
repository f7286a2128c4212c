-- +goose Up
-- seq becomes a plain rowid alias. AUTOINCREMENT made every event insert read
-- and write sqlite_sequence (a page more in each commit) to promise that a
-- seq is never reused, even after its event is purged; the outbox needs less:
-- a new event's seq is above every remaining event's, which a rowid gives.
-- (PostgreSQL's bigserial costs nothing of the kind: no migration there.)
CREATE TABLE events_rowid (
    seq          integer     PRIMARY KEY,
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
INSERT INTO events_rowid (seq, id, tenant_id, customer_id, type, payload, created_at, attempts, next_at, lease_until, delivered_at, dead_at, last_error)
    SELECT seq, id, tenant_id, customer_id, type, payload, created_at, attempts, next_at, lease_until, delivered_at, dead_at, last_error FROM events;
DROP TABLE events;
ALTER TABLE events_rowid RENAME TO events;
CREATE INDEX events_due ON events (next_at) WHERE delivered_at IS NULL AND dead_at IS NULL;
CREATE INDEX events_customer ON events (tenant_id, customer_id, seq) WHERE delivered_at IS NULL AND dead_at IS NULL;

-- +goose Down
CREATE TABLE events_autoincrement (
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
INSERT INTO events_autoincrement (seq, id, tenant_id, customer_id, type, payload, created_at, attempts, next_at, lease_until, delivered_at, dead_at, last_error)
    SELECT seq, id, tenant_id, customer_id, type, payload, created_at, attempts, next_at, lease_until, delivered_at, dead_at, last_error FROM events;
DROP TABLE events;
ALTER TABLE events_autoincrement RENAME TO events;
CREATE INDEX events_due ON events (next_at) WHERE delivered_at IS NULL AND dead_at IS NULL;
CREATE INDEX events_customer ON events (tenant_id, customer_id, seq) WHERE delivered_at IS NULL AND dead_at IS NULL;
