//! `POST /v1/messages?dry_run=true`: the parameter's rules and the answer.
//!
//! A dry run goes through the real accept path up to the signed copies
//! (`accept::send::prepare_from`, then signing) and stops before the
//! commit: the answer shows each copy's signed MIME and envelope exactly as
//! a real send with the same id and time would hand them to delivery, and
//! the lint of `message::lint`. Nothing is stored, enqueued or delivered, an
//! `Idempotency-Key` is neither claimed nor recorded, and the request counts
//! against no limit.
//! Owns: parsing `dry_run` and the
//! `200` answer's shape. Must not: perform I/O or decide what is linted.

use serde_json::{Value, json};

use crate::accept::error::ApiError;
use crate::accept::send::Signed;
use crate::events::unsubscribe::StreamKind;
use crate::message::lint::dns::{self, TxtAnswer};
use crate::message::lint::{Finding, LintContext, lint};

use super::listing::single_parameter;

/// The query parameter.
pub const PARAMETER: &str = "dry_run";

/// The `object` of the answer.
pub const OBJECT: &str = "dry_run";

/// Whether the request is a dry run: `dry_run=true`, or `false` (the same
/// as leaving it out). Any other value, or a repeated parameter, is a 422
/// naming it. With `delivery=immediate` a dry run delivers nothing either;
/// it refuses what an immediate send refuses
/// ([`DeliveryMode::admits_copies`](super::delivery_mode::DeliveryMode::admits_copies)).
pub fn from_query<'a>(
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<bool, ApiError> {
    match single_parameter(pairs, PARAMETER, "invalid_dry_run")? {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => Err(ApiError::invalid_field(
            PARAMETER,
            "invalid_dry_run",
            format!("must be `true` or `false`, not `{other}`"),
        )),
    }
}

fn finding_json(f: &Finding) -> Value {
    let mut v = json!({
        "rule": f.rule.as_str(),
        "severity": f.severity.as_str(),
        "message": f.message,
    });
    if let Some(field) = f.field {
        v["field"] = json!(field);
    }
    v
}

/// The From domain of a signed message and the DNS names its lint asks
/// about (see `message::lint::dns`); `None` when it has no From domain.
pub fn dns_names(signed: &Signed) -> Option<(String, Vec<String>)> {
    let from = signed.jobs.first()?.from.as_deref()?;
    let addr = from.rsplit_once('<').map_or(from, |(_, a)| a);
    let domain = addr.trim().trim_end_matches('>').rsplit_once('@')?.1;
    let domain = domain.trim().to_ascii_lowercase();
    (!domain.is_empty()).then(|| {
        let names = dns::names(&domain);
        (domain, names)
    })
}

/// The `200` answer for a signed message that was not committed. `mime`
/// and `envelope` are the first copy's (the only one's, for a message of
/// one copy); a message sent as one copy per recipient also lists every
/// copy under `copies`. The lint covers every copy, each finding once.
/// `dns`: the From domain and the resolver's answers for [`dns_names`],
/// whose DMARC and BIMI findings join the lint.
pub fn answer(signed: &Signed, dns: Option<(&str, &[(String, TxtAnswer)])>) -> Value {
    let marketing = signed.stream_kind == StreamKind::Marketing;
    let mut findings: Vec<Finding> = Vec::new();
    if let Some((domain, answers)) = dns {
        findings.extend(dns::findings(domain, answers, marketing));
    }
    for job in &signed.jobs {
        let context = LintContext {
            marketing,
            needs_smtputf8: job.smtputf8,
        };
        for f in lint(job.mime.as_bytes(), context) {
            if !findings.contains(&f) {
                findings.push(f);
            }
        }
    }
    let copy = |job: &crate::queue::DeliveryJob| {
        json!({
            "id": job.id,
            "mime": job.mime,
            "envelope": {"mail_from": job.mail_from, "rcpt_to": job.rcpt_to},
        })
    };
    let first = signed.jobs.first().map(copy).unwrap_or_else(|| json!({}));
    let mut body = json!({
        "object": OBJECT,
        "id": signed.id,
        "mime": first["mime"],
        "envelope": first["envelope"],
        "lint": findings.iter().map(finding_json).collect::<Vec<_>>(),
        "warnings": signed.warnings,
    });
    if signed.jobs.len() > 1 {
        body["copies"] = signed.jobs.iter().map(copy).collect();
    }
    body
}

#[cfg(test)]
mod tests;
