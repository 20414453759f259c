//! Matching a report to the message it is about, and what it may change.
//!
//! Anyone can mail a bounce or a complaint, so a report changes nothing
//! unless it names one of edgerelay's messages in a way only edgerelay can
//! write: the signed return-path token it came back to (or that a complaint
//! quotes as the original MAIL FROM). The message id alone (an ENVID, or a
//! returned Message-ID) is not proof: every recipient sees it in the
//! `Message-ID` header. Such a report is kept as unmatched, with the reason.
//! Owns: which namings a report carries, and the effects of a trusted one.
//! Must not: look anything up (the caller fetches the message a naming
//! names) or record anything.

use crate::events::suppression::Reason;
use crate::events::{BounceClass, EventType};
use crate::queue::QueueSecrets;

use super::dsn::DiagnosticReply;
use super::return_path::ReturnPathClaim;
use super::{DeliveryReport, Report};

/// How a report names a message, most trusted first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Naming {
    /// A return-path token that verified: message and recipient.
    ReturnPath(ReturnPathClaim),
    /// A message id the report quotes (ENVID or Message-ID): not proof.
    Unsigned(String),
}

impl Naming {
    /// The message it names.
    pub fn message_id(&self) -> &str {
        match self {
            Naming::ReturnPath(c) => &c.message_id,
            Naming::Unsigned(id) => id,
        }
    }
}

/// What the caller found for a naming's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub id: String,
    pub tenant: String,
    /// The recipients as accepted, in order (the token's index counts here).
    pub rcpt_to: Vec<String>,
}

/// One change a trusted report makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Effect {
    pub message_id: String,
    pub tenant: String,
    pub recipient: String,
    pub event: EventType,
    pub reply: Option<DiagnosticReply>,
    pub bounce: Option<BounceClass>,
    /// The suppression to add (scope all), if any.
    pub suppress: Option<Reason>,
}

/// What to do with a report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Apply(Vec<Effect>),
    /// Keep it, visible, with why it changed nothing.
    Unmatched(String),
}

fn local_part(address: &str) -> &str {
    let address = address.trim().trim_start_matches('<').trim_end_matches('>');
    address.rsplit_once('@').map_or(address, |(local, _)| local)
}

fn bare_id(message_id: &str) -> String {
    let id = message_id
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>');
    id.split_once('@').map_or(id, |(left, _)| left).to_string()
}

/// The namings a report carries: the return path it was delivered to (a
/// bounce) or quotes (a complaint's original MAIL FROM), then the ids it
/// quotes.
pub fn namings(report: &Report, delivered_to: &str, secrets: &QueueSecrets) -> Vec<Naming> {
    let mut out = Vec::new();
    let (return_path, quoted) = match report {
        Report::Delivery(d) => (
            Some(delivered_to.to_string()),
            [
                d.envelope_id.clone(),
                d.original_message_id.as_deref().map(bare_id),
            ],
        ),
        Report::Complaint(c) => (
            c.original_mail_from.clone(),
            [c.envelope_id.clone(), c.message_id.as_deref().map(bare_id)],
        ),
    };
    if let Some(address) = return_path
        && let Ok(claim) = ReturnPathClaim::open(local_part(&address), secrets)
    {
        out.push(Naming::ReturnPath(claim));
    }
    for id in quoted.into_iter().flatten().filter(|id| !id.is_empty()) {
        if !out.iter().any(|n| n.message_id() == id) {
            out.push(Naming::Unsigned(id));
        }
    }
    out
}

/// The effects of `report` on the message `naming` names (`stored`, as the
/// caller found it for that naming's tenant-free id).
pub fn judge(report: &Report, naming: &Naming, stored: Option<&Stored>) -> Verdict {
    let claim = match naming {
        Naming::ReturnPath(claim) => claim,
        Naming::Unsigned(id) => {
            return Verdict::Unmatched(format!(
                "names message {id} only by its id, which every recipient can see; \
                 not trusted without a signed return path"
            ));
        }
    };
    let Some(stored) = stored.filter(|s| s.id == claim.message_id) else {
        return Verdict::Unmatched(format!("no message {}", claim.message_id));
    };
    let Some(named) = stored.rcpt_to.get(usize::from(claim.recipient_index)) else {
        return Verdict::Unmatched("the return path names no recipient of the message".into());
    };
    let effect = |event, reply, bounce, suppress| Effect {
        message_id: stored.id.clone(),
        tenant: stored.tenant.clone(),
        recipient: named.clone(),
        event,
        reply,
        bounce,
        suppress,
    };
    let effects: Vec<Effect> = match report {
        Report::Delivery(d) => delivery_effects(d, named)
            .into_iter()
            .map(|(event, reply, bounce)| {
                let suppress = bounce
                    .filter(|b| b.suppresses())
                    .map(|_| Reason::HardBounce);
                effect(event, Some(reply), bounce, suppress)
            })
            .collect(),
        Report::Complaint(c) if c.is_spam_complaint() => {
            vec![effect(
                EventType::Complained,
                None,
                None,
                Some(Reason::Complaint),
            )]
        }
        Report::Complaint(c) => {
            return Verdict::Unmatched(format!(
                "a `{}` feedback report is not a complaint",
                c.feedback_type
            ));
        }
    };
    if effects.is_empty() {
        Verdict::Unmatched("the report says nothing final about the recipient".into())
    } else {
        Verdict::Apply(effects)
    }
}

/// The DSN's word on the recipient the return path names: its block for
/// that address, or, when the report holds exactly one recipient (a
/// forwarded or aliased address reported under its final name), that one.
fn delivery_effects(
    d: &DeliveryReport,
    named: &str,
) -> Vec<(EventType, DiagnosticReply, Option<BounceClass>)> {
    let about: Vec<_> = d
        .recipients
        .iter()
        .filter(|r| r.recipient().eq_ignore_ascii_case(named))
        .collect();
    let about = if about.is_empty() && d.recipients.len() == 1 {
        d.recipients.iter().collect()
    } else {
        about
    };
    about
        .into_iter()
        .filter_map(|r| {
            let event = r.event_type()?;
            let bounce = (event == EventType::Bounced).then(|| r.bounce_class());
            Some((event, r.reply(), bounce))
        })
        .collect()
}

#[cfg(test)]
mod tests;
