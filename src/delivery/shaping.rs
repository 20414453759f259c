//! Shaping what goes to one upstream: throttling replies read as
//! backpressure, a sending rate that adapts to them, and a token bucket that
//! says how many messages may go now and when the next may.
//!
//! Real smarthosts have limits (Amazon SES answers `454 Throttling failure:
//! Maximum sending rate exceeded`, Microsoft 365 allows 30 messages a minute
//! per mailbox). A throttling reply is not a failure of the message: it
//! waits without using up an attempt or cooling the upstream down, and the
//! rate halves; each window without throttling adds back a step, up to the
//! configured limit (additive increase, multiplicative decrease).
//!
//! Limits come from `UPSTREAM_LIMITS` (a JSON object keyed by upstream
//! label: `rate` messages per second, `sessions` at once, `per_day`
//! messages per UTC day). One [`Shaper`] per upstream (kept by a Durable
//! Object at the edge, so every consumer invocation sees the same one)
//! grants a session a lease and a schedule: `messages` slots, the first
//! `start_in_ms` from now and one every `interval_ms` after it, never more
//! than [`HORIZON_MS`] ahead. Slots are spaced at the adapted rate with no
//! burst, so any one-second window holds at most `rate + 1` slots; what a
//! server measures adds only the network's jitter. A lease lasts
//! [`LEASE_MS`] past its last slot, so a session that never reports (a
//! crashed invocation) frees its place then.
//! Owns: those rules, on a virtual clock. Must not: read the clock, store
//! state, or decide retries of real failures (`policy` does).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Whether a reply says "slow down" rather than "this message failed".
///
/// `421` and `454` with a rate or load text, any `4.7.x` with one, and the
/// quota texts some providers send with a 5xx (Microsoft 365's
/// `SubmissionQuotaExceeded`) are throttling. A plain `421` closing the
/// connection is not, on its own.
pub fn is_throttling(code: u16, enhanced: Option<&str>, text: &str) -> bool {
    let text = text.to_ascii_lowercase();
    let says_rate = RATE_TEXTS.iter().any(|t| text.contains(t));
    if QUOTA_TEXTS.iter().any(|t| text.contains(t)) {
        return true;
    }
    let policy_class = enhanced.is_some_and(|e| e.starts_with("4.7."));
    // "Too many recipients" (452 4.5.3) is a limit per message, handled by
    // sending the rest in another transaction, not a rate.
    if enhanced == Some("4.5.3") || text.contains("too many recipients") {
        return false;
    }
    match code {
        421 | 450 | 451 | 454 => says_rate || policy_class,
        452 => policy_class,
        _ => false,
    }
}

/// Lower case.
const RATE_TEXTS: &[&str] = &[
    "throttl",
    "rate limit",
    "rate exceeded",
    "sending rate",
    "too many",
    "slow down",
    "try again later, closing connection",
    "temporarily deferred due to",
    "exceeded the configured limit",
];

/// Lower case; throttling whatever the code says.
const QUOTA_TEXTS: &[&str] = &[
    "submissionquotaexceeded",
    "daily sending quota exceeded",
    "maximum sending rate exceeded",
];

/// The configured ceiling and the adapted rate of one upstream.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AdaptiveRate {
    /// The configured limit, messages per second.
    pub ceiling: f64,
    /// The rate in force now, messages per second.
    pub current: f64,
    /// Since when the upstream has been throttling (Unix ms), if it is.
    pub throttled_since_ms: Option<u64>,
    /// When the rate last changed (Unix ms).
    pub changed_at_ms: u64,
}

/// The lowest rate a throttled upstream is slowed to (one message every
/// ten seconds): it still makes progress, so the rate can recover.
pub const MIN_RATE: f64 = 0.1;

/// How long without throttling before the rate steps up again.
pub const RECOVERY_WINDOW_MS: u64 = 10_000;

impl AdaptiveRate {
    pub fn new(ceiling: f64, now_ms: u64) -> AdaptiveRate {
        let ceiling = ceiling.max(MIN_RATE);
        AdaptiveRate {
            ceiling,
            current: ceiling,
            throttled_since_ms: None,
            changed_at_ms: now_ms,
        }
    }

    /// A throttling reply: halve the rate, no lower than [`MIN_RATE`].
    /// Replies within one window count once, so a pipelined burst of 454s
    /// does not collapse the rate.
    pub fn throttled(&mut self, now_ms: u64) {
        let recently = self.throttled_since_ms.is_some()
            && now_ms.saturating_sub(self.changed_at_ms) < RECOVERY_WINDOW_MS / 10;
        if !recently {
            self.current = (self.current / 2.0).max(MIN_RATE);
            self.changed_at_ms = now_ms;
        }
        self.throttled_since_ms.get_or_insert(now_ms);
    }

