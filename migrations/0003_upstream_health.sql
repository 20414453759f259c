-- Upstream health: one row per upstream (host:port), shared by every
-- consumer invocation, so an upstream that keeps failing is skipped
-- everywhere during its cool-down.
CREATE TABLE IF NOT EXISTS upstream_health (
  upstream TEXT PRIMARY KEY,        -- host:port, never credentials
  consecutive_failures INTEGER NOT NULL DEFAULT 0,
  skip_until_ms INTEGER NOT NULL DEFAULT 0,  -- Unix milliseconds; 0 = not cooling down
  paused_reason TEXT,               -- set after a configuration failure (e.g. 535)
  updated_at_ms INTEGER NOT NULL
);
