//! Scheduled sending: when a message asked to go out later is due, and what
//! a queue message of a scheduled message does when it arrives.
//!
//! A send request may name `scheduled_at`: an RFC 3339 / ISO 8601 time with
//! an offset (`2026-12-01T09:00:00Z`, `2026-12-01T09:00:00+02:00`), a
//! relative time (`in 10 minutes`, `in 1 hour`, `in 2 days`), or a number of
//! Unix seconds (SendGrid's `send_at`). Anything without a defined time zone
//! (`tomorrow at 9am`, `2026-12-01T09:00:00`) is refused, naming the forms
//! that are taken: a guess at the sender's zone would send at the wrong hour.
//! A time at most [`MAX_AHEAD_SECONDS`] ahead is taken; a time that is not
//! in the future (the past, or now) means "send now", as SendGrid does with a
//! past `send_at`, so a request built a moment before it reached edgerelay
//! still goes out.
//!
//! The durable timer: a queue message waits at most [`QUEUE_MAX_DELAY`]
//! (12 hours), so the job is enqueued with `min(due - now, 12 h)` and a job
//! that arrives before its message is due goes back with the rest of the
//! wait ([`arrival`]), spending no attempt. The message row is the truth for
//! the due time: a reschedule changes the row, and a job that arrives for an
//! older time goes back or on by what the row says now. At the due time the
//! consumer claims the message with a conditional write (`scheduled` to
//! `queued` only while it is still `scheduled`); a cancel is the mirror
//! conditional write, so exactly one of them wins.
//!
//! Owns: the accepted forms, the 30-day horizon, the queue delay and the
//! arrival verdict. Must not: read the clock or perform I/O; the edge passes
//! the time in and carries out the verdict.

use serde::Deserialize;

use crate::accept::error::ApiError;
use crate::message::request::ScheduledAt;
use crate::queue::MessageStatus;

/// The furthest ahead a message may be scheduled: 30 days.
pub const MAX_AHEAD_SECONDS: u64 = 30 * 86_400;

/// The longest a queue message may be delayed (Cloudflare Queues: 12 h).
pub const QUEUE_MAX_DELAY: u32 = 43_200;

/// The rule a refused schedule is named by.
pub const INVALID_SCHEDULE: &str = "invalid_schedule";

/// What is accepted, as an error lists it.
pub const ACCEPTED_FORMS: &str = "an ISO 8601 time with an offset (2026-12-01T09:00:00Z or 2026-12-01T09:00:00+02:00), a relative time (\"in 10 minutes\", \"in 1 hour\", \"in 2 days\"), or Unix seconds; at most 30 days ahead";

/// A schedule as a request gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When<'a> {
    Text(&'a str),
    Unix(i64),
}

impl<'a> From<&'a ScheduledAt> for When<'a> {
    fn from(at: &'a ScheduledAt) -> When<'a> {
        match at {
            ScheduledAt::Unix(n) => When::Unix(*n),
            ScheduledAt::Text(t) => When::Text(t),
        }
    }
}

/// A reschedule's body, `{"scheduled_at": ...}` (`PATCH /v1/messages/{id}`
/// and Resend's `PATCH /emails/{id}`).
pub fn reschedule_body(body: &[u8]) -> Result<ScheduledAt, ApiError> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Body {
        scheduled_at: Option<ScheduledAt>,
    }
    let parsed: Body = serde_json::from_slice(body).map_err(|e| {
        if e.is_data() {
            ApiError::invalid_field(
                "scheduled_at",
                INVALID_SCHEDULE,
                format!("{e}; accepted: {ACCEPTED_FORMS}"),
            )
        } else {
            ApiError::malformed(format!("the body is not JSON: {e}"))
        }
    })?;
    parsed.scheduled_at.ok_or_else(|| {
        ApiError::invalid_field(
            "scheduled_at",
            "required",
            format!("a reschedule names the new `scheduled_at`: {ACCEPTED_FORMS}"),
        )
    })
}

