//! The words every stage writes about a message: its status and the kinds of
//! event on its timeline.
//!
//! Owns: the stable names stored in D1 and shown by the API (`as_str`,
//! `parse`), and which statuses are final. Must not: decide which status a
//! message has (that is `delivery::recipients::message_status`).

/// A message's status, as stored and shown by the status API.
///
/// `Delivered` means every recipient was accepted by the upstream smarthost
/// (its 250), not that the message reached the mailbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageStatus {
    /// Stored and queued; no attempt has settled yet.
    Queued,
    /// A recipient awaits a retry.
    Deferred,
    /// The upstream accepted it for every recipient.
    Delivered,
    /// Some recipients accepted, the rest failed for good.
    PartiallyDelivered,
    /// Every recipient failed for good, or the message was refused.
    Failed,
    /// The connection died after the data was sent: the upstream may have
    /// it, so it is not sent again.
    Unknown,
    /// Every recipient is on the tenant's suppression list: nothing was sent.
    Suppressed,
    /// Marketing mail of a tenant whose marketing stream the reputation
    /// guard paused: it waits, without spending an attempt, until the stream
    /// is resumed.
    Held,
    /// Asked to go out at a later time (`scheduled_at`): it waits, without
    /// spending an attempt, until it is due (see `accept::schedule`).
    Scheduled,
    /// Canceled while scheduled: nothing was sent.
    Canceled,
}

impl MessageStatus {
    pub const ALL: [MessageStatus; 10] = [
        MessageStatus::Queued,
        MessageStatus::Deferred,
        MessageStatus::Delivered,
        MessageStatus::PartiallyDelivered,
        MessageStatus::Failed,
        MessageStatus::Unknown,
        MessageStatus::Suppressed,
        MessageStatus::Held,
        MessageStatus::Scheduled,
        MessageStatus::Canceled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MessageStatus::Queued => "queued",
            MessageStatus::Deferred => "deferred",
            MessageStatus::Delivered => "delivered",
            MessageStatus::PartiallyDelivered => "partially_delivered",
            MessageStatus::Failed => "failed",
            MessageStatus::Unknown => "unknown",
            MessageStatus::Suppressed => "suppressed",
            MessageStatus::Held => "held",
            MessageStatus::Scheduled => "scheduled",
            MessageStatus::Canceled => "canceled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// No further attempt will be made.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            MessageStatus::Delivered
                | MessageStatus::PartiallyDelivered
                | MessageStatus::Failed
                | MessageStatus::Unknown
                | MessageStatus::Suppressed
                | MessageStatus::Canceled
        )
    }
}

/// One kind of event on a message's timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// Stored and queued.
    Accepted,
    /// An attempt left recipients to retry.
    Deferred,
    /// The upstream accepted the message for every remaining recipient.
    Delivered,
    /// Settled with some recipients accepted and the rest failed for good.
    PartiallyDelivered,
    /// A recipient was refused for good (its reply in the detail).
    Bounced,
    /// The message failed for good.
    Failed,
    /// The outcome after the final dot is unknown.
    Unknown,
    /// A queue message could not become a delivery job.
    Rejected,
    /// The message reached the dead-letter queue.
    DeadLettered,
    /// An immediate delivery's safety job found the message settled.
    SafetyCheck,
    /// A job naming the message was refused as not edgerelay's own (no
    /// valid seal, or not matching the stored message); nothing was sent
    /// and the message's status did not change.
    ForgedJobRefused,
    /// A recipient was held back by the suppression list (the address and
    /// the entry in the detail); it was never sent the message.
    Suppressed,
    /// Something the sender should know about how the message went out
    /// (the detail says what), e.g. unsubscribe links on the worker's host.
    Warning,
    /// A report about a recipient came back after the hand-off (a DSN, a
    /// complaint, or the smarthost provider's event; the detail says
    /// which and what it said). A bounce is recorded as `Bounced`.
    Report,
    /// The message was canceled while scheduled; nothing was sent.
    Canceled,
    /// A scheduled message was given another time (the new one in the
    /// detail).
    Rescheduled,
}

impl EventKind {
    pub const ALL: [EventKind; 16] = [
        EventKind::Accepted,
        EventKind::Deferred,
        EventKind::Delivered,
        EventKind::PartiallyDelivered,
        EventKind::Bounced,
        EventKind::Failed,
        EventKind::Unknown,
        EventKind::Rejected,
        EventKind::DeadLettered,
        EventKind::SafetyCheck,
        EventKind::ForgedJobRefused,
        EventKind::Suppressed,
        EventKind::Warning,
        EventKind::Report,
        EventKind::Canceled,
        EventKind::Rescheduled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Accepted => "accepted",
            EventKind::Deferred => "deferred",
            EventKind::Delivered => "delivered",
            EventKind::PartiallyDelivered => "partially_delivered",
            EventKind::Bounced => "bounced",
            EventKind::Failed => "failed",
            EventKind::Unknown => "unknown",
            EventKind::Rejected => "rejected",
            EventKind::DeadLettered => "dead_lettered",
            EventKind::SafetyCheck => "safety_check",
            EventKind::ForgedJobRefused => "forged_job_refused",
            EventKind::Suppressed => "suppressed",
            EventKind::Warning => "warning",
            EventKind::Report => "report",
            EventKind::Canceled => "canceled",
            EventKind::Rescheduled => "rescheduled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// The event that records a message settling in `status`.
    pub fn settled_as(status: MessageStatus) -> EventKind {
        match status {
            MessageStatus::Queued
            | MessageStatus::Deferred
            | MessageStatus::Held
            | MessageStatus::Scheduled => EventKind::Deferred,
            MessageStatus::Delivered => EventKind::Delivered,
            MessageStatus::PartiallyDelivered => EventKind::PartiallyDelivered,
            MessageStatus::Failed => EventKind::Failed,
            MessageStatus::Unknown => EventKind::Unknown,
            MessageStatus::Suppressed => EventKind::Suppressed,
            MessageStatus::Canceled => EventKind::Canceled,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_distinct() {
        for s in MessageStatus::ALL {
            assert_eq!(MessageStatus::parse(s.as_str()), Some(s));
        }
        for k in EventKind::ALL {
            assert_eq!(EventKind::parse(k.as_str()), Some(k));
        }
        let mut names: Vec<&str> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), EventKind::ALL.len());
        assert_eq!(MessageStatus::parse("sent"), None);
    }

    #[test]
    fn final_statuses() {
        let finals: Vec<&str> = MessageStatus::ALL
            .into_iter()
            .filter(|s| s.is_final())
            .map(MessageStatus::as_str)
            .collect();
        assert_eq!(
            finals,
            [
                "delivered",
                "partially_delivered",
                "failed",
                "unknown",
                "suppressed",
                "canceled"
            ]
        );
    }
}
