-- +goose Up
-- The kid of the key that signed the token that asked for a challenge (a
-- token holder's contact change): the change completes only while that key
-- is a live one of the tenant. Its token's issue time, which whoever holds
-- a leaked key writes, could not tell a change a forged token asked for
-- after the key's retirement (while replicas still had it loaded).
ALTER TABLE challenges ADD COLUMN token_kid text;

-- +goose Down
ALTER TABLE challenges DROP COLUMN token_kid;
