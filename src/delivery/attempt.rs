//! One upstream and its jobs as an SMTP session (the session's configuration,
//! one envelope per job), and each job's outcome read back as an
//! [`AttemptReport`]: the result the retry policy reads, the recipients still
//! to try, and whether another upstream may take the job now (only when
//! nothing reached any recipient, so failing over never sends twice).
//!
//! Must not: open sockets or drive the session (the edge driver does), or
//! decide retries (`policy` and `settle` do).

use std::rc::Rc;

use super::settings::DeliverySettings;
use super::upstream::{Upstream, UpstreamSecurity};
use crate::smtp::{
    Credentials, DsnRequest, Envelope, Notify, OutcomeKind, Security, SmtpConfig, Timeouts,
    TransactionOutcome,
};

use super::policy::AttemptResult;
use super::provider_header::stamped;
use super::shaping::{THROTTLED_WAIT_SECONDS, throttles};
use crate::queue::DeliveryJob;

/// What one attempt came to for one job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptReport {
    pub result: AttemptResult,
    /// Recipients to try again (transient failures only).
    pub remaining: Vec<String>,
    /// Per-recipient results, for the record.
    pub detail: String,
    /// Whether another upstream may take this job now: nothing reached any
    /// recipient and the failure was about this upstream, not the message.
    pub try_next_upstream: bool,
}

/// The SMTP session settings for an upstream.
pub fn session_config(upstream: &Upstream, settings: &DeliverySettings) -> SmtpConfig {
    let security = match upstream.security {
        UpstreamSecurity::ImplicitTls => Security::ImplicitTls,
        UpstreamSecurity::StartTls => Security::StartTls,
        UpstreamSecurity::Insecure => Security::Insecure,
    };
    let mut config = SmtpConfig::new(settings.ehlo_name.clone(), security);
    if let (Some(user), Some(pass)) = (&upstream.username, &upstream.password) {
        config.credentials = Some(Credentials::password(user.clone(), pass.clone()));
    }
    config.use_pipelining = settings.smtp_pipelining;
    let command_ms = u64::from(settings.smtp_timeout_seconds) * 1000;
    config.timeouts = Timeouts {
        greeting_ms: command_ms,
        command_ms,
        // Servers answer the final dot only after their content checks.
        data_end_ms: command_ms * 2,
        // A write that makes no progress for a command's time is a server
        // that stopped reading (see `smtp::Timeouts::write_ms`).
        write_ms: command_ms,
    };
    config
}

/// A job with its message, ready for a session. The message is held once
/// and shared with the session's envelope, which encodes it a chunk at a time
/// as the socket takes it (see `smtp::transparency`): a batch of large
/// bodies costs their size once, not three times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// The job, as a retry or a dead letter carries it: a body kept in the
    /// bucket is not in it (`mime` is empty), only its reference.
    pub job: DeliveryJob,
    pub message: Rc<Vec<u8>>,
}

impl Outgoing {
    /// A job whose message travels inside it. A message that is also kept
    /// in the bucket is moved out of the job, not copied; one that is not
    /// stays in the job too, for a retry to carry (it fits a queue message).
    pub fn new(mut job: DeliveryJob) -> Self {
        let message = match job.body_ref {
            Some(_) => std::mem::take(&mut job.mime).into_bytes(),
            None => job.mime.as_bytes().to_vec(),
        };
        Outgoing {
            job,
            message: Rc::new(message),
        }
    }

    /// A job whose message was fetched from the bucket.
    pub fn stored(job: DeliveryJob, message: Vec<u8>) -> Self {
        Outgoing {
            job: job.for_queue(),
            message: Rc::new(message),
        }
    }

    /// The same message to `recipients` (a range of the job's), for one
    /// transaction of a job cut by an upstream's recipient limits
    /// (`parts`); the message is shared, not copied.
    pub fn for_recipients(&self, recipients: std::ops::Range<usize>) -> Outgoing {
        let mut job = self.job.clone();
        job.mime = String::new();
        job.rcpt_to = self
            .job
            .rcpt_to
            .get(recipients)
            .unwrap_or_default()
            .to_vec();
        Outgoing {
            job,
            message: Rc::clone(&self.message),
        }
    }

    /// Bytes of message held.
    pub fn message_len(&self) -> usize {
        self.message.len()
    }
}

/// The envelope for a job; `id` is the job's position in the batch.
pub fn envelope(id: u64, outgoing: &Outgoing) -> Envelope {
    let job = &outgoing.job;
    let mut e = Envelope::shared(
        id,
        job.mail_from.clone(),
        job.rcpt_to.clone(),
        outgoing.message.clone(),
    );
    e.needs_smtputf8 = job.smtputf8;
    e.has_8bit = !outgoing.message.is_ascii();
    e.dsn = Some(dsn_request(job));
    e
}

