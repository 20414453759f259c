-- The reputation guard: one row per tenant whose marketing mail was ever
-- paused. While `paused` is 1 the consumer holds the tenant's marketing
-- jobs (they wait on the queue, spending no attempt) and transactional mail
-- goes on. The cron trigger pauses (from the stat_rollups window); only an
-- API call resumes.
CREATE TABLE IF NOT EXISTS reputation_guard (
  tenant TEXT PRIMARY KEY,
  paused INTEGER NOT NULL,         -- 1 while marketing is paused
  reason TEXT,                     -- complaint_rate | hard_bounce_rate
  paused_at INTEGER,               -- Unix milliseconds of the latest pause
  detail TEXT,                     -- JSON: the data of the latest stream.paused
  resumed_at INTEGER,              -- Unix milliseconds of the latest resume
  resumed_by TEXT,                 -- the key that resumed it
  counts_from INTEGER NOT NULL DEFAULT 0  -- Unix seconds: the first hour the guard counts (after the latest resume)
);

-- The guard reads every tenant's window from the rows of all messages
-- (tag '') of recent hours.
CREATE INDEX IF NOT EXISTS stat_rollups_window ON stat_rollups (tag, hour);
