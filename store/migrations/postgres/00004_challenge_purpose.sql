-- +goose Up
-- What a challenge is for (signin, checkin, flow, contact): completing it
-- does that and nothing else, for the account and held change it names.
ALTER TABLE challenges ADD COLUMN purpose text NOT NULL DEFAULT 'signin';
-- The live challenges of a destination: the resend check and {email, code}.
CREATE INDEX challenges_destination ON challenges (tenant_id, destination, created_at);

-- +goose Down
DROP INDEX challenges_destination;
ALTER TABLE challenges DROP COLUMN purpose;
