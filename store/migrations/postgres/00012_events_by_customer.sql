-- +goose NO TRANSACTION
-- +goose Up
-- A customer's events by its id alone: ids are unique across tenants and
-- time-ordered (UUIDv7), so a new account's event goes to the end of this
-- index whatever its tenant, where under (tenant_id, customer_id, seq) it
-- went to a random page of it when sign-ins spread over many tenants. The
-- outbox's order per customer, export and erasure read it the same way.
-- Built CONCURRENTLY, outside a transaction, so that sign-ins keep writing
-- events while it is built on a large table; a build cut short leaves an
-- invalid index, which the first statement drops before building again.
DROP INDEX CONCURRENTLY IF EXISTS events_by_customer;
CREATE INDEX CONCURRENTLY events_by_customer ON events (customer_id, seq);
DROP INDEX CONCURRENTLY IF EXISTS events_customer;
ALTER INDEX events_by_customer RENAME TO events_customer;

-- +goose Down
DROP INDEX CONCURRENTLY IF EXISTS events_by_tenant_customer;
CREATE INDEX CONCURRENTLY events_by_tenant_customer ON events (tenant_id, customer_id, seq);
DROP INDEX CONCURRENTLY IF EXISTS events_customer;
ALTER INDEX events_by_tenant_customer RENAME TO events_customer;