    /// A message accepted: after a quiet window, add a tenth of the
    /// ceiling back, up to it.
    pub fn accepted(&mut self, now_ms: u64) {
        if now_ms.saturating_sub(self.changed_at_ms) < RECOVERY_WINDOW_MS {
            return;
        }
        if self.current < self.ceiling {
            self.current = (self.current + self.ceiling / 10.0).min(self.ceiling);
            self.changed_at_ms = now_ms;
        }
        if self.current >= self.ceiling {
            self.throttled_since_ms = None;
        }
    }
}

/// A token bucket at `rate` per second holding at most `burst` tokens.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TokenBucket {
    pub tokens: f64,
    pub updated_at_ms: u64,
}

/// What the bucket allows now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admission {
    /// Messages that may go now.
    pub now: u32,
    /// When the next one may go (ms from now), if any are left waiting.
    pub next_in_ms: Option<u64>,
}

impl TokenBucket {
    pub fn full(burst: f64, now_ms: u64) -> TokenBucket {
        TokenBucket {
            tokens: burst,
            updated_at_ms: now_ms,
        }
    }

    /// Takes up to `wanted` tokens at `rate` per second (refilled since
    /// the last call, up to `burst`).
    pub fn admit(&mut self, wanted: u32, rate: f64, burst: f64, now_ms: u64) -> Admission {
        let rate = rate.max(MIN_RATE);
        let elapsed = now_ms.saturating_sub(self.updated_at_ms) as f64 / 1000.0;
        self.tokens = (self.tokens + elapsed * rate).min(burst.max(1.0));
        self.updated_at_ms = now_ms;
        let now = (self.tokens.floor() as u32).min(wanted);
        self.tokens -= f64::from(now);
        let next_in_ms = (now < wanted).then(|| {
            let missing = 1.0 - self.tokens;
            ((missing / rate) * 1000.0).ceil().max(1.0) as u64
        });
        Admission { now, next_in_ms }
    }
}

/// One upstream's limits, as written in `UPSTREAM_LIMITS`.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Messages per second (a fraction for slower: `0.5` is one every 2 s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    /// Sessions open at once, across every consumer invocation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sessions: Option<u32>,
    /// Messages per UTC day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_day: Option<u32>,
    /// Recipients per transaction (an SMTP transaction or an API call): a
    /// message to more goes in several, to the same upstream (`parts`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipients_per_message: Option<u32>,
    /// Recipients per session (one connection, or one run of API calls): a
    /// share with more goes over several sessions, one after another.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipients_per_session: Option<u32>,
}

impl Limits {
    /// Whether a shaper must grant the sessions (a rate, a session count or
    /// a daily count); recipient limits are kept by the session alone.
    pub fn needs_shaper(&self) -> bool {
        self.rate.is_some() || self.sessions.is_some() || self.per_day.is_some()
    }
}

/// The highest `rate` accepted, messages per second.
pub const MAX_RATE: f64 = 10_000.0;
/// The most `sessions` accepted.
pub const MAX_SESSIONS: u32 = 1_000;
/// The most `recipients_per_message` and `recipients_per_session` accepted.
pub const MAX_RECIPIENT_LIMIT: u32 = 100_000;

/// Every upstream's limits, by label; empty when `UPSTREAM_LIMITS` is unset.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LimitsTable {
    by_label: BTreeMap<String, Limits>,
}

// Every rate in a parsed table is finite.
impl Eq for LimitsTable {}

impl LimitsTable {
    /// Parses `UPSTREAM_LIMITS` against the configured upstream labels. The
    /// error names the upstream by position and the rule, never the text.
    pub fn parse(raw: &str, labels: &[String]) -> Result<LimitsTable, String> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Ok(LimitsTable::default());
        }
        let by_label: BTreeMap<String, Limits> = serde_json::from_str(raw).map_err(|_| {
            "must be a JSON object of \"host:port\": {rate?, sessions?, per_day?, \
             recipients_per_message?, recipients_per_session?}"
                .to_string()
        })?;
        for (i, (label, limits)) in by_label.iter().enumerate() {
            let n = i + 1;
            if !labels.contains(label) {
                return Err(format!("entry {n} names an upstream not in SMTP_UPSTREAMS"));
            }
            if limits
                .rate
                .is_some_and(|r| !(MIN_RATE..=MAX_RATE).contains(&r))
            {
                return Err(format!(
                    "entry {n} has a rate that is not between {MIN_RATE} and {MAX_RATE}"
                ));
            }
            if limits.sessions.is_some_and(|s| s == 0 || s > MAX_SESSIONS) {
                return Err(format!(
                    "entry {n} has sessions not between 1 and {MAX_SESSIONS}"
                ));
            }
            if limits.per_day == Some(0) {
                return Err(format!("entry {n} has a per_day of 0"));
            }
            for (name, value) in [
                ("recipients_per_message", limits.recipients_per_message),
                ("recipients_per_session", limits.recipients_per_session),
            ] {
                if value.is_some_and(|v| v == 0 || v > MAX_RECIPIENT_LIMIT) {
                    return Err(format!(
                        "entry {n} has {name} not between 1 and {MAX_RECIPIENT_LIMIT}"
                    ));
                }
            }
        }
        Ok(LimitsTable { by_label })
    }

    /// The limits of the upstream labelled `label`, if it has any.
    pub fn of(&self, label: &str) -> Option<Limits> {
        self.by_label.get(label).copied().filter(|l| {
            l.needs_shaper()
                || l.recipients_per_message.is_some()
                || l.recipients_per_session.is_some()
        })
    }
}

