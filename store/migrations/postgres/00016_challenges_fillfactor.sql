-- +goose Up
-- Every code attempt updates its challenge (attempts, and consumed_at when
-- it is used up). With the pages of challenges filled to the brim, many of
-- those updates could not stay on their page: each wrote the row anew
-- elsewhere, plus an entry in each of the table's indexes, and the old
-- row's lock. Three tenths of each page left free keeps the update on its page
-- (HOT, no index touched). A code verification that creates its account,
-- 64 at once: 44 -> 80 % of challenge updates HOT, 1,633 -> 1,482 bytes of
-- WAL each; one at a time (store's BenchmarkCodeVerification): 90 -> 100 %,
-- 1,459 -> 1,411 bytes.
-- It applies to pages written from now on; the lock it takes lets reads
-- and writes go on.
ALTER TABLE challenges SET (fillfactor = 70);

-- +goose Down
ALTER TABLE challenges RESET (fillfactor);
