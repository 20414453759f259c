-- Mail that comes back: delivery reports, complaints and the smarthost
-- providers' events, each kept with what it changed or why it changed
-- nothing.

-- What an event about a message says of it after its job is gone: the From
-- address (the return path may be a VERP address), topic and metadata.
ALTER TABLE messages ADD COLUMN sender TEXT;
ALTER TABLE messages ADD COLUMN topic TEXT;
ALTER TABLE messages ADD COLUMN metadata TEXT;  -- JSON object, or NULL

CREATE TABLE IF NOT EXISTS inbound_reports (
  id TEXT PRIMARY KEY,             -- rpt_...
  received_at INTEGER NOT NULL,    -- Unix milliseconds
  source TEXT NOT NULL,            -- email | mailgun | sendgrid | postmark | ses
  kind TEXT NOT NULL,              -- dsn | arf | provider_event | unreadable | other
  verdict TEXT NOT NULL,           -- applied | duplicate | unmatched | unreadable | rejected | forwarded
  reason TEXT,                     -- why it changed nothing, or what it changed
  tenant TEXT,                     -- the matched message's tenant, or the endpoint's
  domain TEXT,                     -- the sender domain the mail came back for (email)
  message_id TEXT,                 -- the message it names (signed or not)
  recipient TEXT,
  events TEXT,                     -- JSON list of the email.* types it produced
  mail_from TEXT,                  -- envelope sender, as received
  rcpt_to TEXT,                    -- envelope recipient, as received
  subject TEXT,
  size INTEGER NOT NULL,
  body_key TEXT                    -- the raw report in the bucket, when kept
);
CREATE INDEX IF NOT EXISTS inbound_reports_tenant ON inbound_reports (tenant, received_at);
CREATE INDEX IF NOT EXISTS inbound_reports_domain ON inbound_reports (domain, received_at);
CREATE INDEX IF NOT EXISTS inbound_reports_message ON inbound_reports (message_id);