/// The envelope for a job sent through `upstream`: [`envelope`], with the
/// provider's header in front when the upstream is a smarthost provider
/// (see `provider_header`). That copy of the message is the price of
/// mapping the provider's events back; other upstreams share it.
pub fn envelope_for(upstream: &Upstream, id: u64, outgoing: &Outgoing) -> Envelope {
    let mut e = envelope(id, outgoing);
    if let Some(data) = stamped(upstream.provider, &outgoing.job.id, &outgoing.message) {
        e.data = Rc::new(data);
    }
    e
}

/// What a job asks of a server that offers DSN (RFC 3461): reports of
/// failures and delays (and of deliveries when the sender asked for proof
/// of delivery), with the headers only, carrying the signed envelope id as
/// ENVID and each recipient as ORCPT, so a report that comes back later is
/// matched even where the smarthost rewrote the return path. A job without
/// a signed envelope id sends no ENVID.
pub fn dsn_request(job: &DeliveryJob) -> DsnRequest {
    DsnRequest {
        envid: job.envid.clone().unwrap_or_default(),
        notify: Notify {
            success: job.notify_delivery,
            failure: true,
            delay: true,
        },
        headers_only: true,
    }
}

/// Reads the session's outcome for one job. Recipients the upstream
/// throttled are still to try; when throttling is all that held the job
/// back, it waits ([`AttemptResult::Waiting`]) without using an attempt,
/// and no other upstream takes it (the upstream is busy, not down).
pub fn report(outcome: &TransactionOutcome) -> AttemptReport {
    let mut delivered = 0usize;
    let mut remaining = Vec::new();
    let throttled = throttles;
    let any = |kind: OutcomeKind| {
        outcome
            .recipients
            .iter()
            .any(|r| r.outcome.kind == kind && !throttled(&r.outcome))
    };
    let has_throttled = outcome.recipients.iter().any(|r| throttled(&r.outcome))
        || (outcome.recipients.is_empty() && throttled(&outcome.outcome));
    let has_config = any(OutcomeKind::Configuration);
    let has_transient = any(OutcomeKind::Transient) || has_throttled;
    let has_unknown = any(OutcomeKind::Unknown);
    let has_permanent = any(OutcomeKind::Permanent);
    let mut parts = Vec::with_capacity(outcome.recipients.len());
    for r in &outcome.recipients {
        if throttled(&r.outcome) {
            remaining.push(r.address.clone());
            parts.push(format!("{}: {}", r.address, r.outcome));
            continue;
        }
        match r.outcome.kind {
            OutcomeKind::Delivered => delivered += 1,
            OutcomeKind::Transient | OutcomeKind::Configuration => {
                remaining.push(r.address.clone())
            }
            OutcomeKind::Permanent | OutcomeKind::Unknown => {}
        }
        parts.push(format!("{}: {}", r.address, r.outcome));
    }
    let detail = if parts.is_empty() {
        outcome.outcome.to_string()
    } else {
        parts.join("; ")
    };
    let only_throttled = has_throttled
        && !has_config
        && !any(OutcomeKind::Transient)
        && !has_unknown
        && !has_permanent;
    let result = if only_throttled {
        AttemptResult::Waiting {
            reason: detail.clone(),
            delay_seconds: THROTTLED_WAIT_SECONDS,
        }
    } else if outcome.recipients.is_empty() {
        match outcome.outcome.kind {
            OutcomeKind::Delivered => AttemptResult::Delivered,
            OutcomeKind::Transient => AttemptResult::Transient(detail.clone()),
            OutcomeKind::Permanent => AttemptResult::Permanent(detail.clone()),
            OutcomeKind::Configuration => AttemptResult::UpstreamMisconfigured(detail.clone()),
            OutcomeKind::Unknown => AttemptResult::Unknown(detail.clone()),
        }
    } else if delivered == outcome.recipients.len() {
        AttemptResult::Delivered
    } else if has_config {
        AttemptResult::UpstreamMisconfigured(detail.clone())
    } else if has_transient {
        AttemptResult::Transient(detail.clone())
    } else if has_unknown {
        AttemptResult::Unknown(detail.clone())
    } else {
        debug_assert!(has_permanent);
        AttemptResult::Permanent(detail.clone())
    };
    let untouched = delivered == 0 && !has_permanent && !has_unknown;
    let try_next_upstream = untouched
        && matches!(
            result,
            AttemptResult::Transient(_) | AttemptResult::UpstreamMisconfigured(_)
        );
    AttemptReport {
        result,
        remaining,
        detail,
        try_next_upstream,
    }
}

