//! How large a request body may be, and the 413 for one that is larger.
//!
//! The edge reads a body as a stream and asks [`BodyLimit::admits`] after
//! every chunk, so an oversized body is refused as soon as it passes the
//! limit, whatever its `Content-Length` says, or when it has none (chunked
//! transfer): nothing over the limit is ever held in memory.
//! Must not: read the body or know where it comes from.

use super::error::ApiError;

/// The most bytes of a request body read for one endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyLimit {
    /// Bytes.
    pub max_bytes: usize,
    /// Where the limit comes from, for the error (e.g. "twice
    /// MAX_MESSAGE_BYTES plus 64 KiB").
    pub source: &'static str,
}

impl BodyLimit {
    /// Ok while `len` bytes are within the limit; the 413 naming the limit
    /// once they are not.
    pub fn admits(&self, len: usize) -> Result<(), ApiError> {
        if len <= self.max_bytes {
            return Ok(());
        }
        Err(ApiError::too_large(
            "",
            format!(
                "the request body is over the limit of {} bytes ({})",
                self.max_bytes, self.source
            ),
        ))
    }

    /// Checks a declared `Content-Length` before anything is read. A value
    /// that is not a number says nothing; the stream is checked anyway.
    pub fn admits_declared(&self, content_length: Option<&str>) -> Result<(), ApiError> {
        match content_length.and_then(|v| v.trim().parse::<u64>().ok()) {
            Some(declared) => self.admits(usize::try_from(declared).unwrap_or(usize::MAX)),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_table() {
        let limit = BodyLimit {
            max_bytes: 100,
            source: "a test limit",
        };
        for (len, ok) in [(0, true), (100, true), (101, false), (usize::MAX, false)] {
            assert_eq!(limit.admits(len).is_ok(), ok, "{len}");
        }
        let e = limit.admits(101).unwrap_err();
        assert_eq!((e.status, e.rule), (413, "too_large"));
        assert!(e.message.contains("100 bytes") && e.message.contains("a test limit"));
        let declared = [
            (None, true),
            (Some("100"), true),
            (Some(" 100 "), true),
            (Some("101"), false),
            (Some("99999999999999999999999"), true),
            (Some("18446744073709551615"), false),
            (Some("chunked"), true),
        ];
        for (header, ok) in declared {
            assert_eq!(limit.admits_declared(header).is_ok(), ok, "{header:?}");
        }
    }
}
