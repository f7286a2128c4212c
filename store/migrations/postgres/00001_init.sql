-- +goose Up
CREATE TABLE customers (
    id             text        PRIMARY KEY,
    tenant_id      text        NOT NULL,
    email          text,
    phone          text,
    email_verified boolean     NOT NULL DEFAULT false,
    phone_verified boolean     NOT NULL DEFAULT false,
    profile        jsonb       NOT NULL DEFAULT '{}',
    version        bigint      NOT NULL DEFAULT 1,
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL,
    deleted_at     timestamptz
);
-- One live account per identifier and tenant; a deleted account frees its identifiers.
CREATE UNIQUE INDEX customers_tenant_email ON customers (tenant_id, email) WHERE email IS NOT NULL AND deleted_at IS NULL;
CREATE UNIQUE INDEX customers_tenant_phone ON customers (tenant_id, phone) WHERE phone IS NOT NULL AND deleted_at IS NULL;

CREATE TABLE identities (
    tenant_id   text        NOT NULL,
    provider    text        NOT NULL,
    subject     text        NOT NULL,
    customer_id text        NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, provider, subject)
);
CREATE INDEX identities_customer ON identities (customer_id);

CREATE TABLE challenges (
    id           text        PRIMARY KEY,
    tenant_id    text        NOT NULL,
    channel      text        NOT NULL,
    destination  text        NOT NULL,
    customer_id  text,
    code_hash    text        NOT NULL,
    attempts     integer     NOT NULL DEFAULT 0,
    max_attempts integer     NOT NULL,
    expires_at   timestamptz NOT NULL,
    consumed_at  timestamptz,
    created_at   timestamptz NOT NULL
);
CREATE INDEX challenges_expires_at ON challenges (expires_at);

-- A throttle lets one action per key through per interval, across replicas.
CREATE TABLE throttles (
    tenant_id text        NOT NULL,
    key       text        NOT NULL,
    last_at   timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, key)
);

-- Counters per key and UTC day (failed codes per account and day).
CREATE TABLE counters (
    tenant_id text    NOT NULL,
    key       text    NOT NULL,
    day       text    NOT NULL,
    count     integer NOT NULL,
    PRIMARY KEY (tenant_id, key, day)
);

CREATE TABLE signing_keys (
    tenant_id   text        NOT NULL,
    kid         text        NOT NULL,
    alg         text        NOT NULL,
    private_key bytea       NOT NULL,
    public_jwk  text        NOT NULL,
    created_at  timestamptz NOT NULL,
    retired_at  timestamptz,
    PRIMARY KEY (tenant_id, kid)
);

-- +goose Down
DROP TABLE signing_keys;
DROP TABLE counters;
DROP TABLE throttles;
DROP TABLE challenges;
DROP TABLE identities;
DROP TABLE customers;
