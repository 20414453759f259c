//! The answer to a message accepted for queued delivery: `202` with
//! `{"id", "status": "queued"}`, the same for the API, forms and the fallback
//! of an immediate request that ran out of time; a message that went out as
//! one copy per recipient adds `"copies": [{"id", "to"}]`.
//!
//! Must not: perform I/O, or answer before the message is committed (the
//! edge calls this only after `accept::commit` succeeded; a discarded form
//! submission gets the same shape on purpose, so bots cannot tell).

use serde_json::{Value, json};

use crate::queue::MessageStatus;

/// `202 Accepted`: stored and queued, not yet delivered.
pub const ACCEPTED: u16 = 202;

/// What was accepted: the message's id, and its copies' when it went out as
/// one copy per recipient (each with its own unsubscribe link).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptedIds {
    pub id: String,
    /// `(copy id, recipient)` in recipient order; `None` for one copy.
    pub copies: Option<Vec<(String, String)>>,
}

impl AcceptedIds {
    /// The `202` answer: [`queued`], with `copies` when there are several.
    pub fn answer(&self) -> Value {
        let mut body = queued(&self.id);
        if let Some(copies) = self.copies_json() {
            body["copies"] = copies;
        }
        body
    }

    /// `[{"id", "to"}]` for a message of several copies.
    pub fn copies_json(&self) -> Option<Value> {
        self.copies.as_ref().map(|copies| {
            copies
                .iter()
                .map(|(id, to)| json!({"id": id, "to": to}))
                .collect()
        })
    }
}

/// The body of the `202` answer for message `id`.
pub fn queued(id: &str) -> Value {
    json!({"id": id, "status": MessageStatus::Queued.as_str()})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_queued_answer_has_the_documented_shape() {
        assert_eq!(ACCEPTED, 202);
        assert_eq!(
            queued("0a1b").to_string(),
            r#"{"id":"0a1b","status":"queued"}"#
        );
        let one = AcceptedIds {
            id: "0a1b".into(),
            copies: None,
        };
        assert_eq!(one.answer(), queued("0a1b"));
        let several = AcceptedIds {
            id: "0a1b".into(),
            copies: Some(vec![
                ("0a1b-1".into(), "ada@example.org".into()),
                ("0a1b-2".into(), "bob@example.org".into()),
            ]),
        };
        assert_eq!(
            several.answer().to_string(),
            r#"{"copies":[{"id":"0a1b-1","to":"ada@example.org"},{"id":"0a1b-2","to":"bob@example.org"}],"id":"0a1b","status":"queued"}"#
        );
    }
}
