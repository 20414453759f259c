-- Immediate delivery: while a request delivers its own message, it holds a
-- lease on it. The message's safety job (enqueued before the attempt) waits
-- while the lease is held, so the two never send at the same time. The row is
-- deleted when the request has recorded its outcome; an expired lease means
-- the request died and the safety job takes over.
CREATE TABLE IF NOT EXISTS immediate_leases (
  message_id TEXT PRIMARY KEY,
  until INTEGER NOT NULL           -- Unix milliseconds
);
