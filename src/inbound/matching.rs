//! Matching a report to the message it is about, and what it may change.
//!
//! Anyone can mail a bounce or a complaint, so a report changes nothing
//! unless it names one of edgerelay's messages in a way only edgerelay can
//! write: the signed return-path token it came back to (or that a complaint
//! quotes as the original MAIL FROM), or the signed envelope id (`ENVID`) a
//! delivery report quotes. The message id alone (a bare ENVID, or a
//! returned Message-ID) is not proof: every recipient sees it in the
//! `Message-ID` header. Such a report is kept as unmatched, with the reason.
//! Where the naming does not say which recipient (an ENVID, or a return
//! path shared by all of a message's recipients), the report's own
//! recipients must be among the message's.
//! Owns: which namings a report carries, and the effects of a trusted one.
//! Must not: look anything up (the caller fetches the message a naming
//! names) or record anything.

use crate::events::suppression::Reason;
use crate::events::{BounceClass, EventType, MessageFacts};
use crate::queue::QueueSecrets;

use super::dsn::DiagnosticReply;
use super::envelope_id;
use super::return_path::{ReturnPathClaim, WHOLE_MESSAGE};
use super::{DeliveryReport, Report};

/// How a report names a message, most trusted first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Naming {
    /// A return-path token that verified: the message, and the recipient
    /// unless it is [`WHOLE_MESSAGE`].
    ReturnPath(ReturnPathClaim),
    /// A signed envelope id that verified: the message.
    Envelope(String),
    /// A message id the report quotes (a bare ENVID or a Message-ID): not
    /// proof.
    Unsigned(String),
}

impl Naming {
    /// The message it names.
    pub fn message_id(&self) -> &str {
        match self {
            Naming::ReturnPath(c) => &c.message_id,
            Naming::Envelope(id) | Naming::Unsigned(id) => id,
        }
    }

    /// Whether only edgerelay could have written it.
    pub fn is_signed(&self) -> bool {
        !matches!(self, Naming::Unsigned(_))
    }
}

/// Where the evidence of an effect came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A delivery status notification mailed back.
    Dsn,
    /// A complaint (ARF) report mailed back.
    Arf,
    /// A smarthost provider's own event webhook.
    Provider(crate::inbound::providers::Provider),
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Dsn => "dsn",
            Source::Arf => "arf",
            Source::Provider(p) => p.as_str(),
        }
    }
}

/// One change a trusted report makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Effect {
    pub message_id: String,
    pub tenant: String,
    /// The recipient, spelled as the message was accepted with it.
    pub recipient: String,
    pub event: EventType,
    pub reply: Option<DiagnosticReply>,
    pub bounce: Option<BounceClass>,
    /// The suppression to add (scope all), if any.
    pub suppress: Option<Reason>,
    pub source: Source,
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

fn bare_address(address: &str) -> &str {
    address.trim().trim_start_matches('<').trim_end_matches('>')
}

/// The message's own spelling of `address`, when it is one of its
/// recipients (compared without case, as mailbox providers do).
pub fn recipient_of<'a>(facts: &'a MessageFacts, address: &str) -> Option<&'a str> {
    let address = bare_address(address);
    facts
        .to
        .iter()
        .find(|r| r.eq_ignore_ascii_case(address))
        .map(String::as_str)
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
                None,
                d.original_message_id.as_deref().map(bare_id),
            ],
        ),
        Report::Complaint(c) => (
            c.original_mail_from.clone(),
            [
                c.envelope_id.clone(),
                c.feedback_id.clone(),
                c.message_id.as_deref().map(bare_id),
            ],
        ),
    };
    if let Some(address) = return_path
        && let Ok(claim) = ReturnPathClaim::open(local_part(&address), secrets)
    {
        out.push(Naming::ReturnPath(claim));
    }
    for quoted in quoted.into_iter().flatten().filter(|id| !id.is_empty()) {
        let naming = match envelope_id::open(&quoted, secrets) {
            Some(id) => Naming::Envelope(id),
            None => Naming::Unsigned(envelope_id::claimed_id(&quoted).to_string()),
        };
        match out
            .iter_mut()
            .find(|n| n.message_id() == naming.message_id())
        {
            // A signed naming of the same message is worth more than a
            // bare one quoted before it.
            Some(seen) if !seen.is_signed() && naming.is_signed() => *seen = naming,
            Some(_) => {}
            None => out.push(naming),
        }
    }
    out
}

