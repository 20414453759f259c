//! `Idempotency-Key`: the rules for repeating a send safely.
//!
//! The same key with the same body within 24 hours gets the first answer
//! again (same id, same status code); the same key with a different body is a
//! 409. Keys are scoped per API key, so two callers cannot collide. Which of
//! two concurrent duplicates goes first is decided by the store's uniqueness
//! constraint, not here. A claim whose request died before answering is
//! taken over by a retry once it is older than any request can live
//! ([`ABANDONED_AFTER_MS`]), rather than blocking the key for a day.
//! Must not: perform I/O; the edge claims, reads and completes keys.

use sha2::{Digest, Sha256};

use super::error::ApiError;

/// The request header.
pub const HEADER: &str = "Idempotency-Key";

/// How long a key is remembered.
pub const WINDOW_MS: u64 = 24 * 60 * 60 * 1000;

/// Longest key accepted (Stripe and the IETF draft use similar bounds).
pub const MAX_KEY_LEN: usize = 255;

/// Reads the header: absent is fine, present must be 1 to 255 visible ASCII
/// characters (so it can be logged and stored without escaping).
pub fn parse_key(header: Option<&str>) -> Result<Option<String>, ApiError> {
    let Some(raw) = header else {
        return Ok(None);
    };
    let key = raw.trim();
    if key.is_empty() || key.len() > MAX_KEY_LEN || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::invalid_field(
            HEADER,
            "invalid_idempotency_key",
            format!("must be 1 to {MAX_KEY_LEN} visible ASCII characters"),
        ));
    }
    Ok(Some(key.to_string()))
}

/// What identifies "the same request": the body's SHA-256, in hex.
pub fn fingerprint(body: &[u8]) -> String {
    Sha256::digest(body)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Keys created before this time are forgotten and may be claimed anew.
pub fn expired_before(now_ms: u64) -> u64 {
    now_ms.saturating_sub(WINDOW_MS)
}

/// How long a claim may stay without its answer before a retry may take
/// it over: the first request died (its isolate was evicted, the client's
/// connection and with it the request went away, a deploy) before it could
/// record an answer or give the key back.
///
/// Why an hour is longer than any request can live: a queued-mode request
/// does a few storage calls (seconds). An immediate-mode request stops
/// waiting for SMTP at its plan's deadline, one `SMTP_TIMEOUT_SECONDS`
/// per step and recipient per upstream but never more than
/// `delivery::immediate::MAX_ATTEMPT_MS` (10 minutes), and holds its
/// message's lease a little longer. The edge passes the longest request its
/// settings allow ([`claim_cutoffs`] takes the larger of the two, plus a
/// minute for recording the answer). A takeover while the
/// first request still ran could send the message twice; a request that
/// died sends nothing, and its caller's retry must not wait a day.
pub const ABANDONED_AFTER_MS: u64 = 60 * 60 * 1000;

/// Claims older than these may be taken by a new request (Unix ms).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClaimCutoffs {
    /// Any claim created before this is forgotten ([`WINDOW_MS`]).
    pub expired_before: u64,
    /// A claim with no answer created before this was abandoned.
    pub abandoned_before: u64,
}

/// The cutoffs at `now_ms`; `longest_request_ms` is the longest a request
/// can run under the current settings (see [`ABANDONED_AFTER_MS`]).
pub fn claim_cutoffs(now_ms: u64, longest_request_ms: u64) -> ClaimCutoffs {
    let abandoned_after = ABANDONED_AFTER_MS.max(longest_request_ms.saturating_add(60_000));
    ClaimCutoffs {
        expired_before: expired_before(now_ms),
        abandoned_before: now_ms.saturating_sub(abandoned_after.min(WINDOW_MS)),
    }
}

/// Whether a new request may claim a key the store holds, created at
/// `created_at_ms`. The store applies the same rule atomically (the claim's
/// `WHERE`); this is its statement, for tests and readers.
pub fn may_claim(stored: &StoredKey, created_at_ms: u64, cutoffs: &ClaimCutoffs) -> bool {
    created_at_ms < cutoffs.expired_before
        || (stored.response.is_none() && created_at_ms < cutoffs.abandoned_before)
}

/// A key as the store holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredKey {
    pub fingerprint: String,
    /// Set once the first request has its answer.
    pub response: Option<(u16, String)>,
}

/// What to do with a request whose key is already held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replay {
    /// Answer exactly this, again.
    Answer { status: u16, body: String },
    /// The first request with this key is still running; ask again shortly.
    InProgress(ApiError),
    /// The key was used for another body.
    Conflict(ApiError),
}

/// Decides the answer to a request whose key is already held.
pub fn replay(stored: &StoredKey, fingerprint: &str) -> Replay {
    if stored.fingerprint != fingerprint {
        return Replay::Conflict(ApiError::conflict(
            "idempotency_key_reused",
            HEADER,
            "this Idempotency-Key was already used with a different request body; \
             use a new key for a new message",
        ));
    }
    match &stored.response {
        Some((status, body)) => Replay::Answer {
            status: *status,
            body: body.clone(),
        },
        None => {
            let mut e = ApiError::conflict(
                "idempotency_key_in_use",
                HEADER,
                "a request with this Idempotency-Key is still being processed; retry shortly",
            );
            e.retry_after = Some(1);
            Replay::InProgress(e)
        }
    }
}

