-- Mailgun signs a timestamp and a one-time token, not the event: a token
-- seen once is refused while its signature would still be fresh, so a
-- captured request cannot be replayed with other event data.

CREATE TABLE IF NOT EXISTS provider_tokens (
  endpoint TEXT NOT NULL,          -- the PROVIDER_WEBHOOKS id it arrived at
  token TEXT NOT NULL,             -- the signed token, as sent (at most 256 characters)
  seen_at INTEGER NOT NULL,        -- Unix milliseconds
  PRIMARY KEY (endpoint, token)
);
CREATE INDEX IF NOT EXISTS provider_tokens_seen ON provider_tokens (seen_at);