/// The effects of `report` on the message `naming` names (`stored`, as the
/// caller found it for that naming's id).
pub fn judge(report: &Report, naming: &Naming, stored: Option<&MessageFacts>) -> Verdict {
    // The recipient the naming itself says, if it says one.
    let named_index = match naming {
        Naming::ReturnPath(claim) if claim.recipient_index != WHOLE_MESSAGE => {
            Some(usize::from(claim.recipient_index))
        }
        Naming::ReturnPath(_) | Naming::Envelope(_) => None,
        Naming::Unsigned(id) => {
            return Verdict::Unmatched(format!(
                "names message {id} only by its id, which every recipient can see; \
                 not trusted without a signed return path or envelope id"
            ));
        }
    };
    let Some(stored) = stored.filter(|s| s.id == naming.message_id()) else {
        return Verdict::Unmatched(format!("no message {}", naming.message_id()));
    };
    let named = match named_index {
        Some(i) => match stored.to.get(i) {
            Some(r) => Some(r.as_str()),
            None => {
                return Verdict::Unmatched(
                    "the return path names no recipient of the message".into(),
                );
            }
        },
        None => None,
    };
    let effect = |recipient: &str, event, reply, bounce, suppress, source| Effect {
        message_id: stored.id.clone(),
        tenant: stored.tenant.clone(),
        recipient: recipient.to_string(),
        event,
        reply,
        bounce,
        suppress,
        source,
    };
    let effects: Vec<Effect> = match report {
        Report::Delivery(d) => delivery_effects(d, stored, named)
            .into_iter()
            .map(|(recipient, event, reply, bounce)| {
                let suppress = bounce
                    .filter(|b| b.suppresses())
                    .map(|_| Reason::HardBounce);
                effect(recipient, event, Some(reply), bounce, suppress, Source::Dsn)
            })
            .collect(),
        Report::Complaint(c) if c.is_spam_complaint() => {
            let about = named
                .or_else(|| {
                    c.original_rcpt_to
                        .as_deref()
                        .and_then(|r| recipient_of(stored, r))
                })
                .or(match stored.to.as_slice() {
                    [only] => Some(only.as_str()),
                    _ => None,
                });
            let Some(about) = about else {
                return Verdict::Unmatched(
                    "the complaint does not say which of the message's recipients made it".into(),
                );
            };
            vec![effect(
                about,
                EventType::Complained,
                None,
                None,
                Some(Reason::Complaint),
                Source::Arf,
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
        Verdict::Unmatched("the report says nothing final about the message's recipients".into())
    } else {
        Verdict::Apply(effects)
    }
}

/// The DSN's word on the message's recipients. With a recipient named by
/// the return path: its block, or, when the report holds exactly one
/// recipient (a forwarded or aliased address reported under its final
/// name), that one. Without: every block about one of the message's
/// recipients.
fn delivery_effects<'a>(
    d: &DeliveryReport,
    stored: &'a MessageFacts,
    named: Option<&'a str>,
) -> Vec<(&'a str, EventType, DiagnosticReply, Option<BounceClass>)> {
    let about: Vec<(&str, _)> = match named {
        Some(named) => {
            let exact: Vec<_> = d
                .recipients
                .iter()
                .filter(|r| bare_address(r.recipient()).eq_ignore_ascii_case(named))
                .map(|r| (named, r))
                .collect();
            if exact.is_empty() && d.recipients.len() == 1 {
                d.recipients.iter().map(|r| (named, r)).collect()
            } else {
                exact
            }
        }
        None => d
            .recipients
            .iter()
            .filter_map(|r| recipient_of(stored, r.recipient()).map(|a| (a, r)))
            .collect(),
    };
    about
        .into_iter()
        .filter_map(|(address, r)| {
            let event = r.event_type()?;
            let bounce = (event == EventType::Bounced).then(|| r.bounce_class());
            Some((address, event, r.reply(), bounce))
        })
        .collect()
}

#[cfg(test)]
mod tests;
