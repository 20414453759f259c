//! The email handler: mail that Email Routing delivers to the worker (the
//! return-path domains' bounces and complaints, and whatever else is sent
//! there).
//!
//! A report is read bounded (its declared size first, then the bytes as
//! they stream), judged, and applied when trusted; one that matches
//! nothing, or cannot be read, is kept in the bucket and recorded with the
//! reason. Mail that is not a report is forwarded to `INBOUND_FORWARD_TO`,
//! or rejected. Everything leaves an `inbound_reports` record.
//! Must not: parse or judge anything itself (`inbound`), or apply effects
//! other than through `reports`.

use futures_util::StreamExt;
use worker::{Env, ForwardableEmailMessage, Result};

use crate::events::log_line::LogValue;
use crate::inbound::record::{
    Channel, Kind, Outcome, ReportRecord, domain_of, one_line, record_id,
};
use crate::inbound::{MAX_REPORT_BYTES, Report, Unreadable};

use super::d1::Db;
use super::log;
use super::platform::{load, now_ms};
use super::random;
use super::reports::{self, Applied};

/// What the sender's server is told when mail is refused.
const NOT_A_REPORT: &str =
    "this address takes delivery status notifications and complaint reports only";

/// Reads at most `limit` bytes of the message; `None` past it.
async fn read_bounded(message: &ForwardableEmailMessage, limit: usize) -> Result<Option<Vec<u8>>> {
    let mut stream = message.raw_byte_stream();
    let mut raw = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        if raw.len().saturating_add(chunk.len()) > limit {
            return Ok(None);
        }
        raw.extend_from_slice(&chunk);
    }
    Ok(Some(raw))
}

/// Handles one message. An error (the database or bucket unreachable)
/// is returned, so the handler fails rather than acknowledge mail it could
/// not record.
pub async fn receive(message: ForwardableEmailMessage, env: Env) -> Result<()> {
    let loaded = load(&env).map_err(|e| worker::Error::RustError(e.to_string()))?;
    let db = Db::open(&env)?;
    let id = record_id(&random::bytes());
    let rcpt_to = message.to();
    let size = message.raw_size().max(0.0) as u64;
    let subject = message
        .headers()
        .get("subject")
        .ok()
        .flatten()
        .map(|s| one_line(&s, 200));
    let mut record = ReportRecord {
        id: id.clone(),
        received_at_ms: now_ms(),
        channel: Channel::Email,
        kind: Kind::Other,
        outcome: Outcome::Rejected,
        reason: None,
        tenant: None,
        domain: domain_of(&rcpt_to).map(|d| loaded.settings.inbound.sender_domain_of(&d)),
        message_id: None,
        recipient: None,
        events: Vec::new(),
        mail_from: Some(one_line(&message.from(), 320)),
        rcpt_to: Some(one_line(&rcpt_to, 320)),
        subject,
        size,
        body_key: None,
    };
    let too_large = |size: usize| Unreadable::TooLarge {
        size,
        limit: MAX_REPORT_BYTES,
    };
    let raw = if size > MAX_REPORT_BYTES as u64 {
        None
    } else {
        read_bounded(&message, MAX_REPORT_BYTES).await?
    };
    let Some(raw) = raw else {
        let why = too_large(size as usize).to_string();
        message.set_reject(&why);
        record.kind = Kind::Unreadable;
        record.reason = Some(why);
        return reports::record(&db, &record).await;
    };
    match Report::parse(&raw) {
        Err(Unreadable::NotAReport(content_type)) => {
            record.reason = Some(format!("not a report ({content_type})"));
            match &loaded.settings.inbound.forward_to {
                Some(to) => match message.forward(to).await {
                    Ok(_) => record.outcome = Outcome::Forwarded,
                    Err(e) => {
                        log::error(
                            "could_not_forward_inbound_mail",
                            &[
                                ("report_id", LogValue::Id(&id.to_string())),
                                ("error", LogValue::Text(&format!("{e:?}"))),
                            ],
                        );
                        message.set_reject(NOT_A_REPORT);
                        record.reason =
                            Some(format!("not a report ({content_type}); forwarding failed"));
                    }
                },
                None => message.set_reject(NOT_A_REPORT),
            }
        }
        Err(unreadable) => {
            record.kind = Kind::Unreadable;
            record.outcome = Outcome::Unreadable;
            record.reason = Some(unreadable.to_string());
            record.body_key = reports::keep_raw(&env, &id, &raw).await;
            message.set_reject(&unreadable.to_string());
        }
        Ok(report) => {
            record.kind = match report {
                Report::Delivery(_) => Kind::Dsn,
                Report::Complaint(_) => Kind::Arf,
            };
            let applied: Applied = reports::judge_and_apply(
                &env,
                &db,
                &loaded.settings.queue_secrets,
                &report,
                &rcpt_to,
            )
            .await?;
            if applied.outcome == Outcome::Unmatched {
                record.body_key = reports::keep_raw(&env, &id, &raw).await;
            }
            record.outcome = applied.outcome;
            record.reason = applied.reason;
            record.tenant = applied.tenant;
            record.message_id = applied.message_id;
            record.recipient = applied.recipient;
            record.events = applied.events;
        }
    }
    reports::record(&db, &record).await
}