/// How far ahead a grant may schedule slots: a session waits at most this
/// long for its last one.
pub const HORIZON_MS: u64 = 5_000;
/// How long a session lease outlives its last slot when never given back.
pub const LEASE_MS: u64 = 60_000;
/// The time a session is given to connect and greet before its first slot.
pub const SESSION_LEAD_MS: u64 = 300;
/// When the sessions are all taken, ask again after this long.
pub const SESSION_WAIT_MS: u64 = 1_000;
/// A day, in ms (days are UTC days of the Unix clock).
const DAY_MS: u64 = 86_400_000;

/// A call to one upstream's shaper.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum ShaperCall {
    /// A session wants to send `wanted` messages; `lease` names it.
    Grant {
        limits: Limits,
        lease: String,
        wanted: u32,
    },
    /// The session `lease` ended: `accepted` messages taken, `returned`
    /// granted ones not sent (given back to the day's count), and whether
    /// the upstream throttled.
    Report {
        limits: Limits,
        lease: String,
        accepted: u32,
        returned: u32,
        throttled: bool,
    },
    /// The state, for the health API.
    Show { limits: Limits },
}

/// What a grant allows one session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// How many of the wanted messages may go in this session (0: none,
    /// and the session must not open).
    pub messages: u32,
    /// When the first may go, ms from now.
    pub start_in_ms: u64,
    /// Then one every this many ms (0: no rate limit).
    pub interval_ms: u64,
    /// When to ask again for the messages not granted, ms from now.
    pub retry_in_ms: u64,
}

impl Grant {
    /// Everything may go now (no limits, or the shaper is unreachable and
    /// the limits are not enforced).
    pub fn all(wanted: u32) -> Grant {
        Grant {
            messages: wanted,
            start_in_ms: 0,
            interval_ms: 0,
            retry_in_ms: 0,
        }
    }

    /// When the `i`-th granted message may go, ms after the grant.
    pub fn slot_ms(&self, i: u32) -> u64 {
        self.start_in_ms
            .saturating_add(self.interval_ms.saturating_mul(u64::from(i)))
    }

    /// When the `i`-th granted message goes, ms after the grant, when the
    /// one before it went at `previous_ms`: at its slot, and never sooner
    /// than an interval after the one before, so a session that fell behind
    /// its schedule (a slow greeting, a slow reply) does not catch up in a
    /// burst.
    pub fn due_ms(&self, i: u32, previous_ms: Option<u64>) -> u64 {
        let slot = self.slot_ms(i);
        previous_ms.map_or(slot, |p| slot.max(p.saturating_add(self.interval_ms)))
    }

    /// Whether the `i`-th granted message, not yet handed over `now_ms`
    /// after the grant, missed its slot: more than an interval past it.
    /// It is not sent then, so every message goes within an interval of
    /// its slot and no second holds more than `rate + 2`.
    pub fn missed(&self, i: u32, now_ms: u64) -> bool {
        self.interval_ms > 0 && now_ms > self.slot_ms(i).saturating_add(self.interval_ms)
    }
}

/// What to do with a session's next job under its grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pacing {
    /// Not yet: it may go this many ms after the grant.
    WaitUntil(u64),
    /// Hand it over now.
    Send,
    /// Its slot has passed: keep it back.
    Skip,
}

/// Walks one session's jobs through a grant, in order. A job has a slot,
/// or none when it is a later part of the job before it (`parts`): such a
/// part follows its first at once and is skipped with it.
#[derive(Debug, Clone, Copy)]
pub struct Pacer<'g> {
    grant: &'g Grant,
    /// When the last job with a slot went, ms after the grant.
    last_ms: Option<u64>,
    skipping: bool,
}

impl<'g> Pacer<'g> {
    pub fn new(grant: &'g Grant) -> Self {
        Pacer {
            grant,
            last_ms: None,
            skipping: false,
        }
    }

