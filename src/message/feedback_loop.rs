//! The complaint feedback loop fields of RFC 9477 (CFBL): `CFBL-Address`,
//! where a mailbox provider sends complaint reports (ARF) about the
//! message, and `CFBL-Feedback-ID`, the id those reports quote back.
//!
//! Both are written by the relay, after the caller's own headers, and the
//! DKIM signer over-signs both names (see [`super::dkim`]): RFC 9477 has
//! receivers act on them only when a DKIM signature aligned with the
//! address's domain covers them, and over-signing means nobody downstream
//! can add a second pair.
//! Owns: the field names and values, and what an address and an id must be
//! to go into them verbatim. Must not: know how the id is made, or decide
//! which messages carry the fields (`accept` does).

/// `CFBL-Address`: where complaint reports go.
pub const CFBL_ADDRESS: &str = "CFBL-Address";
/// `CFBL-Feedback-ID`: the id complaint reports quote back.
pub const CFBL_FEEDBACK_ID: &str = "CFBL-Feedback-ID";

/// One copy's feedback loop fields, checked to go verbatim into headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedbackLoop {
    address: String,
    feedback_id: String,
}

/// Letters, digits and the few marks an address or id here needs: nothing
/// that folds, quotes, or ends a field or a tag (`;`).
fn plain(text: &str, marks: &[u8]) -> bool {
    !text.is_empty()
        && text.len() <= 200
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || marks.contains(&b))
}

impl FeedbackLoop {
    /// The fields for reports to `address` quoting `feedback_id`, if both
    /// are plain ASCII: `local@domain` of letters, digits and `.-_+`, and an
    /// id of letters, digits and `.-_`.
    pub fn new(address: &str, feedback_id: &str) -> Option<FeedbackLoop> {
        let (local, domain) = address.split_once('@')?;
        let ok = plain(local, b".-_+")
            && plain(domain, b".-")
            && domain.contains('.')
            && plain(feedback_id, b".-_");
        ok.then(|| FeedbackLoop {
            address: address.to_string(),
            feedback_id: feedback_id.to_string(),
        })
    }

    pub fn address(&self) -> &str {
        &self.address
    }

    pub fn feedback_id(&self) -> &str {
        &self.feedback_id
    }

    /// The header fields, name and value, in the order they are written:
    /// reports are asked for in ARF (`report=arf`).
    pub fn header_fields(&self) -> [(&'static str, String); 2] {
        [
            (CFBL_ADDRESS, format!("{}; report=arf", self.address)),
            (CFBL_FEEDBACK_ID, self.feedback_id.clone()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_addresses_and_ids_go_into_the_fields() {
        let id = "4f3c9a0b1d2e3f405162738495a6b7c8-2.0123456789abcdef";
        let ok = FeedbackLoop::new("fbl@rp.example.com", id).unwrap();
        assert_eq!(
            ok.header_fields(),
            [
                (CFBL_ADDRESS, "fbl@rp.example.com; report=arf".to_string()),
                (CFBL_FEEDBACK_ID, id.to_string()),
            ]
        );
        for (address, feedback_id) in [
            ("fbl@rp.example.com", ""),
            ("fbl@rp.example.com", "id; report=none"),
            ("fbl@rp.example.com", "id\r\nBcc: eve@example.net"),
            ("fbl@rp.example.com", "é"),
            ("fbl@localhost", id),
            ("fbl", id),
            ("@rp.example.com", id),
            ("f b l@rp.example.com", id),
            ("fbl@rp.example.com; report=none", id),
            ("fbl@rp.example.com\r\nX: y", id),
            ("fbl@bücher.example", id),
        ] {
            assert_eq!(
                FeedbackLoop::new(address, feedback_id),
                None,
                "{address:?} {feedback_id:?}"
            );
        }
    }
}
