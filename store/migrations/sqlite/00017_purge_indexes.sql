-- +goose Up
-- The janitor deletes what it no longer keeps a batch at a time, found by
-- these: it scanned each table instead, every hour, holding the one writer
-- meanwhile (0.4 s at 600,000 delivered events with nothing to delete).
-- Delivered events only: the undelivered ones have events_due.
CREATE INDEX counters_day ON counters (day);
CREATE INDEX throttles_last_at ON throttles (last_at);
CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);
CREATE INDEX events_delivered ON events (delivered_at) WHERE delivered_at IS NOT NULL;

-- +goose Down
DROP INDEX events_delivered;
DROP INDEX idempotency_keys_created_at;
DROP INDEX throttles_last_at;
DROP INDEX counters_day;
