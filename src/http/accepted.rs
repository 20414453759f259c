//! The answer to a message accepted for queued delivery: `202` with
//! `{"id", "status": "queued"}`, the same for the API, forms and the fallback
//! of an immediate request that ran out of time.
//!
//! Must not: perform I/O, or answer before the message is committed (the
//! edge calls this only after `accept::commit` succeeded; a discarded form
//! submission gets the same shape on purpose, so bots cannot tell).

use serde_json::{Value, json};

use crate::queue::MessageStatus;

/// `202 Accepted`: stored and queued, not yet delivered.
pub const ACCEPTED: u16 = 202;

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
    }
}