/// When a message is due: `None` to send now (no time, or a time not in
/// the future), else the Unix second it is due. `field` names the field in
/// an error (`scheduled_at`, `send_at`, `personalizations[0].send_at`).
pub fn due(when: Option<When<'_>>, field: &str, now_unix: u64) -> Result<Option<u64>, ApiError> {
    let Some(when) = when else {
        return Ok(None);
    };
    let refuse = |why: &str| {
        ApiError::invalid_field(
            field,
            INVALID_SCHEDULE,
            format!("{field} {why}; accepted: {ACCEPTED_FORMS}"),
        )
    };
    let at = match when {
        When::Unix(n) => u64::try_from(n).map_err(|_| refuse("is a negative Unix time"))?,
        When::Text(text) => parse(text.trim(), now_unix).ok_or_else(|| {
            refuse("is not a time with a defined time zone (a relative time, or an ISO 8601 time with Z or an offset)")
        })?,
    };
    if at <= now_unix {
        return Ok(None);
    }
    if at - now_unix > MAX_AHEAD_SECONDS {
        return Err(refuse("is more than 30 days ahead"));
    }
    Ok(Some(at))
}

/// A text time in Unix seconds (rounded up: never early), if it is one of
/// the accepted forms.
fn parse(text: &str, now_unix: u64) -> Option<u64> {
    let text = text.to_ascii_lowercase();
    if let Some(rest) = text.strip_prefix("in ") {
        return relative(rest, now_unix);
    }
    iso(&text)
}

/// `N unit` (after "in "): seconds, minutes, hours, days or weeks.
fn relative(text: &str, now_unix: u64) -> Option<u64> {
    let text = text.trim();
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 || digits > 7 {
        return None;
    }
    let n: u64 = text.get(..digits)?.parse().ok()?;
    let seconds = match text.get(digits..)?.trim() {
        "s" | "sec" | "secs" | "second" | "seconds" => 1,
        "m" | "min" | "mins" | "minute" | "minutes" => 60,
        "h" | "hr" | "hrs" | "hour" | "hours" => 3600,
        "d" | "day" | "days" => 86_400,
        "w" | "week" | "weeks" => 7 * 86_400,
        _ => return None,
    };
    now_unix.checked_add(n.checked_mul(seconds)?)
}

/// `YYYY-MM-DD(T| )HH:MM[:SS[.fff]](Z|±HH:MM|±HHMM)`.
fn iso(text: &str) -> Option<u64> {
    let bytes = text.as_bytes();
    if bytes.len() < 17 || !matches!(bytes.get(10), Some(b't' | b' ')) {
        return None;
    }
    let num = |s: &str| -> Option<u64> {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let date = text.get(..10)?;
    let rest = text.get(11..)?;
    let (day, _) = crate::events::time::parse_instant(date)?;
    // The time ends where its zone starts.
    let zone_at = rest.find(['z', '+', '-'])?;
    let (time, zone) = rest.split_at(zone_at);
    let (clock, fraction) = match time.split_once('.') {
        Some((c, f)) => (c, Some(f)),
        None => (time, None),
    };
    let mut parts = clock.split(':');
    let (h, mi) = (num(parts.next()?)?, num(parts.next()?)?);
    let s = parts.next().map_or(Some(0), num)?;
    if parts.next().is_some() || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let mut at = day + h * 3600 + mi * 60 + s.min(59);
    if let Some(f) = fraction {
        num(f)?;
        if f.bytes().any(|b| b != b'0') {
            at += 1;
        }
    }
    let offset: i64 = match zone {
        "z" => 0,
        _ => {
            let sign = if zone.starts_with('-') { -1 } else { 1 };
            let digits = zone.get(1..)?.replace(':', "");
            if digits.len() != 4 {
                return None;
            }
            let (oh, om) = (num(digits.get(..2)?)?, num(digits.get(2..)?)?);
            if oh > 23 || om > 59 {
                return None;
            }
            sign * (oh * 3600 + om * 60) as i64
        }
    };
    u64::try_from(i64::try_from(at).ok()?.checked_sub(offset)?).ok()
}

/// The delay of the queue message that waits for a message due at `due`
/// (Unix seconds): the rest of the wait, at most [`QUEUE_MAX_DELAY`].
pub fn queue_delay(due: u64, now_ms: u64) -> u32 {
    let left = (due * 1000).saturating_sub(now_ms).div_ceil(1000);
    left.min(u64::from(QUEUE_MAX_DELAY)) as u32
}

/// What a job of a message does when it arrives, by its message's row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// Not a scheduled message (or no longer one): on to delivery as usual.
    Deliver,
    /// Scheduled and due: claim it (`scheduled` -> `queued`, only while it
    /// is still `scheduled`); the job delivers only if the claim wins.
    Claim,
    /// Scheduled and not due yet: back on the queue after this delay,
    /// spending no attempt.
    Wait { delay_seconds: u32 },
    /// Canceled: acknowledge, send nothing.
    Drop,
}

