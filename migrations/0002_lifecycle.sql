-- Durable delivery: per-recipient results, scheduling, queue producers and
-- idempotency keys.

-- When the next attempt is due (Unix seconds); NULL once the message is final.
ALTER TABLE messages ADD COLUMN next_attempt_at INTEGER;
-- The queue producer that sent the message, when it came through the queue.
ALTER TABLE messages ADD COLUMN producer_id TEXT;
-- Tags as a JSON object {"name": "value"}, for filtering the message list.
ALTER TABLE messages ADD COLUMN tags TEXT;

CREATE INDEX IF NOT EXISTS messages_key_status_created ON messages (key_id, status, created_at);

-- One row per recipient per message: its state and the upstream's last reply.
-- A recipient in state 'delivered' is never handed to an upstream again.
CREATE TABLE IF NOT EXISTS recipients (
  message_id TEXT NOT NULL,
  address TEXT NOT NULL,
  state TEXT NOT NULL,             -- pending | delivered | deferred | failed | unknown
  attempts INTEGER NOT NULL DEFAULT 0,
  reply_code INTEGER,              -- e.g. 250, 450, 550
  enhanced_code TEXT,              -- e.g. 2.0.0, 4.2.1, 5.1.1
  reply_text TEXT,
  updated_at INTEGER NOT NULL,     -- Unix milliseconds
  PRIMARY KEY (message_id, address)
);

-- Idempotency keys, scoped per API key. The primary key decides races between
-- concurrent duplicates: exactly one INSERT wins.
CREATE TABLE IF NOT EXISTS idempotency_keys (
  key_id TEXT NOT NULL,
  idempotency_key TEXT NOT NULL,
  fingerprint TEXT NOT NULL,       -- hex SHA-256 of the request body
  created_at INTEGER NOT NULL,     -- Unix milliseconds; expires after 24 h
  response_status INTEGER,         -- NULL while the first request is in progress
  response_body TEXT,
  PRIMARY KEY (key_id, idempotency_key)
);
