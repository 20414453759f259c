-- Scheduled sending: a message asked to go out later is stored `scheduled`
-- with the Unix second it is due. The row is the truth for the due time: a
-- reschedule changes it, and a queue job that arrives early goes back with
-- the rest of the wait. `next_attempt_at` carries the same time, so the
-- reconciliation sweep looks at a scheduled message only once it is overdue.
ALTER TABLE messages ADD COLUMN scheduled_at INTEGER;