/// The verdict for a job whose message's row says `status`, due at `due`
/// (Unix seconds, the row's `scheduled_at`), at `now_ms`.
pub fn arrival(status: Option<MessageStatus>, due: Option<u64>, now_ms: u64) -> Arrival {
    match status {
        Some(MessageStatus::Canceled) => Arrival::Drop,
        Some(MessageStatus::Scheduled) => match due {
            Some(due) if due * 1000 > now_ms => Arrival::Wait {
                delay_seconds: queue_delay(due, now_ms).max(1),
            },
            _ => Arrival::Claim,
        },
        _ => Arrival::Deliver,
    }
}

/// Why a cancel or reschedule is refused when the message is in `status`.
pub fn not_scheduled(status: MessageStatus, action: &str) -> ApiError {
    ApiError::conflict(
        "not_scheduled",
        "status",
        format!(
            "only a scheduled message can be {action}; this one is {}",
            status.as_str()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-11-30T10:00:00Z.
    const NOW: u64 = 1_796_032_800;

    #[test]
    fn forms_table() {
        let table: &[(&str, Option<u64>)] = &[
            ("in 10 minutes", Some(NOW + 600)),
            ("in 1 minute", Some(NOW + 60)),
            ("in 1 min", Some(NOW + 60)),
            ("in 5 seconds", Some(NOW + 5)),
            ("in 1 hour", Some(NOW + 3600)),
            ("in 3 hrs", Some(NOW + 3 * 3600)),
            ("in 2 days", Some(NOW + 2 * 86_400)),
            ("in 2 weeks", Some(NOW + 14 * 86_400)),
            ("In 1 Hour", Some(NOW + 3600)),
            ("  in 1 hour  ", Some(NOW + 3600)),
            ("2026-11-30T11:00:00Z", Some(NOW + 3600)),
            ("2026-11-30t11:00:00z", Some(NOW + 3600)),
            ("2026-11-30 11:00:00Z", Some(NOW + 3600)),
            ("2026-11-30T11:00Z", Some(NOW + 3600)),
            ("2026-11-30T13:00:00+02:00", Some(NOW + 3600)),
            ("2026-11-30T13:00:00+0200", Some(NOW + 3600)),
            ("2026-11-30T06:30:00-04:30", Some(NOW + 3600)),
            // A fraction rounds up: never early.
            ("2026-11-30T11:00:00.250Z", Some(NOW + 3601)),
            ("2026-11-30T11:00:00.000Z", Some(NOW + 3600)),
            // The past and now mean "send now".
            ("2026-11-30T09:00:00Z", None),
            ("2026-11-30T10:00:00Z", None),
        ];
        for (text, want) in table {
            let got = due(Some(When::Text(text)), "scheduled_at", NOW);
            assert_eq!(got.ok(), Some(*want), "{text}");
        }
    }

    #[test]
    fn forms_without_a_zone_are_refused_naming_the_field_and_the_forms() {
        for text in [
            "tomorrow at 9am",
            "2026-12-01T09:00:00",
            "2026-12-01",
            "2026-12-01T09:00",
            "next friday",
            "in an hour",
            "in 1 fortnight",
            "in -1 hours",
            "in 1.5 hours",
            "2026-12-01T25:00:00Z",
            "2026-12-01T09:00:00+25:00",
            "2026-12-01T09:00:00+02",
            "2026-02-30T09:00:00Z",
            "1796032800",
            "",
            "in 99999999 days",
        ] {
            let e = due(Some(When::Text(text)), "scheduled_at", NOW).expect_err(text);
            let f = e.fields();
            assert_eq!(f.status, 422, "{text}");
            assert_eq!(e.details[0].rule, INVALID_SCHEDULE, "{text}");
            assert_eq!(f.field, Some("scheduled_at"), "{text}");
            assert!(f.message.contains("in 10 minutes"), "{text}");
            assert!(f.message.contains("offset"), "{text}");
        }
    }

    #[test]
    fn thirty_days_is_the_horizon() {
        let ok = due(
            Some(When::Unix((NOW + MAX_AHEAD_SECONDS) as i64)),
            "send_at",
            NOW,
        );
        assert_eq!(ok.ok(), Some(Some(NOW + MAX_AHEAD_SECONDS)));
        for when in [
            When::Unix((NOW + MAX_AHEAD_SECONDS + 1) as i64),
            When::Text("in 31 days"),
            When::Text("2026-12-31T10:00:01Z"),
            When::Unix(-1),
        ] {
            let e = due(Some(when), "send_at", NOW).expect_err("refused");
            assert_eq!(e.fields().field, Some("send_at"), "{when:?}");
        }
        assert_eq!(due(None, "send_at", NOW).ok(), Some(None));
        assert_eq!(due(Some(When::Unix(0)), "send_at", NOW).ok(), Some(None));
    }

    #[test]
    fn queue_delay_is_the_rest_of_the_wait_capped_at_twelve_hours() {
        let ms = NOW * 1000;
        assert_eq!(queue_delay(NOW + 10, ms), 10);
        assert_eq!(queue_delay(NOW + 10, ms + 1), 10);
        assert_eq!(queue_delay(NOW + 10, ms + 9_001), 1);
        assert_eq!(queue_delay(NOW, ms + 5), 0);
        assert_eq!(queue_delay(NOW + 86_400, ms), QUEUE_MAX_DELAY);
        assert_eq!(queue_delay(NOW + 43_200, ms), QUEUE_MAX_DELAY);
    }

    #[test]
    fn arrival_table() {
        use MessageStatus::*;
        let ms = NOW * 1000;
        let table: &[(Option<MessageStatus>, Option<u64>, u64, Arrival)] = &[
            (
                Some(Scheduled),
                Some(NOW + 60),
                ms,
                Arrival::Wait { delay_seconds: 60 },
            ),
            // Rescheduled past the 12-hour hop: another hop.
            (
                Some(Scheduled),
                Some(NOW + 3 * 86_400),
                ms,
                Arrival::Wait {
                    delay_seconds: QUEUE_MAX_DELAY,
                },
            ),
            // Less than a second early: waits a whole second, never sends early.
            (
                Some(Scheduled),
                Some(NOW + 1),
                ms + 999,
                Arrival::Wait { delay_seconds: 1 },
            ),
            (Some(Scheduled), Some(NOW), ms, Arrival::Claim),
            (Some(Scheduled), Some(NOW - 30), ms, Arrival::Claim),
            (Some(Canceled), Some(NOW + 60), ms, Arrival::Drop),
            (Some(Canceled), Some(NOW - 60), ms, Arrival::Drop),
            (Some(Queued), Some(NOW + 60), ms, Arrival::Deliver),
            (Some(Deferred), None, ms, Arrival::Deliver),
            (Some(Delivered), Some(NOW - 60), ms, Arrival::Deliver),
            (None, None, ms, Arrival::Deliver),
        ];
        for (status, due, now, want) in table {
            assert_eq!(arrival(*status, *due, *now), *want, "{status:?} {due:?}");
        }
    }

    #[test]
    fn reschedule_bodies() {
        let ok = reschedule_body(br#"{"scheduled_at": "in 1 hour"}"#);
        assert_eq!(ok.ok(), Some(ScheduledAt::Text("in 1 hour".into())));
        let ok = reschedule_body(br#"{"scheduled_at": 1796036400}"#);
        assert_eq!(ok.ok(), Some(ScheduledAt::Unix(1_796_036_400)));
        for (body, status, field) in [
            (&b"{}"[..], 422, Some("scheduled_at")),
            (br#"{"scheduled_at": null}"#, 422, Some("scheduled_at")),
            (br#"{"scheduled_at": true}"#, 422, Some("scheduled_at")),
            (br#"{"when": "in 1 hour"}"#, 422, Some("scheduled_at")),
            (b"not json", 400, None),
        ] {
            let e = reschedule_body(body).expect_err("refused");
            assert_eq!((e.status, e.field.as_deref()), (status, field), "{body:?}");
        }
    }

    #[test]
    fn a_cancel_too_late_names_the_rule_and_the_status() {
        let e = not_scheduled(MessageStatus::Delivered, "canceled");
        let f = e.fields();
        assert_eq!((f.status, f.rule), (409, "not_scheduled"));
        assert!(f.message.contains("delivered"));
    }
}