    /// The next job, with its slot, `now_ms` after the grant. `all`: the
    /// session is over and every job left is handed over for its outcome,
    /// without waiting or skipping. `WaitUntil` changes nothing: ask again.
    pub fn next(&mut self, slot: Option<u32>, now_ms: u64, all: bool) -> Pacing {
        if let Some(slot) = slot {
            let due = self.grant.due_ms(slot, self.last_ms);
            if !all && due > now_ms {
                return Pacing::WaitUntil(due);
            }
            self.skipping = !all && self.grant.missed(slot, now_ms);
        }
        if self.skipping {
            return Pacing::Skip;
        }
        if slot.is_some() {
            self.last_ms = Some(now_ms);
        }
        Pacing::Send
    }
}

/// What the health API shows of a shaper.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShaperView {
    pub limits: Limits,
    /// The rate in force now (messages per second), `None` without a rate limit.
    pub current_rate: Option<f64>,
    /// Since when the upstream has been throttling (Unix ms), if it is.
    pub throttled_since_ms: Option<u64>,
    pub sessions_in_use: u32,
    /// Messages granted today (UTC), less those given back.
    pub today: u32,
    /// What the report just answered changed, for the log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change: Option<RateChange>,
}

/// A change of an upstream's adapted rate, logged when a session's report
/// makes it: `upstream_slowed` and `upstream_recovered`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum RateChange {
    /// A throttling reply lowered the rate.
    Slowed { rate: f64, ceiling: f64 },
    /// The rate is back at its ceiling: the upstream is no longer throttling.
    Recovered { rate: f64 },
}

/// A session's place, until `expires_ms`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lease {
    pub id: String,
    pub expires_ms: u64,
}

/// One upstream's shared state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Shaper {
    #[serde(default)]
    pub rate: Option<AdaptiveRate>,
    /// The earliest time (Unix ms) the next slot may be given.
    #[serde(default)]
    pub next_slot_ms: u64,
    #[serde(default)]
    pub leases: Vec<Lease>,
    /// The UTC day (days since the epoch) `today` counts.
    #[serde(default)]
    pub day: u64,
    #[serde(default)]
    pub today: u32,
}

impl Shaper {
    /// Brings the state up to `limits` and `now_ms`: the rate follows a
    /// changed ceiling, expired leases go, a new day starts from zero.
    fn refresh(&mut self, limits: &Limits, now_ms: u64) {
        self.rate = match (limits.rate, self.rate) {
            (None, _) => None,
            (Some(c), Some(r)) if r.ceiling == c.max(MIN_RATE) => Some(r),
            (Some(c), _) => Some(AdaptiveRate::new(c, now_ms)),
        };
        self.leases.retain(|l| l.expires_ms > now_ms);
        let day = now_ms / DAY_MS;
        if day != self.day {
            self.day = day;
            self.today = 0;
        }
    }

    /// Answers one call at `now_ms`.
    pub fn apply(&mut self, call: &ShaperCall, now_ms: u64) -> ShaperAnswer {
        match call {
            ShaperCall::Grant {
                limits,
                lease,
                wanted,
            } => ShaperAnswer::Grant(self.grant(limits, lease, *wanted, now_ms)),
            ShaperCall::Report {
                limits,
                lease,
                accepted,
                returned,
                throttled,
            } => {
                let change = self.report(limits, lease, *accepted, *returned, *throttled, now_ms);
                ShaperAnswer::View(ShaperView {
                    change,
                    ..self.view(limits, now_ms)
                })
            }
            ShaperCall::Show { limits } => ShaperAnswer::View(self.view(limits, now_ms)),
        }
    }

    /// Grants the session `lease` a place and a schedule for at most
    /// `wanted` messages.
    pub fn grant(&mut self, limits: &Limits, lease: &str, wanted: u32, now_ms: u64) -> Grant {
        self.refresh(limits, now_ms);
        let none = |retry_in_ms: u64| Grant {
            messages: 0,
            start_in_ms: 0,
            interval_ms: 0,
            retry_in_ms: retry_in_ms.max(1),
        };
        if wanted == 0 {
            return none(0);
        }
        let held = self.leases.iter().any(|l| l.id == lease);
        if let Some(max) = limits.sessions
            && !held
            && self.leases.len() >= max as usize
        {
            return none(SESSION_WAIT_MS);
        }
        let mut messages = wanted;
        if let Some(per_day) = limits.per_day {
            let left = per_day.saturating_sub(self.today);
            if left == 0 {
                return none(DAY_MS - now_ms % DAY_MS);
            }
            messages = messages.min(left);
        }
        let (start, interval) = match self.rate {
            None => (now_ms, 0),
            Some(r) => {
                let interval = (1000.0 / r.current.max(MIN_RATE)).ceil() as u64;
                // The session connects and greets first: its first slot
                // is no sooner than that, so none is overdue once it can send.
                let start = self.next_slot_ms.max(now_ms + SESSION_LEAD_MS);
                let reach = now_ms + HORIZON_MS;
                if start >= reach {
                    return none(start - reach + 1);
                }
                let fit = (reach - start).div_ceil(interval.max(1));
                messages = messages.min(u32::try_from(fit).unwrap_or(u32::MAX));
                self.next_slot_ms = start + interval * u64::from(messages);
                (start, interval)
            }
        };
        self.today = self.today.saturating_add(messages);
        let last = start + interval * u64::from(messages.saturating_sub(1));
        let expires_ms = last + LEASE_MS;
        match self.leases.iter_mut().find(|l| l.id == lease) {
            Some(l) => l.expires_ms = l.expires_ms.max(expires_ms),
            None => self.leases.push(Lease {
                id: lease.to_string(),
                expires_ms,
            }),
        }
        Grant {
            messages,
            start_in_ms: start - now_ms,
            interval_ms: interval,
            retry_in_ms: if messages < wanted {
                (self.next_slot_ms.saturating_sub(now_ms)).max(1)
            } else {
                0
            },
        }
    }