/// The report of a job the upstream's shaping kept back this time: it
/// waits `delay_seconds`, no attempt used, all its recipients still to try.
pub fn kept_back(recipients: &[String], label: &str, delay_seconds: u32) -> AttemptReport {
    let detail = format!("{label}: waiting for the upstream's sending limits");
    AttemptReport {
        result: AttemptResult::Waiting {
            reason: detail.clone(),
            delay_seconds,
        },
        remaining: recipients.to_vec(),
        detail,
        try_next_upstream: false,
    }
}

#[cfg(test)]
mod outgoing_tests {
    use super::*;

    fn job(mime: &str, body_ref: Option<&str>) -> DeliveryJob {
        DeliveryJob {
            body_ref: body_ref.map(str::to_string),
            ..DeliveryJob::sample("m1", mime)
        }
    }

    #[test]
    fn a_message_is_held_once_and_shared_with_its_envelope() {
        // Kept in the bucket: moved out of the job, which travels without it.
        let o = Outgoing::new(job("Subject: é\r\n\r\nx", Some("bodies/m1.eml")));
        assert_eq!(o.job.mime, "");
        assert_eq!(o.message.as_slice(), "Subject: é\r\n\r\nx".as_bytes());
        let e = envelope(3, &o);
        assert!(Rc::ptr_eq(&e.data, &o.message), "shared, not copied");
        assert!(e.has_8bit);
        assert_eq!(e.id, 3);
        // Reports come back naming the message, for failures and delays.
        let dsn = e.dsn.as_ref().unwrap();
        assert_eq!(
            dsn.envid, "",
            "a job without a signed envelope id sends none"
        );
        assert!(dsn.notify.failure && dsn.notify.delay && !dsn.notify.success);
        assert!(dsn.headers_only);
        // Small enough for the queue: a retry carries it, so the job keeps it.
        let o = Outgoing::new(job("Subject: x\r\n\r\nx", None));
        assert_eq!(o.job.mime, "Subject: x\r\n\r\nx");
        assert!(!envelope(0, &o).has_8bit);
        // Fetched from the bucket.
        let o = Outgoing::stored(job("", Some("bodies/m1.eml")), b"abc".to_vec());
        assert_eq!(o.message_len(), 3);
        assert_eq!(o.job.body_ref.as_deref(), Some("bodies/m1.eml"));
    }

    #[test]
    fn a_provider_upstream_gets_its_header_and_others_share_the_message() {
        let o = Outgoing::new(job("Subject: x\r\n\r\nx", None));
        let plain = Upstream::parse("smtp://u:p@mail.example.net").unwrap();
        let e = envelope_for(&plain, 1, &o);
        assert!(Rc::ptr_eq(&e.data, &o.message));
        let sendgrid = Upstream::parse("smtps://apikey:k@smtp.sendgrid.net").unwrap();
        let e = envelope_for(&sendgrid, 1, &o);
        assert_eq!(
            e.data.as_slice(),
            b"X-SMTPAPI: {\"unique_args\": {\"edgerelay_id\": \"m1\"}}\r\nSubject: x\r\n\r\nx"
        );
    }

    #[test]
    fn the_dsn_request_follows_the_job() {
        // (signed envelope id, proof of delivery asked) -> MAIL and RCPT parameters
        let envid = "4f3c9a0b1d2e3f405162738495a6b7c8.0123456789abcdef";
        let table: &[(Option<&str>, bool, &str, &str)] = &[
            (
                Some(envid),
                false,
                " RET=HDRS ENVID=4f3c9a0b1d2e3f405162738495a6b7c8.0123456789abcdef",
                " NOTIFY=FAILURE,DELAY ORCPT=rfc822;b@example.org",
            ),
            (
                Some(envid),
                true,
                " RET=HDRS ENVID=4f3c9a0b1d2e3f405162738495a6b7c8.0123456789abcdef",
                " NOTIFY=SUCCESS,FAILURE,DELAY ORCPT=rfc822;b@example.org",
            ),
            // A job written before envelope ids were signed: no ENVID.
            (
                None,
                false,
                " RET=HDRS",
                " NOTIFY=FAILURE,DELAY ORCPT=rfc822;b@example.org",
            ),
        ];
        for (envid, notify_delivery, mail, rcpt) in table {
            let job = DeliveryJob {
                envid: envid.map(str::to_string),
                notify_delivery: *notify_delivery,
                ..job("x", None)
            };
            let dsn = dsn_request(&job);
            assert_eq!(dsn.mail_parameters(), *mail, "{envid:?} {notify_delivery}");
            assert_eq!(
                dsn.rcpt_parameters("b@example.org"),
                *rcpt,
                "{envid:?} {notify_delivery}"
            );
        }
    }
}

