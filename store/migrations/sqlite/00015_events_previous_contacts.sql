-- +goose Up
-- The accounts a contact left, by the contact: a Customer:ContactChanged
-- names the contacts the account had before (its "previous"), and an
-- erasure finds there, by index, the other accounts whose events carry an
-- address of the erased customer (one it proved after it sat unverified on
-- them), to take it out of those events too. Partial: contact changes are
-- a small part of the events, and no other event is parsed to write it.
CREATE INDEX events_previous_email ON events (tenant_id, json_extract(payload, '$.previous.email'))
    WHERE type = 'Customer:ContactChanged';
CREATE INDEX events_previous_phone ON events (tenant_id, json_extract(payload, '$.previous.phoneNumber'))
    WHERE type = 'Customer:ContactChanged';

-- +goose Down
DROP INDEX events_previous_phone;
DROP INDEX events_previous_email;
