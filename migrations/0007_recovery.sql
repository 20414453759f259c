-- Never lost: every accepted message keeps the job that delivers it until it
-- is final, and one delivery at a time holds its lease.

-- The delivery job as JSON (the queue body's job: the signed MIME when small,
-- the body's key in the bucket when large); NULL once the message is final.
-- The reconciliation sweep re-enqueues it when the queue message was lost.
ALTER TABLE messages ADD COLUMN job TEXT;

-- The sweep looks for messages not final whose next step is overdue.
CREATE INDEX IF NOT EXISTS messages_status_due
  ON messages (status, next_attempt_at, created_at);

-- immediate_leases now holds every delivery's lease: an immediate request's
-- (holder NULL), and a queue consumer's (holder = the invocation's token).
-- A lease is taken with a conditional write only one holder can win, and
-- released only by its holder.
ALTER TABLE immediate_leases ADD COLUMN holder TEXT;
