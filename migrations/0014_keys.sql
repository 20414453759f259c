-- Keys as data: API keys created through /v1/keys, beside the API_KEYS
-- secret. Only the key's SHA-256 is kept, never the key itself; `prefix` is
-- its first 8 characters, for people to tell keys apart.
CREATE TABLE IF NOT EXISTS api_keys (
  id TEXT PRIMARY KEY,                  -- key_...: never an id of API_KEYS
  tenant TEXT NOT NULL,
  name TEXT NOT NULL,
  sha256 TEXT NOT NULL UNIQUE,          -- lower-case hex SHA-256 of the key
  prefix TEXT NOT NULL,                 -- the key's first 8 characters
  scopes TEXT NOT NULL,                 -- JSON list: send, read, admin
  domains TEXT NOT NULL,                -- JSON list of sender domains
  streams TEXT NOT NULL,                -- JSON object: named stream -> kind
  unsubscribe_base_url TEXT,
  limits TEXT NOT NULL,                 -- JSON {per_second?, per_day?}
  created_at INTEGER NOT NULL,          -- Unix ms
  created_by TEXT NOT NULL,             -- the id of the admin key that created it
  revoked_at INTEGER,                   -- Unix ms; refused from then on
  rotated_from TEXT                     -- the key this one replaced, if any
);
CREATE INDEX IF NOT EXISTS api_keys_tenant ON api_keys (tenant, created_at);
