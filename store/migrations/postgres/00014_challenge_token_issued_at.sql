-- +goose Up
-- The issue time of the token that asked for a challenge (a token holder's
-- contact change): the change dies with that token when the account's
-- sessions are revoked, whenever the challenge itself was written (a
-- request let in just before a revocation wrote it just after).
ALTER TABLE challenges ADD COLUMN token_issued_at timestamptz;

-- +goose Down
ALTER TABLE challenges DROP COLUMN token_issued_at;
