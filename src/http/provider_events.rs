//! `POST /v1/provider-events/{id}` without the HTTP: the body limit, the
//! answer to a request a provider's verification refused (naming the
//! header or field and the rule), and the summary of what was received.
//!
//! A refusal is 401 (no signature, a bad one, a stale one, a replayed
//! token, a topic not listed) or 400 (a body that is not the provider's
//! format), so the provider's own dashboard shows the failure; an endpoint
//! id that is not configured is 404.
//! Must not: perform I/O, verify anything itself (`inbound::providers`) or
//! decide what an event changes.

use serde::Serialize;

use crate::accept::BodyLimit;
use crate::accept::error::ApiError;
use crate::inbound::providers::{Provider, Refused, sendgrid};
use crate::inbound::record::Outcome;

/// The largest body read (1 MiB): SendGrid's batches are far smaller.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

pub fn body_limit() -> BodyLimit {
    BodyLimit {
        max_bytes: MAX_BODY_BYTES,
        source: "1 MiB for provider events",
    }
}

/// Where each provider puts its signature, and its signed time.
fn signature_field(provider: Provider) -> &'static str {
    match provider {
        Provider::Mailgun => "signature",
        Provider::SendGrid => sendgrid::SIGNATURE_HEADER,
        Provider::Postmark => "Authorization",
        Provider::Ses => "Signature",
    }
}

fn timestamp_field(provider: Provider) -> &'static str {
    match provider {
        Provider::Mailgun => "signature.timestamp",
        Provider::SendGrid => sendgrid::TIMESTAMP_HEADER,
        Provider::Postmark => "Authorization",
        Provider::Ses => "Timestamp",
    }
}

fn unauthorized(rule: &'static str, field: &str, message: String) -> ApiError {
    let mut e = ApiError::unauthorized(rule, message);
    e.field = Some(field.to_string());
    e
}

/// The answer to a request `provider`'s verification refused.
pub fn refusal(provider: Provider, refused: &Refused) -> ApiError {
    let name = provider.as_str();
    match refused {
        Refused::Unsigned => {
            let field = signature_field(provider);
            let what = match provider {
                Provider::SendGrid => format!("{field} and {}", sendgrid::TIMESTAMP_HEADER),
                _ => field.to_string(),
            };
            unauthorized(
                "missing_signature",
                field,
                format!("a {name} event must carry {what}"),
            )
        }
        Refused::BadSignature => {
            let rule = match provider {
                Provider::Postmark => "the credentials are not this endpoint's",
                _ => "it does not verify under this endpoint's keys",
            };
            unauthorized(
                "invalid_signature",
                signature_field(provider),
                format!("the {name} signature is refused: {rule}"),
            )
        }
        Refused::Stale => unauthorized(
            "stale_signature",
            timestamp_field(provider),
            refused.to_string(),
        ),
        Refused::Malformed(why) => {
            ApiError::malformed(format!("not a {name} event payload: {why}"))
        }
    }
}

/// A Mailgun token already taken: the request is a replay.
pub fn replayed() -> ApiError {
    unauthorized(
        "replayed_signature",
        "signature.token",
        "this signed token was already used; Mailgun signs each request with a new one".into(),
    )
}

/// An SNS message from a topic the endpoint does not list.
pub fn topic_not_listed() -> ApiError {
    unauthorized(
        "unknown_topic",
        "TopicArn",
        "the SNS topic is not one of this endpoint's topic_arns".into(),
    )
}

/// An SNS message whose certificate (or confirmation) URL is not Amazon
/// SNS's own.
pub fn url_not_allowed(field: &str) -> ApiError {
    unauthorized(
        "untrusted_url",
        field,
        format!("{field} must be an https URL of sns.<region>.amazonaws.com"),
    )
}

/// The answer to a request whose events were all handled.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Events in the request.
    pub received: usize,
    /// Events that changed their message.
    pub applied: usize,
    /// Events already known.
    pub duplicate: usize,
    /// Events kept as unmatched (see `/v1/inbound-reports`).
    pub unmatched: usize,
    /// Events edgerelay does not track (opens, clicks, ...).
    pub ignored: usize,
}

impl Summary {
    /// Counts one event's outcome (`None`: not tracked).
    pub fn count(&mut self, outcome: Option<Outcome>) {
        match outcome {
            Some(Outcome::Applied) => self.applied += 1,
            Some(Outcome::Duplicate) => self.duplicate += 1,
            Some(_) => self.unmatched += 1,
            None => self.ignored += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_name_the_field_and_rule() {
        // (provider, refusal, status, rule, field)
        let table: &[(Provider, Refused, u16, &str, Option<&str>)] = &[
            (
                Provider::SendGrid,
                Refused::Unsigned,
                401,
                "missing_signature",
                Some("X-Twilio-Email-Event-Webhook-Signature"),
            ),
            (
                Provider::Mailgun,
                Refused::BadSignature,
                401,
                "invalid_signature",
                Some("signature"),
            ),
            (
                Provider::Postmark,
                Refused::Unsigned,
                401,
                "missing_signature",
                Some("Authorization"),
            ),
            (
                Provider::SendGrid,
                Refused::Stale,
                401,
                "stale_signature",
                Some("X-Twilio-Email-Event-Webhook-Timestamp"),
            ),
            (
                Provider::Ses,
                Refused::Malformed("no Type".into()),
                400,
                "malformed_json",
                None,
            ),
        ];
        for (provider, refused, status, rule, field) in table {
            let e = refusal(*provider, refused);
            assert_eq!(
                (e.status, e.rule, e.field.as_deref()),
                (*status, *rule, *field),
                "{provider:?} {refused:?}"
            );
        }
        assert_eq!(replayed().status, 401);
        assert_eq!(topic_not_listed().field.as_deref(), Some("TopicArn"));
    }

    #[test]
    fn a_summary_counts_each_outcome() {
        let mut s = Summary::default();
        for o in [
            Some(Outcome::Applied),
            Some(Outcome::Unmatched),
            Some(Outcome::Duplicate),
            None,
            Some(Outcome::Applied),
        ] {
            s.received += 1;
            s.count(o);
        }
        assert_eq!(
            serde_json::to_value(&s).unwrap(),
            serde_json::json!({"received": 5, "applied": 2, "duplicate": 1, "unmatched": 1, "ignored": 1})
        );
    }
}
