-- +goose NO TRANSACTION
-- +goose Up
-- The accounts erased, by when: the janitor forgets the challenges a
-- request wrote for an account while it was being erased (bound to it,
-- after the erasure deleted its challenges). Partial: a live account, whose
-- deleted_at is NULL, is never in it, so creating one costs it nothing.
-- Built CONCURRENTLY, as 00012, so that writes go on while it is built.
DROP INDEX CONCURRENTLY IF EXISTS customers_erased;
CREATE INDEX CONCURRENTLY customers_erased ON customers (deleted_at) WHERE deleted_at IS NOT NULL;

-- +goose Down
DROP INDEX CONCURRENTLY IF EXISTS customers_erased;
