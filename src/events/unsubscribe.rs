//! One-click unsubscribe (RFC 8058): message streams, the stateless token in
//! each recipient's link, the pages, and what an unsubscribe records.
//!
//! ```text
//! send:  stream::choose ─> one copy per recipient, each with token::issue
//!        ─> message::unsubscribe headers (DKIM over-signed) + {{unsubscribe_url}}
//! GET  /unsubscribe/{token}              page::confirm (changes nothing)
//! GET  /unsubscribe/{token}/preferences  page::preferences (per topic)
//! POST /unsubscribe/{token}              one_click::parse ─> decide ─> Unsubscribe
//!        (the edge writes the suppression row and `email.unsubscribed`; 200, never a redirect)
//! ```
//!
//! Owns: the rules from a request on those routes to the page to show or the
//! unsubscribe to record, and every refusal with its status and rule. Must
//! not: perform I/O, read the clock, or trust anything in the request but the
//! token (no cookie, no credential: RFC 8058 POSTs carry none).

pub mod one_click;
pub mod page;
pub mod settings;
pub mod stream;
pub mod token;

pub use one_click::ScopeChoice;
pub use settings::UnsubscribeSettings;
pub use stream::{StreamChoice, StreamKind};
pub use token::{Claim, TokenError, TokenSecrets};

use serde_json::{Map, Value, json};

use self::one_click::OneClickError;
use self::stream::TRANSACTIONAL;
use super::model::{EmailEvent, EventType, event_id};
use super::suppression::Reason;

/// The reason a suppression row from an unsubscribe carries.
pub const REASON: Reason = Reason::Unsubscribe;

/// A request the unsubscribe routes do not take, or a link that does not
/// open: the status, a stable rule and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub rule: &'static str,
    pub message: String,
}

impl Refusal {
    fn new(status: u16, rule: &'static str, message: impl Into<String>) -> Self {
        Refusal {
            status,
            rule,
            message: message.into(),
        }
    }
}

/// What a one-click POST records: a suppression row of this scope for this
/// tenant and address, and an `email.unsubscribed` event on the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsubscribe {
    pub tenant: String,
    pub key_id: String,
    /// Lower-cased, as suppressions are kept.
    pub address: String,
    /// `stream:<name>` or `topic:<name>`.
    pub scope: String,
    pub stream: String,
    pub topic: Option<String>,
    pub message_id: String,
}

/// The claim of the link, or the refusal (404: there is nothing at a link
/// edgerelay did not make).
pub fn open(settings: &UnsubscribeSettings, token: &str) -> Result<Claim, Refusal> {
    let secrets = settings.secrets.as_ref().ok_or_else(|| {
        Refusal::new(
            404,
            "unsubscribe_not_configured",
            "unsubscribe links are not configured on this relay",
        )
    })?;
    secrets.open(token).map_err(|e| match e {
        TokenError::Malformed | TokenError::FieldTooLong => {
            Refusal::new(404, "malformed_unsubscribe_link", e.to_string())
        }
        TokenError::UnknownVersion | TokenError::Forged => Refusal::new(
            404,
            "invalid_unsubscribe_link",
            "this unsubscribe link was not made by this relay, or was altered; use the link from the message itself",
        ),
    })
}

