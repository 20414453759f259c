-- Key rotation of domains added through /v1/domains (see
-- src/http/domains/rotation.rs): the generation that signs, the one a
-- rotation made and is waiting for its records, and the one rotated out
-- with when (its record stays published for DOMAIN_KEY_GRACE_HOURS).
ALTER TABLE domains ADD COLUMN signing_generation INTEGER NOT NULL DEFAULT 1;
ALTER TABLE domains ADD COLUMN next_generation INTEGER;
ALTER TABLE domains ADD COLUMN previous_generation INTEGER;
ALTER TABLE domains ADD COLUMN switched_at INTEGER;          -- Unix ms
-- The cron re-verification reads the oldest check first.
CREATE INDEX IF NOT EXISTS domains_checked ON domains (checked_at);
