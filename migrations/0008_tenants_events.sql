-- Tenants, streams and the event stream.
--
-- Reputation belongs to a sender, not to a key: every message records its
-- tenant (the sending key's `tenant`, or the key's id), and the tenant's keys
-- share its messages, events and suppressions.

-- NULL on rows written before this migration: read as key_id.
ALTER TABLE messages ADD COLUMN tenant TEXT;
-- The message stream: NULL or 'transactional', 'marketing', or a key's named stream.
ALTER TABLE messages ADD COLUMN stream TEXT;
-- The Subject header, for event payloads and the status API.
ALTER TABLE messages ADD COLUMN subject TEXT;

CREATE INDEX IF NOT EXISTS messages_tenant_created ON messages (tenant, created_at);
CREATE INDEX IF NOT EXISTS messages_tenant_status_created ON messages (tenant, status, created_at);

-- The event stream: what webhooks deliver and the status API lists, one row
-- per event. `payload` is the JSON text exactly as delivered.
CREATE TABLE IF NOT EXISTS email_events (
  id TEXT PRIMARY KEY,             -- evt_...
  tenant TEXT NOT NULL,
  message_id TEXT NOT NULL,
  recipient TEXT,                  -- NULL for an event about the whole message
  type TEXT NOT NULL,              -- email.sent | email.delivered | ...
  created_at INTEGER NOT NULL,     -- Unix milliseconds
  payload TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS email_events_message ON email_events (message_id, created_at);
CREATE INDEX IF NOT EXISTS email_events_tenant ON email_events (tenant, created_at);

-- The suppression list, per tenant. An entry keeps an address from being
-- handed to any upstream for messages in its scope.
CREATE TABLE IF NOT EXISTS suppressions (
  tenant TEXT NOT NULL,
  address TEXT NOT NULL,           -- lower-cased
  scope TEXT NOT NULL,             -- 'all' | 'stream:<name>' | 'topic:<name>'
  reason TEXT NOT NULL,            -- hard_bounce | complaint | unsubscribe | manual
  message_id TEXT,                 -- the message that caused it, if any
  detail TEXT,
  created_at INTEGER NOT NULL,     -- Unix milliseconds
  expires_at INTEGER,              -- Unix milliseconds; NULL = never
  PRIMARY KEY (tenant, address, scope)
);
CREATE INDEX IF NOT EXISTS suppressions_tenant_created ON suppressions (tenant, created_at);

-- Messages from before tenants belong to the tenant their key had by default.
UPDATE messages SET tenant = key_id WHERE tenant IS NULL;
