-- Statistics rollups: one counter per tenant, tag, UTC hour, stream and
-- metric, moved in the same batch as the event (or acceptance) it counts.
-- `tag` is '' for the row of all messages, else `name:value`. Reports
-- read this table only, never email_events.
CREATE TABLE IF NOT EXISTS stat_rollups (
  tenant TEXT NOT NULL,
  tag TEXT NOT NULL,
  hour INTEGER NOT NULL,           -- Unix seconds of the hour's start
  stream TEXT NOT NULL,
  metric TEXT NOT NULL,
  count INTEGER NOT NULL,
  PRIMARY KEY (tenant, tag, hour, stream, metric)
) WITHOUT ROWID;
