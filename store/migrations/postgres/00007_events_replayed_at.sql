-- +goose Up
-- A replayed event's retry window (webhooks.maxAge) starts at its replay,
-- not at its creation: otherwise it is dead again after one attempt.
ALTER TABLE events ADD COLUMN replayed_at timestamptz;

-- +goose Down
ALTER TABLE events DROP COLUMN replayed_at;
