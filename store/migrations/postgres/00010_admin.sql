-- +goose Up
-- Tenants managed at runtime: by the admin API, `customerd tenants apply`, and
-- the config file's tenants at start. settings is the tenant's YAML block as
-- JSON without its secrets; secrets holds them, sealed with CUSTOMERD_SECRET.
CREATE TABLE tenants (
    id         text        PRIMARY KEY,
    settings   text        NOT NULL,
    secrets    bytea       NOT NULL,
    version    bigint      NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);

-- Admin API keys: only a SHA-256 of each key is kept; scope is '*' or a JSON
-- array of tenant ids.
CREATE TABLE admin_keys (
    id         text        PRIMARY KEY,
    hash       text        NOT NULL,
    scope      text        NOT NULL,
    name       text        NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL,
    revoked_at timestamptz
);

-- Every admin write: who (key id), on which tenant, what, on what, when, in which request.
CREATE TABLE audit_log (
    seq        bigserial   PRIMARY KEY,
    at         timestamptz NOT NULL,
    key_id     text        NOT NULL,
    tenant_id  text        NOT NULL DEFAULT '',
    action     text        NOT NULL,
    target     text        NOT NULL DEFAULT '',
    request_id text        NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_tenant ON audit_log (tenant_id, seq);

-- Tokens issued before sessions_revoked_at no longer open the account.
ALTER TABLE customers ADD COLUMN sessions_revoked_at timestamptz;
-- The admin API lists a tenant's customers by update time.
CREATE INDEX customers_tenant_updated ON customers (tenant_id, updated_at, id);

-- +goose Down
DROP INDEX customers_tenant_updated;
ALTER TABLE customers DROP COLUMN sessions_revoked_at;
DROP TABLE audit_log;
DROP TABLE admin_keys;
DROP TABLE tenants;
