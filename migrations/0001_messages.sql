-- Message lifecycle: one row per accepted message, one row per event.
CREATE TABLE IF NOT EXISTS messages (
  id TEXT PRIMARY KEY,
  key_id TEXT NOT NULL,
  mail_from TEXT NOT NULL,
  rcpt_to TEXT NOT NULL,           -- JSON list
  status TEXT NOT NULL,            -- queued | deferred | delivered | failed | unknown
  attempts INTEGER NOT NULL DEFAULT 0,
  last_error TEXT,
  created_at INTEGER NOT NULL,     -- Unix seconds
  updated_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_key_created ON messages (key_id, created_at);

CREATE TABLE IF NOT EXISTS events (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  message_id TEXT NOT NULL,
  at INTEGER NOT NULL,             -- Unix milliseconds
  kind TEXT NOT NULL,              -- accepted | deferred | delivered | failed | unknown | dead_lettered
  detail TEXT
);
CREATE INDEX IF NOT EXISTS events_message ON events (message_id, seq);