#[cfg(test)]
mod throttling_tests {
    use super::*;
    use crate::delivery::policy::{Decision, RetryPolicy, RetrySettings};
    use crate::delivery::{HealthSettings, SessionVerdict, UpstreamHealth};
    use crate::smtp::{Cause, Outcome, RecipientOutcome, Reply};

    fn rcpt(address: &str, kind: OutcomeKind, code: u16, text: &str) -> RecipientOutcome {
        RecipientOutcome {
            address: address.into(),
            outcome: Outcome::new(kind, Cause::Reply).with_reply(Reply::new(code, text)),
        }
    }

    const T454: (OutcomeKind, u16, &str) = (
        OutcomeKind::Transient,
        454,
        "Throttling failure: Maximum sending rate exceeded.",
    );
    const OK: (OutcomeKind, u16, &str) = (OutcomeKind::Delivered, 250, "OK");
    const BUSY: (OutcomeKind, u16, &str) = (OutcomeKind::Transient, 451, "Temporary local problem");
    const GONE: (OutcomeKind, u16, &str) = (OutcomeKind::Permanent, 550, "No such user");

    #[test]
    fn what_a_throttling_reply_does_to_each_job() {
        let policy = RetryPolicy::new(RetrySettings {
            base_delay_seconds: 60,
            max_delay_seconds: 3_600,
            lifetime_seconds: 86_400,
        });
        // (each recipient's reply) -> (result kind, recipients still to try,
        // whether the attempt counts, another upstream may take it)
        type Row = (
            &'static [(OutcomeKind, u16, &'static str)],
            &'static str,
            usize,
            bool,
        );
        let table: &[Row] = &[
            // Throttled at DATA: waits, nothing counted, stays here.
            (&[T454, T454], "waiting", 2, false),
            // One accepted, one throttled: the other waits uncounted.
            (&[OK, T454], "waiting", 1, false),
            // A real transient failure beside it: a counted retry of both.
            (&[BUSY, T454], "transient", 2, true),
            // Refused for good beside a throttled one: the throttled one
            // is still to try.
            (&[GONE, T454], "transient", 1, true),
            (&[BUSY], "transient", 1, true),
        ];
        for (i, (replies, kind, left, counts)) in table.iter().enumerate() {
            let recipients = replies
                .iter()
                .enumerate()
                .map(|(n, (k, code, text))| rcpt(&format!("r{n}@x.net"), *k, *code, text))
                .collect();
            let o = TransactionOutcome::summarise(
                0,
                recipients,
                Outcome::new(OutcomeKind::Transient, Cause::Reply),
            );
            let r = report(&o);
            let got = match &r.result {
                AttemptResult::Waiting { delay_seconds, .. } => {
                    assert_eq!(*delay_seconds, THROTTLED_WAIT_SECONDS);
                    "waiting"
                }
                AttemptResult::Transient(_) => "transient",
                other => panic!("row {i}: {other:?}"),
            };
            assert_eq!((got, r.remaining.len()), (*kind, *left), "row {i}");
            assert!(!(got == "waiting" && r.try_next_upstream), "row {i}");
            let counted = !matches!(
                policy.decide(&r.result, 1, 10, 0.5),
                Decision::Retry { counts: false, .. }
            );
            assert_eq!(counted, *counts, "row {i}");
        }
        // A session refused with a throttling 421 does not cool the upstream
        // down; a plain 421 does.
        let settings = HealthSettings {
            failure_threshold: 1,
            cooldown_seconds: 60,
            max_cooldown_seconds: 600,
        };
        let ended = |text| {
            Outcome::new(OutcomeKind::Transient, Cause::Reply).with_reply(Reply::new(421, text))
        };
        let busy = SessionVerdict::from_session_end(Some(&ended("4.7.0 Too many connections")));
        assert_eq!(busy, SessionVerdict::Healthy);
        let down = SessionVerdict::from_session_end(Some(&ended("Service not available")));
        let after = UpstreamHealth::default().after(&down, &settings, 0);
        assert!(after.is_cooling_down(1));
        // Kept back by the shaper: waits as long as it says, all recipients left.
        let kept = kept_back(&["a@x.net".into(), "b@x.net".into()], "h:25", 3);
        assert_eq!(kept.remaining.len(), 2);
        assert_eq!(
            policy.decide(&kept.result, 1, 10, 0.5),
            Decision::Retry {
                delay_seconds: 3,
                counts: false
            }
        );
        // Not past the lifetime.
        assert!(matches!(
            policy.decide(&kept.result, 1, 86_399, 0.5),
            Decision::Fail(_)
        ));
    }
}
