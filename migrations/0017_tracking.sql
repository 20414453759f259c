-- Open and click tracking: aggregate counts.
--
-- Every valid hit on a tracking link or pixel adds one here, whether or not
-- the recipient consented to per-recipient tracking (and in aggregate mode,
-- where no token names a recipient). Nothing in a row ties it to a person:
-- the tenant, the hour, the stream, what happened and whether a machine did
-- it. Hits whose token names a consenting recipient also become
-- email.opened / email.clicked rows of email_events (per_recipient = 1 here);
-- the statistics read these counts for totals and the events for uniques.
CREATE TABLE IF NOT EXISTS tracking_counts (
  tenant TEXT NOT NULL,
  hour INTEGER NOT NULL,           -- Unix seconds of the hour's start (UTC)
  stream TEXT NOT NULL,            -- transactional | marketing | a key's named stream
  type TEXT NOT NULL,              -- email.opened | email.clicked
  machine INTEGER NOT NULL,        -- 1: Apple's proxy, a prefetch, a scanner, a HEAD, an instant click
  per_recipient INTEGER NOT NULL,  -- 1: the hit also made a per-recipient event
  count INTEGER NOT NULL,
  PRIMARY KEY (tenant, hour, stream, type, machine, per_recipient)
);
