-- What the smarthost providers' event receivers have already taken.

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

-- Events already applied, by their key (provider, type, the provider's
-- message or event id, recipient: SHA-256 hex), so that a provider that
-- sends a batch again (it retries any answer but 2xx) does not emit an
-- event twice. Kept for a few days, longer than providers retry.
CREATE TABLE IF NOT EXISTS provider_events_seen (
  endpoint TEXT NOT NULL,
  event_key TEXT NOT NULL,
  seen_at INTEGER NOT NULL,        -- Unix milliseconds
  PRIMARY KEY (endpoint, event_key)
);
CREATE INDEX IF NOT EXISTS provider_events_seen_at ON provider_events_seen (seen_at);
