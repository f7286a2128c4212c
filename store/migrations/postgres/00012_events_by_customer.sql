-- +goose Up
-- A customer's events by its id alone: ids are unique across tenants and
-- time-ordered (UUIDv7), so a new account's event goes to the end of this
-- index whatever its tenant, where under (tenant_id, customer_id, seq) it
-- went to a random page of it when sign-ins spread over many tenants. The
-- outbox's order per customer, export and erasure read it the same way.
DROP INDEX events_customer;
CREATE INDEX events_customer ON events (customer_id, seq);

-- +goose Down
DROP INDEX events_customer;
CREATE INDEX events_customer ON events (tenant_id, customer_id, seq);