/// A one-click POST: the token, then the body; the unsubscribe to record.
pub fn on_post(
    settings: &UnsubscribeSettings,
    token: &str,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<Unsubscribe, Refusal> {
    let claim = open(settings, token)?;
    let choice = one_click::parse(content_type, body).map_err(|e| match e {
        OneClickError::UnsupportedMediaType(_) => {
            Refusal::new(415, "unsupported_media_type", e.to_string())
        }
        OneClickError::MissingOneClick => Refusal::new(400, "one_click_required", e.to_string()),
        OneClickError::UnknownScope => Refusal::new(400, "invalid_scope", e.to_string()),
        OneClickError::TooLarge => Refusal::new(413, "too_large", e.to_string()),
    })?;
    decide(&claim, choice)
}

/// The unsubscribe a claim and a choice of scope make.
pub fn decide(claim: &Claim, choice: ScopeChoice) -> Result<Unsubscribe, Refusal> {
    let topic = match (choice, &claim.topic) {
        (ScopeChoice::AsLinked | ScopeChoice::Topic, Some(topic)) => Some(topic.clone()),
        (ScopeChoice::Topic, None) => {
            return Err(Refusal::new(
                400,
                "invalid_scope",
                "this link names no topic: post without scope to leave its stream; nothing was changed",
            ));
        }
        (ScopeChoice::AsLinked | ScopeChoice::Stream, _) => None,
    };
    if topic.is_none() && claim.stream == TRANSACTIONAL {
        return Err(Refusal::new(
            400,
            "invalid_scope",
            "transactional mail as a whole cannot be left from a link; nothing was changed",
        ));
    }
    Ok(Unsubscribe {
        tenant: claim.tenant.clone(),
        key_id: claim.key_id.clone(),
        address: claim.recipient.to_lowercase(),
        scope: stream::scope(&claim.stream, topic.as_deref()),
        stream: claim.stream.clone(),
        topic,
        message_id: claim.message_id.clone(),
    })
}

/// The `email.unsubscribed` event of an unsubscribe, with the stable
/// payload's fields (`from` and `subject` from the message, when it is still
/// stored) and `unsubscribe: {scope}` added.
pub fn unsubscribed_event(
    u: &Unsubscribe,
    from: Option<&str>,
    subject: Option<&str>,
    at_ms: u64,
    id_entropy: &[u8; 16],
) -> EmailEvent {
    let mut data = Map::new();
    data.insert("email_id".into(), json!(u.message_id));
    data.insert("from".into(), json!(from));
    data.insert("to".into(), json!([u.address]));
    data.insert("subject".into(), json!(subject));
    data.insert("stream".into(), json!(u.stream));
    if let Some(topic) = &u.topic {
        data.insert("topic".into(), json!(topic));
    }
    data.insert("tags".into(), Value::Object(Map::new()));
    data.insert("metadata".into(), Value::Null);
    data.insert("recipient".into(), json!(u.address));
    data.insert("unsubscribe".into(), json!({"scope": u.scope}));
    EmailEvent {
        id: event_id(id_entropy),
        tenant: u.tenant.clone(),
        message_id: u.message_id.clone(),
        recipient: Some(u.address.clone()),
        event_type: EventType::Unsubscribed,
        created_at_ms: at_ms,
        data,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "unsubscribe-secret-0123456789abcdef";
    const FORM: Option<&str> = Some("application/x-www-form-urlencoded");
    const ONE_CLICK: &[u8] = b"List-Unsubscribe=One-Click";

    fn settings() -> UnsubscribeSettings {
        UnsubscribeSettings {
            secrets: Some(TokenSecrets::parse(SECRET).unwrap()),
            base_url: Some("https://mail.example.com".into()),
        }
    }

    fn claim(stream: &str, topic: Option<&str>, recipient: &str) -> Claim {
        Claim {
            tenant: "acme".into(),
            key_id: "backend".into(),
            stream: stream.into(),
            topic: topic.map(str::to_string),
            recipient: recipient.into(),
            message_id: "m1".into(),
        }
    }

    fn token(claim: &Claim) -> String {
        settings()
            .secrets
            .unwrap()
            .issue(claim, &[5; token::NONCE_LEN])
            .unwrap()
    }

    /// (claim, body, the address and scope recorded, or the status and rule).
    type PostRow<'a> = (
        &'a Claim,
        &'a [u8],
        Result<(&'a str, &'a str), (u16, &'a str)>,
    );
    /// (token, content type, body, status, rule).
    type RefusalRow<'a> = (&'a str, Option<&'a str>, &'a [u8], u16, &'a str);

    #[test]
    fn a_one_click_post_records_the_linked_scope_for_the_linked_address() {
        let ada = claim("marketing", None, "Ada@Example.com");
        let weekly = claim("newsletter", Some("weekly"), "bob@example.com");
        let tips = claim("transactional", Some("tips"), "carol@example.com");
        let table: Vec<PostRow> = vec![
            (&ada, ONE_CLICK, Ok(("ada@example.com", "stream:marketing"))),
            (
                &ada,
                b"List-Unsubscribe=One-Click&scope=stream",
                Ok(("ada@example.com", "stream:marketing")),
            ),
            (
                &ada,
                b"List-Unsubscribe=One-Click&scope=topic",
                Err((400, "invalid_scope")),
            ),
            (&weekly, ONE_CLICK, Ok(("bob@example.com", "topic:weekly"))),
            (
                &weekly,
                b"List-Unsubscribe=One-Click&scope=stream",
                Ok(("bob@example.com", "stream:newsletter")),
            ),
            (&tips, ONE_CLICK, Ok(("carol@example.com", "topic:tips"))),
            (
                &tips,
                b"List-Unsubscribe=One-Click&scope=stream",
                Err((400, "invalid_scope")),
            ),
            (&ada, b"", Err((400, "one_click_required"))),
            (
                &ada,
                b"List-Unsubscribe=Yes",
                Err((400, "one_click_required")),
            ),
        ];
        for (row, (claim, body, expected)) in table.into_iter().enumerate() {
            let got = on_post(&settings(), &token(claim), FORM, body)
                .map(|u| (u.address, u.scope))
                .map_err(|r| (r.status, r.rule));
            let expected = expected.map(|(a, s)| (a.to_string(), s.to_string()));
            assert_eq!(got, expected, "row {row}");
        }
    }

    #[test]
    fn the_routes_refuse_links_and_bodies_they_do_not_take() {
        let good = token(&claim("marketing", None, "ada@example.com"));
        let foreign = TokenSecrets::parse("someone-elses-secret-0123456789abcdef")
            .unwrap()
            .issue(&claim("marketing", None, "ada@example.com"), &[1; 12])
            .unwrap();
        let table: Vec<RefusalRow> = vec![
            (&foreign, FORM, ONE_CLICK, 404, "invalid_unsubscribe_link"),
            ("x", FORM, ONE_CLICK, 404, "malformed_unsubscribe_link"),
            ("%00", FORM, ONE_CLICK, 404, "malformed_unsubscribe_link"),
            (
                &good,
                Some("application/json"),
                br#"{"List-Unsubscribe":"One-Click"}"#,
                415,
                "unsupported_media_type",
            ),
            (&good, None, ONE_CLICK, 415, "unsupported_media_type"),
            (
                &good,
                FORM,
                b"List-Unsubscribe=One-Click&scope=all",
                400,
                "invalid_scope",
            ),
        ];
        for (row, (token, content_type, body, status, rule)) in table.into_iter().enumerate() {
            let refusal = on_post(&settings(), token, content_type, body).unwrap_err();
            assert_eq!((refusal.status, refusal.rule), (status, rule), "row {row}");
        }
        let unconfigured = UnsubscribeSettings::default();
        assert_eq!(
            on_post(&unconfigured, &good, FORM, ONE_CLICK)
                .unwrap_err()
                .rule,
            "unsubscribe_not_configured"
        );
    }

    #[test]
    fn the_event_names_the_message_the_recipient_and_the_scope() {
        let u = decide(
            &claim("newsletter", Some("weekly"), "Ada@Example.com"),
            ScopeChoice::AsLinked,
        )
        .unwrap();
        let event = unsubscribed_event(
            &u,
            Some("news@example.com"),
            Some("Hi"),
            1_700_000_000_000,
            &[1; 16],
        );
        assert_eq!(event.event_type, EventType::Unsubscribed);
        assert_eq!(
            (event.tenant.as_str(), event.message_id.as_str()),
            ("acme", "m1")
        );
        assert_eq!(event.recipient.as_deref(), Some("ada@example.com"));
        let payload = event.payload();
        assert_eq!(payload["type"], "email.unsubscribed");
        assert_eq!(payload["created_at"], "2023-11-14T22:13:20.000Z");
        assert_eq!(
            payload["data"],
            json!({
                "email_id": "m1",
                "from": "news@example.com",
                "to": ["ada@example.com"],
                "subject": "Hi",
                "stream": "newsletter",
                "topic": "weekly",
                "tags": {},
                "metadata": null,
                "recipient": "ada@example.com",
                "unsubscribe": {"scope": "topic:weekly"}
            })
        );
    }

    #[test]
    fn a_token_for_one_address_never_unsubscribes_another() {
        // Whatever else the request says, the address is the token's.
        let ada = token(&claim("marketing", None, "ada@example.com"));
        for body in [
            &b"List-Unsubscribe=One-Click&email=eve%40example.com"[..],
            b"List-Unsubscribe=One-Click&recipient=eve@example.com&address=eve@example.com",
        ] {
            let u = on_post(&settings(), &ada, FORM, body).unwrap();
            assert_eq!(u.address, "ada@example.com");
        }
    }
}
