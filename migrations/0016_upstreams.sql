-- Upstreams in view (GET /v1/upstreams): when a pause began, totals per
-- upstream, and the latest sessions of each. One write per SMTP session
-- (one D1 batch), never per message. No addresses, messages or credentials:
-- codes, counts and times only.
ALTER TABLE upstream_health ADD COLUMN paused_since_ms INTEGER;  -- Unix ms; NULL unless paused
ALTER TABLE upstream_health ADD COLUMN sessions INTEGER NOT NULL DEFAULT 0;
ALTER TABLE upstream_health ADD COLUMN sessions_failed INTEGER NOT NULL DEFAULT 0;
ALTER TABLE upstream_health ADD COLUMN messages_sent INTEGER NOT NULL DEFAULT 0;
ALTER TABLE upstream_health ADD COLUMN session_ms_total INTEGER NOT NULL DEFAULT 0;

-- The latest sessions of each upstream (host:port); older rows are deleted
-- in the same batch that adds one (delivery::upstream_sessions::RECENT_SESSIONS).
CREATE TABLE IF NOT EXISTS upstream_sessions (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  upstream TEXT NOT NULL,
  at_ms INTEGER NOT NULL,           -- when the session began, Unix ms
  outcome TEXT NOT NULL,            -- ok, transient, permanent, configuration, connect
  reply_code INTEGER,               -- the deciding SMTP reply code, if any
  messages_sent INTEGER NOT NULL,
  duration_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS upstream_sessions_by_upstream ON upstream_sessions (upstream, id);