    /// The session `lease` ended: its place is free, unsent messages go
    /// back to the day's count, and the rate halves on throttling or steps
    /// back up after a quiet window.
    pub fn report(
        &mut self,
        limits: &Limits,
        lease: &str,
        accepted: u32,
        returned: u32,
        throttled: bool,
        now_ms: u64,
    ) -> Option<RateChange> {
        self.refresh(limits, now_ms);
        self.leases.retain(|l| l.id != lease);
        self.today = self.today.saturating_sub(returned);
        let r = self.rate.as_mut()?;
        let before = *r;
        if throttled {
            r.throttled(now_ms);
            // The slots already given stand; the next ones follow the
            // new rate.
        } else if accepted > 0 {
            r.accepted(now_ms);
        }
        if r.current < before.current {
            Some(RateChange::Slowed {
                rate: r.current,
                ceiling: r.ceiling,
            })
        } else if before.throttled_since_ms.is_some() && r.throttled_since_ms.is_none() {
            Some(RateChange::Recovered { rate: r.current })
        } else {
            None
        }
    }

    /// What the health API shows.
    pub fn view(&mut self, limits: &Limits, now_ms: u64) -> ShaperView {
        self.refresh(limits, now_ms);
        ShaperView {
            limits: *limits,
            current_rate: self.rate.map(|r| r.current),
            throttled_since_ms: self.rate.and_then(|r| r.throttled_since_ms),
            sessions_in_use: u32::try_from(self.leases.len()).unwrap_or(u32::MAX),
            today: self.today,
            change: None,
        }
    }
}

/// A shaper's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ShaperAnswer {
    Grant(Grant),
    View(ShaperView),
}

/// The name of an upstream's shaper object.
pub fn shaper_name(label: &str) -> String {
    format!("upstream:{label}")
}

/// Whether an outcome is an upstream saying "slow down" rather than a failure.
pub fn throttles(outcome: &crate::smtp::Outcome) -> bool {
    outcome.kind != crate::smtp::OutcomeKind::Delivered
        && outcome.reply.as_ref().is_some_and(reply_throttles)
}

/// What a transaction's reply says, for [`is_throttling`].
pub fn reply_throttles(reply: &crate::smtp::Reply) -> bool {
    let enhanced = reply.enhanced.map(|e| e.to_string());
    is_throttling(reply.code, enhanced.as_deref(), &reply.lines.join(" "))
}

/// What a session came to, as its upstream's shaper counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tally {
    /// Transactions the upstream accepted (for at least one recipient).
    pub accepted: u32,
    /// Granted jobs that did not get through: throttled, or never reached.
    pub returned: u32,
    /// Whether the upstream throttled anything.
    pub throttled: bool,
}

/// Whole seconds to wait for `ms` (at least one: the queue's unit).
pub fn wait_seconds(ms: u64) -> u32 {
    u32::try_from(ms.div_ceil(1000).max(1)).unwrap_or(u32::MAX)
}

