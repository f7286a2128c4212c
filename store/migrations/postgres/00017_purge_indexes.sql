-- +goose NO TRANSACTION
-- +goose Up
-- The janitor deletes what it no longer keeps a batch at a time, found by
-- these: it scanned each table instead, every hour, holding SQLite's one
-- writer meanwhile (0.4 s at 600,000 delivered events with nothing to
-- delete). The delivered events have none: the janitor walks them by seq
-- (store.purgeDelivered), where an index on delivered_at would be written
-- with every event, on every sign-in's path.
-- Built CONCURRENTLY, as 00012, so that writes go on while they are built.
DROP INDEX CONCURRENTLY IF EXISTS counters_day;
CREATE INDEX CONCURRENTLY counters_day ON counters (day);
DROP INDEX CONCURRENTLY IF EXISTS throttles_last_at;
CREATE INDEX CONCURRENTLY throttles_last_at ON throttles (last_at);
DROP INDEX CONCURRENTLY IF EXISTS idempotency_keys_created_at;
CREATE INDEX CONCURRENTLY idempotency_keys_created_at ON idempotency_keys (created_at);

-- +goose Down
DROP INDEX CONCURRENTLY IF EXISTS idempotency_keys_created_at;
DROP INDEX CONCURRENTLY IF EXISTS throttles_last_at;
DROP INDEX CONCURRENTLY IF EXISTS counters_day;