/// Only successful answers are remembered: after an error nothing was
/// accepted, so the caller's retry with the same key must run again.
pub fn remembers(status: u16) -> bool {
    (200..300).contains(&status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_header_table() {
        let long = "k".repeat(MAX_KEY_LEN);
        let too_long = "k".repeat(MAX_KEY_LEN + 1);
        type Row<'a> = (Option<&'a str>, Result<Option<&'a str>, ()>);
        let table: Vec<Row> = vec![
            (None, Ok(None)),
            (Some("order-42"), Ok(Some("order-42"))),
            (Some("  padded  "), Ok(Some("padded"))),
            (Some(long.as_str()), Ok(Some(long.as_str()))),
            (Some(""), Err(())),
            (Some("   "), Err(())),
            (Some(too_long.as_str()), Err(())),
            (Some("has space"), Err(())),
            (Some("crlf\r\nX-Injected: 1"), Err(())),
            (Some("ünïcode"), Err(())),
        ];
        for (input, expected) in table {
            let got = parse_key(input);
            match expected {
                Ok(v) => assert_eq!(got.unwrap().as_deref(), v, "{input:?}"),
                Err(()) => {
                    let e = got.unwrap_err();
                    assert_eq!(e.status, 422, "{input:?}");
                    assert_eq!(e.field.as_deref(), Some(HEADER));
                    assert_eq!(e.details[0].rule, "invalid_idempotency_key");
                }
            }
        }
    }

    #[test]
    fn fingerprints_tell_bodies_apart() {
        let a = fingerprint(br#"{"to":"a@x.net"}"#);
        assert_eq!(a.len(), 64);
        assert_eq!(a, fingerprint(br#"{"to":"a@x.net"}"#));
        assert_ne!(a, fingerprint(br#"{"to":"b@x.net"}"#));
        // The known digest of the empty input.
        assert_eq!(
            fingerprint(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn replay_table() {
        let done = StoredKey {
            fingerprint: "aa".into(),
            response: Some((202, r#"{"id":"m1"}"#.into())),
        };
        let running = StoredKey {
            fingerprint: "aa".into(),
            response: None,
        };
        assert_eq!(
            replay(&done, "aa"),
            Replay::Answer {
                status: 202,
                body: r#"{"id":"m1"}"#.into()
            }
        );
        match replay(&done, "bb") {
            Replay::Conflict(e) => {
                assert_eq!((e.status, e.rule), (409, "idempotency_key_reused"));
            }
            other => panic!("{other:?}"),
        }
        match replay(&running, "aa") {
            Replay::InProgress(e) => {
                assert_eq!((e.status, e.rule), (409, "idempotency_key_in_use"));
                assert_eq!(e.retry_after, Some(1));
            }
            other => panic!("{other:?}"),
        }
        // A different body loses even while the first is running.
        assert!(matches!(replay(&running, "bb"), Replay::Conflict(_)));
    }

    #[test]
    fn abandoned_claims_may_be_taken_over_answered_ones_only_after_a_day() {
        let hour = 60 * 60 * 1000;
        let now = 10 * WINDOW_MS;
        let running = StoredKey {
            fingerprint: "aa".into(),
            response: None,
        };
        let answered = StoredKey {
            fingerprint: "aa".into(),
            response: Some((202, "{}".into())),
        };
        // (stored, age, longest request, may claim)
        let table = [
            (&running, 0, 0, false),
            (&running, hour - 1, 0, false),
            (&running, hour + 1, 0, true),
            // Settings that let a request run two hours keep its claim
            // that long, plus a minute.
            (&running, hour + 1, 2 * hour, false),
            (&running, 2 * hour + 60_001, 2 * hour, true),
            // Never longer than the key is remembered at all.
            (&running, WINDOW_MS + 1, 3 * WINDOW_MS, true),
            (&answered, hour + 1, 0, false),
            (&answered, WINDOW_MS - 1, 0, false),
            (&answered, WINDOW_MS + 1, 0, true),
        ];
        for (stored, age, longest, want) in table {
            let cutoffs = claim_cutoffs(now, longest);
            assert_eq!(
                may_claim(stored, now - age, &cutoffs),
                want,
                "{stored:?} aged {age} ms, longest request {longest} ms"
            );
        }
    }

    #[test]
    fn only_successes_are_remembered_for_a_day() {
        for (status, kept) in [
            (200, true),
            (202, true),
            (409, false),
            (422, false),
            (503, false),
        ] {
            assert_eq!(remembers(status), kept, "{status}");
        }
        assert_eq!(expired_before(WINDOW_MS + 5), 5);
        assert_eq!(expired_before(3), 0);
    }
}
