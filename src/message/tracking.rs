//! What a send request asks of open and click tracking, validated.
//!
//! Tracking is off unless the request (or, later, its key's default) asks
//! for it, whatever the stream: marketing mail is not tracked by default any
//! more than transactional mail. Per-recipient tracking (a token naming the
//! recipient, whose opens and clicks become that recipient's events) needs
//! the recipient's consent; without it, or in `aggregate` mode, opens and
//! clicks are only counted.
//!
//! Consent lives in the `tracking` object (`true` for every recipient, or the
//! list of recipients who agreed) rather than on each address: the address
//! shape is shared with `from` and `reply_to`, where consent means nothing,
//! and a sender that keeps consent per contact sends one message (or batch
//! item) per contact anyway, giving `"consent": true` or `false` there.
//! Owns: the validated options and their rules (field and rule named).
//! Must not: make tokens or rewrite bodies (`events::tracking` does).

use super::address::EmailAddress;
use super::error::FieldError;
use super::request::{ConsentInput, TrackingInput};

/// Whether opens and clicks may be tied to a recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrackingMode {
    /// Per-recipient events for recipients who consented; counts for the rest.
    Recipient,
    /// Counts only: no token names a recipient, one body serves everyone.
    Aggregate,
}

impl TrackingMode {
    pub fn as_str(self) -> &'static str {
        match self {
            TrackingMode::Recipient => "recipient",
            TrackingMode::Aggregate => "aggregate",
        }
    }
}

/// Who agreed to per-recipient tracking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Consent {
    Nobody,
    Everyone,
    /// These recipients (each one of the message's).
    Only(Vec<EmailAddress>),
}

/// Tracking as asked for; at least one of `opens` and `clicks` is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tracking {
    pub opens: bool,
    pub clicks: bool,
    pub mode: TrackingMode,
    pub consent: Consent,
}

impl Tracking {
    /// Whether `recipient`'s opens and clicks may become its own events.
    pub fn per_recipient(&self, recipient: &EmailAddress) -> bool {
        self.mode == TrackingMode::Recipient
            && match &self.consent {
                Consent::Nobody => false,
                Consent::Everyone => true,
                Consent::Only(list) => list.iter().any(|a| a.dedup_key() == recipient.dedup_key()),
            }
    }
}

/// The tracking a request asks for (`None`: not tracked), or the problems,
/// each naming its field (`tracking.mode`, `tracking.consent[0]`) and rule.
/// `recipients` are the message's (to, cc, bcc).
pub fn validate(
    input: Option<&TrackingInput>,
    recipients: &[&EmailAddress],
    errors: &mut Vec<FieldError>,
) -> Option<Tracking> {
    let input = input?;
    let mode = match input.mode.as_deref() {
        None | Some("recipient") => TrackingMode::Recipient,
        Some("aggregate") => TrackingMode::Aggregate,
        Some(_) => {
            errors.push(FieldError::new(
                "tracking.mode",
                "invalid_value",
                "must be \"recipient\" (per-recipient events with consent) or \"aggregate\" (counts only)",
            ));
            TrackingMode::Recipient
        }
    };
    let consent = match &input.consent {
        None | Some(ConsentInput::All(false)) => Consent::Nobody,
        Some(ConsentInput::All(true)) => Consent::Everyone,
        Some(ConsentInput::Recipients(list)) => {
            let mut agreed = Vec::with_capacity(list.len());
            for (i, text) in list.iter().enumerate() {
                let field = format!("tracking.consent[{i}]");
                match EmailAddress::parse(text) {
                    Err(e) => errors.push(FieldError::new(
                        field,
                        "invalid_address",
                        format!("{e} ({})", e.rule()),
                    )),
                    Ok(a) if !recipients.iter().any(|r| r.dedup_key() == a.dedup_key()) => errors
                        .push(FieldError::new(
                            field,
                            "not_a_recipient",
                            "consent is given for recipients of this message (to, cc, bcc) only",
                        )),
                    Ok(a) => agreed.push(a),
                }
            }
            Consent::Only(agreed)
        }
    };
    if mode == TrackingMode::Aggregate && consent != Consent::Nobody {
        errors.push(FieldError::new(
            "tracking.consent",
            "not_with_aggregate",
            "aggregate mode ties no open or click to a recipient; leave consent out, or use mode \"recipient\"",
        ));
    }
    let opens = input.opens.unwrap_or(false);
    let clicks = input.clicks.unwrap_or(false);
    (opens || clicks).then_some(Tracking {
        opens,
        clicks,
        mode,
        consent,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(json: &str) -> TrackingInput {
        serde_json::from_str(json).unwrap()
    }

    fn run(json: &str) -> (Option<Tracking>, Vec<(String, &'static str)>) {
        let ada = EmailAddress::parse("ada@example.net").unwrap();
        let bob = EmailAddress::parse("bob@example.net").unwrap();
        let mut errors = Vec::new();
        let t = validate(Some(&input(json)), &[&ada, &bob], &mut errors);
        (t, errors.into_iter().map(|e| (e.field, e.rule)).collect())
    }

    #[test]
    fn off_unless_asked() {
        let mut errors = Vec::new();
        assert_eq!(validate(None, &[], &mut errors), None);
        assert_eq!(run("{}").0, None);
        assert_eq!(
            run(r#"{"opens": false, "clicks": false, "consent": true}"#).0,
            None
        );
    }

    #[test]
    fn rules_by_table() {
        let table: &[(&str, &[(&str, &str)])] = &[
            (
                r#"{"opens": true, "mode": "everyone"}"#,
                &[("tracking.mode", "invalid_value")],
            ),
            (
                r#"{"opens": true, "consent": ["nobody@example.net", "not an address"]}"#,
                &[
                    ("tracking.consent[0]", "not_a_recipient"),
                    ("tracking.consent[1]", "invalid_address"),
                ],
            ),
            (
                r#"{"clicks": true, "mode": "aggregate", "consent": true}"#,
                &[("tracking.consent", "not_with_aggregate")],
            ),
            (
                r#"{"clicks": true, "mode": "aggregate", "consent": false}"#,
                &[],
            ),
            (r#"{"clicks": true, "consent": ["BOB@example.net"]}"#, &[]),
        ];
        for (json, want) in table {
            let got = run(json).1;
            let want: Vec<(String, &str)> = want.iter().map(|(f, r)| (f.to_string(), *r)).collect();
            assert_eq!(got, want, "{json}");
        }
    }

    #[test]
    fn consent_decides_per_recipient_tracking() {
        let ada = EmailAddress::parse("ada@example.net").unwrap();
        let bob = EmailAddress::parse("bob@example.net").unwrap();
        let table: &[(&str, bool, bool)] = &[
            (r#"{"opens": true}"#, false, false),
            (r#"{"opens": true, "consent": false}"#, false, false),
            (r#"{"opens": true, "consent": true}"#, true, true),
            (
                r#"{"opens": true, "consent": ["Bob@Example.net"]}"#,
                false,
                true,
            ),
            (r#"{"opens": true, "mode": "aggregate"}"#, false, false),
        ];
        for (json, for_ada, for_bob) in table {
            let t = run(json).0.unwrap();
            assert_eq!(t.per_recipient(&ada), *for_ada, "{json}");
            assert_eq!(t.per_recipient(&bob), *for_bob, "{json}");
        }
    }
}
