//! `POST /v1/messages?delivery=queued|immediate`: whether the request returns
//! once the message is stored and queued (the default), or tries the upstream
//! itself and answers with the SMTP result.
//!
//! A query parameter, not a body field: the mode says how this request is
//! handled, not what the message is, so queue producers and batch items (which
//! take the message fields only) never see it. Owns the parameter's rules and
//! the immediate answer's shape and status code.
//! Must not: perform I/O or decide delivery (see `delivery::immediate`).

use serde_json::{Value, json};

use crate::delivery::RecipientResult;
use crate::queue::MessageStatus;

use crate::accept::error::ApiError;

use super::listing::single_parameter;

/// The query parameter.
pub const PARAMETER: &str = "delivery";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryMode {
    /// Store, enqueue, answer 202; the queue consumer delivers.
    Queued,
    /// Store and enqueue a safety job, then deliver within the request.
    Immediate,
}

impl DeliveryMode {
    /// Reads the mode from the request's query pairs; other parameters are
    /// ignored, a repeated or unknown `delivery` is a 422 naming it.
    pub fn from_query<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<DeliveryMode, ApiError> {
        match single_parameter(pairs, PARAMETER, "invalid_delivery_mode")? {
            None | Some("queued") => Ok(DeliveryMode::Queued),
            Some("immediate") => Ok(DeliveryMode::Immediate),
            Some(other) => Err(ApiError::invalid_field(
                PARAMETER,
                "invalid_delivery_mode",
                format!("must be `queued` or `immediate`, not `{other}`"),
            )),
        }
    }

    /// Immediate delivery sends one copy: a message that goes out as one
    /// copy per recipient is a 422 in that mode (a dry run says so too).
    pub fn admits_copies(self, copies: usize) -> Result<(), ApiError> {
        if self == DeliveryMode::Immediate && copies > 1 {
            return Err(ApiError::invalid_field(
                "to",
                "immediate_one_copy",
                "immediate delivery sends one copy; mail with a one-click unsubscribe to several recipients goes out as one copy per recipient: send it queued, or one message per recipient",
            ));
        }
        Ok(())
    }

    /// The `Idempotency-Key` fingerprint of a request in this mode: the same
    /// body sent in the other mode is another request (its answer differs).
    pub fn fingerprint(self, body_fingerprint: String) -> String {
        match self {
            DeliveryMode::Queued => body_fingerprint,
            DeliveryMode::Immediate => format!("{body_fingerprint}+immediate"),
        }
    }
}

/// The answer to an immediate request whose attempt ran: `200` when the
/// message reached an end state (`delivered`, `partially_delivered`, `failed`,
/// `unknown`), `202` while any recipient awaits a retry (`deferred`). Every
/// recipient is listed with the upstream's reply.
pub fn immediate_answer(
    id: &str,
    status: MessageStatus,
    results: &[RecipientResult],
    next_attempt_at: Option<u64>,
) -> (u16, Value) {
    let code = if status.is_final() { 200 } else { 202 };
    let recipients: Vec<Value> = results
        .iter()
        .map(|r| {
            json!({
                "address": r.address,
                "state": r.state.as_str(),
                "reply_code": r.reply_code,
                "enhanced_code": r.enhanced_code,
                "reply_text": r.reply_text,
            })
        })
        .collect();
    let mut body = json!({"id": id, "status": status.as_str(), "recipients": recipients});
    if code == 202 {
        body["next_attempt_at"] = json!(next_attempt_at);
    }
    (code, body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::RecipientState;

    #[test]
    fn mode_table() {
        use DeliveryMode::*;
        type Row = (
            Vec<(&'static str, &'static str)>,
            Result<DeliveryMode, &'static str>,
        );
        let table: Vec<Row> = vec![
            (vec![], Ok(Queued)),
            (vec![("delivery", "queued")], Ok(Queued)),
            (vec![("delivery", "immediate")], Ok(Immediate)),
            (
                vec![("other", "x"), ("delivery", "immediate")],
                Ok(Immediate),
            ),
            (vec![("delivery", "Immediate")], Err("not `Immediate`")),
            (vec![("delivery", "")], Err("not ``")),
            (
                vec![("delivery", "immediate"), ("delivery", "queued")],
                Err("at most once"),
            ),
        ];
        for (pairs, expected) in table {
            match (DeliveryMode::from_query(pairs.clone()), expected) {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "{pairs:?}"),
                (Err(e), Err(needle)) => {
                    assert_eq!(e.status, 422);
                    assert_eq!(e.field.as_deref(), Some(PARAMETER));
                    assert_eq!(e.details[0].rule, "invalid_delivery_mode");
                    assert!(e.message.contains(needle), "{}", e.message);
                }
                (got, want) => panic!("{pairs:?}: {got:?} vs {want:?}"),
            }
        }
    }

    #[test]
    fn immediate_mode_takes_one_copy() {
        for (mode, copies, ok) in [
            (DeliveryMode::Queued, 1, true),
            (DeliveryMode::Queued, 3, true),
            (DeliveryMode::Immediate, 1, true),
            (DeliveryMode::Immediate, 2, false),
        ] {
            let got = mode.admits_copies(copies);
            assert_eq!(got.is_ok(), ok, "{mode:?} {copies}");
            if let Err(e) = got {
                assert_eq!(e.details[0].rule, "immediate_one_copy");
            }
        }
    }

    #[test]
    fn the_same_body_in_another_mode_is_another_request() {
        let q = DeliveryMode::Queued.fingerprint("abc".into());
        let i = DeliveryMode::Immediate.fingerprint("abc".into());
        assert_eq!(q, "abc");
        assert_ne!(q, i);
    }

    fn result(address: &str, state: RecipientState, code: u16, text: &str) -> RecipientResult {
        RecipientResult {
            address: address.into(),
            state,
            reply_code: Some(code),
            enhanced_code: Some(format!("{}.0.0", code / 100)),
            reply_text: text.into(),
        }
    }

    #[test]
    fn answer_status_follows_the_message_status() {
        use RecipientState::*;
        let table = [
            ("delivered", 200),
            ("partially_delivered", 200),
            ("failed", 200),
            ("unknown", 200),
            ("deferred", 202),
            ("queued", 202),
        ];
        for (status, code) in table {
            let results = [result("a@x.net", Delivered, 250, "Queued as 1")];
            let (got, body) = immediate_answer(
                "m1",
                MessageStatus::parse(status).unwrap(),
                &results,
                Some(99),
            );
            assert_eq!(got, code, "{status}");
            assert_eq!(body["status"], status);
            assert_eq!(body["id"], "m1");
            assert_eq!(body.get("next_attempt_at").is_some(), code == 202);
        }
        let results = [
            result("a@x.net", Delivered, 250, "Queued as 1"),
            result("b@x.net", Deferred, 450, "Mailbox busy"),
        ];
        let (_, body) = immediate_answer("m1", MessageStatus::Deferred, &results, Some(1234));
        assert_eq!(body["next_attempt_at"], 1234);
        let r = &body["recipients"];
        assert_eq!(r[0]["state"], "delivered");
        assert_eq!(r[1]["state"], "deferred");
        assert_eq!(r[1]["reply_code"], 450);
        assert_eq!(r[1]["enhanced_code"], "4.0.0");
        assert_eq!(r[1]["reply_text"], "Mailbox busy");
    }
}