/// How long a message refused by throttling waits before it is tried
/// again, seconds: the shaper spaces the retries at the halved rate.
pub const THROTTLED_WAIT_SECONDS: u32 = 2;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_replies_table() {
        let table: &[(u16, Option<&str>, &str, bool)] = &[
            (
                454,
                Some("4.7.0"),
                "Throttling failure: Maximum sending rate exceeded.",
                true,
            ),
            (
                554,
                Some("5.2.0"),
                "STOREDRV.Submission.Exception:SubmissionQuotaExceededException",
                true,
            ),
            (421, Some("4.7.0"), "Too many connections, slow down", true),
            (451, Some("4.7.1"), "Please try again later", true),
            (450, None, "Rate limit exceeded for this sender", true),
            (
                452,
                Some("4.7.0"),
                "Message submission rate for this client has exceeded the configured limit",
                true,
            ),
            (
                421,
                None,
                "Service not available, closing transmission channel",
                false,
            ),
            (451, Some("4.3.0"), "Temporary local problem", false),
            (452, Some("4.5.3"), "Too many recipients", false),
            (452, None, "4.5.3 Error: too many recipients", false),
            (452, Some("4.2.2"), "Mailbox full", false),
            (550, Some("5.7.1"), "rate of spam too high", false),
            (250, None, "OK", false),
        ];
        for (code, enhanced, text, want) in table {
            assert_eq!(
                is_throttling(*code, *enhanced, text),
                *want,
                "{code} {enhanced:?} {text}"
            );
        }
    }

    #[test]
    fn the_rate_halves_on_throttling_and_recovers_in_steps() {
        let mut r = AdaptiveRate::new(20.0, 0);
        r.throttled(1_000);
        assert_eq!(r.current, 10.0);
        assert_eq!(r.throttled_since_ms, Some(1_000));
        // The rest of a pipelined burst of 454s counts once.
        r.throttled(1_100);
        assert_eq!(r.current, 10.0);
        r.throttled(3_000);
        assert_eq!(r.current, 5.0);
        // Not before a quiet window.
        r.accepted(5_000);
        assert_eq!(r.current, 5.0);
        r.accepted(13_000);
        assert_eq!(r.current, 7.0);
        let mut t = 13_000;
        while r.current < 20.0 {
            t += RECOVERY_WINDOW_MS;
            r.accepted(t);
        }
        assert_eq!(r.current, 20.0);
        assert_eq!(r.throttled_since_ms, None);
        for i in 0..100 {
            r.throttled(100_000 + i * 2_000);
        }
        assert_eq!(r.current, MIN_RATE);
    }

    #[test]
    fn the_bucket_never_lets_more_than_the_rate_through() {
        // Simulated: a sender asking for 1000 messages every 10 ms at
        // 20/s with a burst of 5 sends at most 5 + 20 * seconds.
        let mut b = TokenBucket::full(5.0, 0);
        let mut sent = 0u32;
        for step in 0..=1_000u64 {
            let now = step * 10;
            let a = b.admit(1_000, 20.0, 5.0, now);
            sent += a.now;
            assert!(a.next_in_ms.is_some_and(|ms| ms <= 50));
            let bound = 5.0 + 20.0 * (now as f64 / 1000.0);
            assert!(f64::from(sent) <= bound + 1e-9, "{sent} by {now} ms");
        }
        assert!(sent >= 200, "{sent}: it does send at the rate");
        let mut idle = TokenBucket::full(5.0, 0);
        assert_eq!(
            idle.admit(3, 20.0, 5.0, 0),
            Admission {
                now: 3,
                next_in_ms: None
            }
        );
    }

    const L: Limits = Limits {
        rate: Some(20.0),
        sessions: Some(2),
        per_day: Some(1_000),
        recipients_per_message: None,
        recipients_per_session: None,
    };

    #[test]
    fn what_a_grant_means_for_a_batch() {
        // (wanted, sessions already held, today, next slot in ms) ->
        // (messages, start in ms, interval, retry in ms)
        let now = 10 * DAY_MS + 1_000;
        type Row = (u32, usize, u32, u64, (u32, u64, u64, u64));
        let table: &[Row] = &[
            // 20/s: one every 50 ms, after the session's lead, up to the
            // 5 s horizon.
            (10, 0, 0, 0, (10, SESSION_LEAD_MS, 50, 0)),
            (500, 0, 0, 0, (94, SESSION_LEAD_MS, 50, 5_000)),
            // Slots already given to others: this session starts after them.
            (10, 1, 0, 2_000, (10, 2_000, 50, 0)),
            // Booked beyond the horizon: nothing, ask again when in reach.
            (10, 1, 0, 6_000, (0, 0, 0, 1_001)),
            // Both sessions taken.
            (10, 2, 0, 0, (0, 0, 0, SESSION_WAIT_MS)),
            // The day's last three.
            (
                10,
                0,
                997,
                0,
                (3, SESSION_LEAD_MS, 50, SESSION_LEAD_MS + 150),
            ),
            // The day used up: back at midnight UTC.
            (10, 0, 1_000, 0, (0, 0, 0, DAY_MS - 1_000)),
        ];
        for &(wanted, held, today, next_in, want) in table {
            let mut s = Shaper {
                rate: Some(AdaptiveRate::new(20.0, 0)),
                next_slot_ms: now + next_in,
                leases: (0..held)
                    .map(|i| Lease {
                        id: format!("other{i}"),
                        expires_ms: now + 1,
                    })
                    .collect(),
                day: now / DAY_MS,
                today,
            };
            let g = s.grant(&L, "me", wanted, now);
            assert_eq!(
                (g.messages, g.start_in_ms, g.interval_ms, g.retry_in_ms),
                want,
                "{wanted} {held} {today} {next_in}"
            );
            assert_eq!(s.today, today + g.messages);
            let mine = s.leases.iter().any(|l| l.id == "me");
            assert_eq!(mine, g.messages > 0, "a lease only with a grant");
        }
    }

    #[test]
    fn slots_never_exceed_the_rate_in_any_second_across_sessions() {
        // Two sessions asking again and again: every granted slot, on one
        // timeline, holds at most rate + 1 in any one-second window.
        let mut s = Shaper::default();
        let mut slots = Vec::new();
        let mut now = 0u64;
        for round in 0..40 {
            for who in ["a", "b", "c"] {
                let g = s.grant(&L, who, 30, now);
                slots.extend((0..g.messages).map(|i| now + g.slot_ms(i)));
                if round % 3 == 0 {
                    s.report(&L, who, g.messages, 0, false, now);
                }
            }
            now += 700;
        }
        slots.sort_unstable();
        for (i, &t) in slots.iter().enumerate() {
            let in_window = slots[i..].iter().take_while(|&&u| u < t + 1_000).count();
            assert!(in_window <= 21, "{in_window} slots from {t}");
        }
        assert!(
            slots.len() > 300,
            "it does send at the rate: {}",
            slots.len()
        );
    }

    #[test]
    fn a_lease_expires_so_a_crashed_session_frees_its_place() {
        let mut s = Shaper::default();
        let one = Limits {
            sessions: Some(1),
            ..Limits::default()
        };
        assert_eq!(s.grant(&one, "crashed", 5, 0).messages, 5);
        assert_eq!(s.grant(&one, "next", 5, 1_000).messages, 0);
        assert_eq!(s.grant(&one, "next", 5, LEASE_MS + 1).messages, 5);
        // The same session asking again keeps its one place.
        assert_eq!(s.grant(&one, "next", 5, LEASE_MS + 2).messages, 5);
        assert_eq!(s.leases.len(), 1);
        s.report(&one, "next", 10, 0, false, LEASE_MS + 3);
        assert!(s.leases.is_empty());
    }

    #[test]
    fn throttling_halves_the_rate_for_every_later_grant_and_the_day_rolls_over() {
        let mut s = Shaper::default();
        let now = 3 * DAY_MS - 10_000;
        let g = s.grant(&L, "a", 4, now);
        assert_eq!(g.interval_ms, 50);
        // Two granted messages came back throttled: given back to the day.
        assert_eq!(
            s.report(&L, "a", 2, 2, true, now + 200),
            Some(RateChange::Slowed {
                rate: 10.0,
                ceiling: 20.0
            })
        );
        let v = s.view(&L, now + 200);
        assert_eq!(v.current_rate, Some(10.0));
        assert_eq!(v.throttled_since_ms, Some(now + 200));
        assert_eq!((v.today, v.sessions_in_use), (2, 0));
        let g = s.grant(&L, "b", 4, now + 300);
        assert_eq!(g.interval_ms, 100, "the halved rate");
        // A new UTC day starts from zero; the rate is kept.
        let v = s.view(&L, 3 * DAY_MS);
        assert_eq!((v.today, v.current_rate), (0, Some(10.0)));
        // A changed ceiling starts over from it.
        let faster = Limits {
            rate: Some(40.0),
            ..L
        };
        assert_eq!(s.view(&faster, 3 * DAY_MS).current_rate, Some(40.0));
    }

    #[test]
    fn a_rate_change_is_named_once_when_it_slows_and_once_when_it_recovers() {
        let mut s = Shaper::default();
        let now = 5 * DAY_MS;
        s.grant(&L, "a", 1, now);
        assert_eq!(
            s.report(&L, "a", 1, 0, false, now + 10),
            None,
            "nothing changed"
        );
        assert!(matches!(
            s.report(&L, "a", 0, 1, true, now + 20),
            Some(RateChange::Slowed { rate, .. }) if rate == 10.0
        ));
        // A second throttling reply in the same moment changes nothing.
        assert_eq!(s.report(&L, "a", 0, 1, true, now + 30), None);
        // Each quiet window adds back a tenth of the ceiling (2 messages a
        // second): five windows from 10 back to 20, and only the fifth,
        // which ends the throttling, is named.
        let mut changes = Vec::new();
        for step in 1..=12 {
            let at = now + 30 + step * RECOVERY_WINDOW_MS;
            changes.push(s.report(&L, "a", 1, 0, false, at));
        }
        let named: Vec<_> = changes.iter().flatten().collect();
        assert_eq!(
            named,
            [&RateChange::Recovered { rate: 20.0 }],
            "{changes:?}"
        );
        assert_eq!(changes.iter().position(Option::is_some), Some(4));
        assert_eq!(s.view(&L, now + 200_000).throttled_since_ms, None);
        // Without a rate limit there is no rate to change.
        let one = Limits {
            sessions: Some(1),
            ..Limits::default()
        };
        assert_eq!(Shaper::default().report(&one, "b", 0, 0, true, now), None);
    }

    #[test]
    fn the_limits_table_is_checked_against_the_upstreams() {
        let labels = vec!["a:25".to_string(), "b:587".to_string()];
        let t = LimitsTable::parse(
            r#"{"a:25": {"rate": 20, "sessions": 2}, "b:587": {"per_day": 100}}"#,
            &labels,
        )
        .unwrap();
        assert_eq!(
            t.of("a:25"),
            Some(Limits {
                rate: Some(20.0),
                sessions: Some(2),
                ..Limits::default()
            })
        );
        assert_eq!(t.of("c:25"), None);
        let t = LimitsTable::parse(
            r#"{"a:25": {"recipients_per_message": 50, "recipients_per_session": 100}, "b:587": {}}"#,
            &labels,
        )
        .unwrap();
        let a = t.of("a:25").unwrap();
        assert_eq!(
            (a.recipients_per_message, a.recipients_per_session),
            (Some(50), Some(100))
        );
        assert!(!a.needs_shaper(), "recipient limits need no shaper");
        assert_eq!(t.of("b:587"), None, "an entry with no limit is none");
        assert_eq!(LimitsTable::parse("", &labels), Ok(LimitsTable::default()));
        for bad in [
            r#"{"secret.example:25": {"rate": 1}}"#,
            r#"{"a:25": {"rate": 0}}"#,
            r#"{"a:25": {"sessions": 0}}"#,
            r#"{"a:25": {"per_day": 0}}"#,
            r#"{"a:25": {"recipients_per_message": 0}}"#,
            r#"{"a:25": {"recipients_per_session": 100001}}"#,
            r#"{"a:25": {"burst": 3}}"#,
            "[1]",
        ] {
            let e = LimitsTable::parse(bad, &labels).unwrap_err();
            assert!(!e.contains("secret"), "{bad}: {e}");
        }
    }

    #[test]
    fn a_pacer_sends_at_the_slots_and_skips_a_missed_job_with_its_parts() {
        let g = Grant {
            messages: 3,
            start_in_ms: 300,
            interval_ms: 50,
            retry_in_ms: 0,
        };
        let mut p = Pacer::new(&g);
        // (slot, now) -> what to do
        let table: &[(Option<u32>, u64, Pacing)] = &[
            (Some(0), 100, Pacing::WaitUntil(300)),
            (Some(0), 300, Pacing::Send),
            // A later part of the same job follows at once.
            (None, 301, Pacing::Send),
            (Some(1), 320, Pacing::WaitUntil(350)),
            // More than an interval past its slot: skipped, parts too.
            (Some(1), 401, Pacing::Skip),
            (None, 402, Pacing::Skip),
            (Some(2), 402, Pacing::Send),
        ];
        for (i, &(slot, now, expected)) in table.iter().enumerate() {
            assert_eq!(p.next(slot, now, false), expected, "row {i}");
        }
        // Once the session is over everything left is handed over.
        let mut p = Pacer::new(&g);
        assert_eq!(p.next(Some(2), 0, true), Pacing::Send);
        assert_eq!(p.next(Some(0), 10_000, true), Pacing::Send);
        // Without a rate, everything goes now.
        let all = Grant::all(2);
        let mut p = Pacer::new(&all);
        assert_eq!(p.next(Some(0), 0, false), Pacing::Send);
        assert_eq!(p.next(Some(1), 0, false), Pacing::Send);
    }

    #[test]
    fn a_session_behind_its_schedule_does_not_catch_up_in_a_burst() {
        let g = Grant {
            messages: 4,
            start_in_ms: 300,
            interval_ms: 50,
            retry_in_ms: 0,
        };
        // On time: the slots.
        assert_eq!(g.due_ms(0, None), 300);
        assert_eq!(g.due_ms(1, Some(300)), 350);
        // The first went 200 ms late: the next one an interval after it,
        // not at its own (passed) slot.
        assert_eq!(g.due_ms(1, Some(500)), 550);
        assert_eq!(g.due_ms(3, Some(550)), 600);
        assert_eq!(Grant::all(3).due_ms(2, Some(10)), 10);
        // More than an interval past its slot: missed, not sent.
        assert!(!g.missed(1, 400));
        assert!(g.missed(1, 401));
        assert!(!Grant::all(3).missed(2, 10_000));
    }
}
