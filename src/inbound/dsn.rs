//! Delivery status notifications (RFC 3464): which recipients of which
//! message failed, were delayed, or were delivered, and what the receiving
//! server said.
//!
//! Owns: reading the report part (per-message and per-recipient fields), the
//! returned headers' Message-ID, and what each recipient's report means as an
//! event (`email.bounced` hard or soft, `email.delivery_delayed`,
//! `email.delivered`). Must not: trust the report; the caller matches it to
//! a message first.

use mail_parser::{Message, MimeHeaders, PartType};

use crate::events::{BounceClass, EventType};

use super::fields::{self, Block, is_enhanced_code};
use super::unreadable::{MAX_REPORT_RECIPIENTS, Unreadable};

/// What the reporting server did for one recipient (RFC 3464 §2.3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Failed,
    Delayed,
    Delivered,
    /// Passed on to a system that sends no reports: not final delivery.
    Relayed,
    /// Delivered to a list or alias that forwards it on.
    Expanded,
}

impl Action {
    fn parse(value: &str) -> Option<Action> {
        // The value may carry a comment: `failed (bad address)`.
        let word = value.split_whitespace().next()?.to_ascii_lowercase();
        Some(match word.as_str() {
            "failed" => Action::Failed,
            "delayed" => Action::Delayed,
            "delivered" => Action::Delivered,
            "relayed" => Action::Relayed,
            "expanded" => Action::Expanded,
            _ => return None,
        })
    }
}

/// One recipient's report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientReport {
    /// `Final-Recipient`: the address the reporting server tried.
    pub final_recipient: String,
    /// `Original-Recipient`: the ORCPT edgerelay sent, when echoed.
    pub original_recipient: Option<String>,
    pub action: Action,
    /// `Status`: the enhanced status code, e.g. `5.1.1`.
    pub status: String,
    /// `Diagnostic-Code` without its type, e.g. `550 5.1.1 <x>: user unknown`.
    pub diagnostic: Option<String>,
    /// `Remote-MTA` without its type.
    pub remote_mta: Option<String>,
}

/// A whole delivery status notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryReport {
    /// `Original-Envelope-Id`: the ENVID edgerelay sent (its message id).
    pub envelope_id: Option<String>,
    /// `Reporting-MTA` without its type.
    pub reporting_mta: Option<String>,
    pub recipients: Vec<RecipientReport>,
    /// The Message-ID of the returned message or headers, if any.
    pub original_message_id: Option<String>,
}

/// The SMTP reply in a diagnostic: its code, enhanced code and text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiagnosticReply {
    pub code: u16,
    pub enhanced: Option<String>,
    pub text: String,
}

impl RecipientReport {
    /// The address to match against the message's recipients: the
    /// original recipient when the report echoes it, else the final one.
    pub fn recipient(&self) -> &str {
        self.original_recipient
            .as_deref()
            .unwrap_or(&self.final_recipient)
    }

    /// The reply the diagnostic quotes, when it is an SMTP reply; otherwise
    /// one made from the status (`5.x.x` as 550, `4.x.x` as 450).
    pub fn reply(&self) -> DiagnosticReply {
        let quoted = self.diagnostic.as_deref().and_then(|d| {
            let (code, rest) = d.split_once(' ').unwrap_or((d, ""));
            let code: u16 = code.parse().ok().filter(|c| (200..600).contains(c))?;
            let mut rest = rest.trim();
            let enhanced = rest
                .split_whitespace()
                .next()
                .filter(|w| is_enhanced_code(w))
                .map(|w| {
                    rest = rest.get(w.len()..).unwrap_or_default().trim();
                    w.to_string()
                });
            Some(DiagnosticReply {
                code,
                enhanced,
                text: rest.to_string(),
            })
        });
        quoted.unwrap_or_else(|| DiagnosticReply {
            code: match self.status.chars().next() {
                Some('5') => 550,
                Some('4') => 450,
                _ => 250,
            },
            enhanced: Some(self.status.clone()),
            text: self.diagnostic.clone().unwrap_or_default(),
        })
    }

