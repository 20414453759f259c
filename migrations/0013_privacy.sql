-- Retention: one row per purge run (the cron trigger's), with what it
-- deleted from each table. It names no address, only counts.
CREATE TABLE IF NOT EXISTS purge_runs (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  at INTEGER NOT NULL,             -- Unix milliseconds
  cutoff INTEGER NOT NULL,         -- Unix ms: records last changed before it were due
  complete INTEGER NOT NULL,       -- 1: nothing due was left; 0: a table met the per-run limit
  deleted TEXT NOT NULL            -- JSON object: table -> rows deleted, and "objects" (bucket)
);
CREATE INDEX IF NOT EXISTS purge_runs_at ON purge_runs (at);

-- What the purge looks for: final messages by when they last changed, and
-- the other tables by age.
CREATE INDEX IF NOT EXISTS messages_status_updated ON messages (status, updated_at);
CREATE INDEX IF NOT EXISTS email_events_created ON email_events (created_at);
CREATE INDEX IF NOT EXISTS webhook_deliveries_created ON webhook_deliveries (created_at);
CREATE INDEX IF NOT EXISTS webhook_attempts_at ON webhook_attempts (at);
CREATE INDEX IF NOT EXISTS webhook_attempts_event ON webhook_attempts (event_id);
CREATE INDEX IF NOT EXISTS webhook_deliveries_event ON webhook_deliveries (event_id);
CREATE INDEX IF NOT EXISTS inbound_reports_received ON inbound_reports (received_at);
CREATE INDEX IF NOT EXISTS suppressions_expires ON suppressions (expires_at);
