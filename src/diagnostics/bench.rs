//! The benchmark-only SMTP route's parameters, read from its query string.
//!
//! `POST /bench/smtp?count=N&pipelining=on|off&chunking=on|off` delivers N
//! copies of the posted message over one SMTP session and answers how long
//! that took. The route exists only when `BENCH_ROUTES=on`, which is never set
//! in production. Owns: the parameter names, their defaults and limits. Must
//! not: perform I/O or decide anything about delivery.

use crate::accept::error::{ApiError, FieldProblem};

/// The most messages one benchmark request may prepare: all of them are held
/// in memory at once, and the platform limits one invocation's CPU time.
pub const BENCH_MAX_COUNT: usize = 1000;

/// What one `POST /bench/smtp` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BenchSmtpRequest {
    /// Messages to deliver over the one session.
    pub count: usize,
    /// Use PIPELINING when the server offers it (off: lock-step).
    pub pipelining: bool,
    /// Use CHUNKING (BDAT) when the server offers it (off: DATA).
    pub chunking: bool,
}

fn problem(field: &str, rule: &str, message: String) -> ApiError {
    ApiError::invalid(vec![FieldProblem {
        field: field.to_string(),
        rule: rule.to_string(),
        message,
    }])
}

fn switch(field: &str, value: &str) -> Result<bool, ApiError> {
    match value {
        "on" => Ok(true),
        "off" => Ok(false),
        other => Err(problem(
            field,
            "invalid_switch",
            format!("must be `on` or `off`, not `{other}`"),
        )),
    }
}

impl BenchSmtpRequest {
    /// Parses a query string (without the `?`). Unknown parameters are
    /// refused so a misspelt switch never measures the wrong thing.
    pub fn from_query(query: &str) -> Result<Self, ApiError> {
        let mut request = BenchSmtpRequest {
            count: 1,
            pipelining: true,
            chunking: true,
        };
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            match name {
                "count" => {
                    request.count = value
                        .parse::<usize>()
                        .ok()
                        .filter(|n| (1..=BENCH_MAX_COUNT).contains(n))
                        .ok_or_else(|| {
                            problem(
                                "count",
                                "out_of_range",
                                format!("must be a whole number from 1 to {BENCH_MAX_COUNT}"),
                            )
                        })?;
                }
                "pipelining" => request.pipelining = switch("pipelining", value)?,
                "chunking" => request.chunking = switch("chunking", value)?,
                other => {
                    return Err(problem(
                        other,
                        "unknown_parameter",
                        "expected count, pipelining or chunking".to_string(),
                    ));
                }
            }
        }
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_parse_or_name_the_bad_parameter() {
        let ok = |count, pipelining, chunking| {
            Ok::<_, &str>(BenchSmtpRequest {
                count,
                pipelining,
                chunking,
            })
        };
        let cases: &[(&str, Result<BenchSmtpRequest, &str>)] = &[
            ("", ok(1, true, true)),
            ("count=50", ok(50, true, true)),
            ("count=1000&pipelining=off", ok(1000, false, true)),
            ("chunking=off&pipelining=on&count=7", ok(7, true, false)),
            ("count=0", Err("count")),
            ("count=1001", Err("count")),
            ("count=ten", Err("count")),
            ("count", Err("count")),
            ("pipelining=no", Err("pipelining")),
            ("chunking=", Err("chunking")),
            ("pipelinig=off", Err("pipelinig")),
        ];
        for (query, expected) in cases {
            match (BenchSmtpRequest::from_query(query), expected) {
                (Ok(got), Ok(want)) => assert_eq!(&got, want, "{query}"),
                (Err(e), Err(field)) => {
                    assert_eq!(e.status, 422, "{query}");
                    assert_eq!(e.field.as_deref(), Some(*field), "{query}");
                }
                (got, want) => panic!("{query}: got {got:?}, want {want:?}"),
            }
        }
    }
}
