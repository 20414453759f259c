-- Webhooks: each tenant's endpoints, one delivery row per event and endpoint
-- (written in the same batch as the event, so no event is lost between its
-- record and its queue message), and every attempt made.

CREATE TABLE IF NOT EXISTS webhook_endpoints (
  id TEXT PRIMARY KEY,                  -- wh_...
  tenant TEXT NOT NULL,
  url TEXT NOT NULL,
  description TEXT,
  events TEXT NOT NULL,                 -- JSON list of event types; [] = every type
  secret TEXT NOT NULL,                 -- whsec_...: signs every delivery
  previous_secret TEXT,                 -- the one a rotation replaced...
  previous_secret_expires_at INTEGER,   -- ...signing beside it until then (Unix ms)
  status TEXT NOT NULL,                 -- enabled | disabled
  disabled_reason TEXT,
  created_at INTEGER NOT NULL,          -- Unix ms
  updated_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS webhook_endpoints_tenant ON webhook_endpoints (tenant, created_at);

CREATE TABLE IF NOT EXISTS webhook_deliveries (
  endpoint_id TEXT NOT NULL,
  event_id TEXT NOT NULL,
  tenant TEXT NOT NULL,
  event_type TEXT NOT NULL,
  payload TEXT NOT NULL,                -- the body as sent and signed
  state TEXT NOT NULL,                  -- pending | queued | delivered | failed | endpoint_disabled
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER,              -- Unix ms, while queued
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (endpoint_id, event_id)
);
CREATE INDEX IF NOT EXISTS webhook_deliveries_due ON webhook_deliveries (state, next_attempt_at);

CREATE TABLE IF NOT EXISTS webhook_attempts (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  endpoint_id TEXT NOT NULL,
  tenant TEXT NOT NULL,
  event_id TEXT NOT NULL,
  event_type TEXT NOT NULL,
  attempt INTEGER NOT NULL,             -- 1 for the first
  at INTEGER NOT NULL,                  -- Unix ms
  status_code INTEGER,                  -- the receiver's answer, if any
  outcome TEXT NOT NULL,                -- delivered | retrying | failed | endpoint_disabled
  error TEXT,
  duration_ms INTEGER,
  next_attempt_at INTEGER               -- Unix ms, when retrying
);
CREATE INDEX IF NOT EXISTS webhook_attempts_endpoint ON webhook_attempts (endpoint_id, seq);