    /// How a failure is classed: from the report's `Status` (which is the
    /// reporting server's own verdict) and the diagnostic's text.
    pub fn bounce_class(&self) -> BounceClass {
        if self.action != Action::Failed {
            return BounceClass::Transient;
        }
        let reply = self.reply();
        let code = if self.status.starts_with('5') {
            reply.code.clamp(500, 599)
        } else {
            reply.code
        };
        let enhanced = if is_enhanced_code(&self.status) {
            Some(self.status.as_str())
        } else {
            reply.enhanced.as_deref()
        };
        BounceClass::of(code, enhanced, &reply.text)
    }

    /// The event the report is evidence of, if any: relayed and expanded
    /// are not final delivery, and a `failed` that is not permanent (a
    /// contradiction some servers write) is a delay.
    pub fn event_type(&self) -> Option<EventType> {
        match self.action {
            Action::Failed => Some(match self.bounce_class() {
                BounceClass::Hard | BounceClass::Soft => EventType::Bounced,
                BounceClass::Transient => EventType::DeliveryDelayed,
            }),
            Action::Delayed => Some(EventType::DeliveryDelayed),
            Action::Delivered => Some(EventType::Delivered),
            Action::Relayed | Action::Expanded => None,
        }
    }
}

/// The text of a part as a string, whatever the parser made of it.
pub(super) fn part_text(body: &PartType<'_>) -> Option<String> {
    match body {
        PartType::Text(t) | PartType::Html(t) => Some(t.to_string()),
        PartType::Binary(b) | PartType::InlineBinary(b) => {
            Some(String::from_utf8_lossy(b).into_owned())
        }
        PartType::Message(m) => Some(String::from_utf8_lossy(m.raw_message()).into_owned()),
        PartType::Multipart(_) => None,
    }
}

fn without_type(value: &str) -> String {
    value
        .split_once(';')
        .map(|(_, v)| v)
        .unwrap_or(value)
        .trim()
        .to_string()
}

pub(super) fn read(message: &Message<'_>) -> Result<DeliveryReport, Unreadable> {
    let status_part = message
        .parts
        .iter()
        .find(|p| {
            p.is_content_type("message", "delivery-status")
                || p.is_content_type("message", "global-delivery-status")
        })
        .ok_or_else(|| Unreadable::Malformed("no delivery-status part".into()))?;
    let body = part_text(&status_part.body)
        .ok_or_else(|| Unreadable::Malformed("the delivery-status part is empty".into()))?;
    let blocks = fields::blocks(&body, MAX_REPORT_RECIPIENTS + 1);
    let Some((per_message, per_recipient)) = blocks.split_first() else {
        return Err(Unreadable::Malformed(
            "the delivery-status part has no fields".into(),
        ));
    };
    let recipients: Vec<RecipientReport> = per_recipient.iter().filter_map(recipient).collect();
    if recipients.is_empty() {
        return Err(Unreadable::Malformed(
            "no recipient with an Action and a Status".into(),
        ));
    }
    Ok(DeliveryReport {
        envelope_id: fields::get(per_message, "Original-Envelope-Id").map(fields::xtext_decode),
        reporting_mta: fields::get(per_message, "Reporting-MTA").map(without_type),
        recipients,
        original_message_id: returned_message_id(message),
    })
}

fn recipient(block: &Block) -> Option<RecipientReport> {
    Some(RecipientReport {
        final_recipient: fields::typed_address(fields::get(block, "Final-Recipient")?, false),
        original_recipient: fields::get(block, "Original-Recipient")
            .map(|v| fields::typed_address(v, true)),
        action: Action::parse(fields::get(block, "Action")?)?,
        status: fields::get(block, "Status")?
            .split_whitespace()
            .next()?
            .to_string(),
        diagnostic: fields::get(block, "Diagnostic-Code").map(without_type),
        remote_mta: fields::get(block, "Remote-MTA").map(without_type),
    })
}

/// The Message-ID of the returned message (`message/rfc822`) or headers
/// (`text/rfc822-headers`).
fn returned_message_id(message: &Message<'_>) -> Option<String> {
    for part in &message.parts {
        if let PartType::Message(returned) = &part.body
            && let Some(id) = returned.message_id()
        {
            return Some(id.to_string());
        }
        if part.is_content_type("text", "rfc822-headers")
            && let Some(text) = part_text(&part.body)
        {
            let headers = fields::blocks(&text, 1);
            if let Some(id) = headers.first().and_then(|b| fields::get(b, "Message-ID")) {
                return Some(id.trim_start_matches('<').trim_end_matches('>').to_string());
            }
        }
    }
    None
}
