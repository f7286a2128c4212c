-- +goose Up
-- Exporting or erasing a customer finds its events, delivered or not, and
-- the challenges bound to it by index, not by reading the whole table.
DROP INDEX events_customer;
CREATE INDEX events_customer ON events (tenant_id, customer_id, seq);
CREATE INDEX challenges_customer ON challenges (tenant_id, customer_id) WHERE customer_id IS NOT NULL;

-- +goose Down
DROP INDEX challenges_customer;
DROP INDEX events_customer;
CREATE INDEX events_customer ON events (tenant_id, customer_id, seq) WHERE delivered_at IS NULL AND dead_at IS NULL;
