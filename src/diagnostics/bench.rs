//! The benchmark routes' parameters and answers.
//!
//! `GET /bench/signing?signer=webcrypto-rsa|rust-rsa|ed25519&n=50` signs the
//! same DKIM data n times with one signer and answers the time taken.
//! `POST /bench/smtp?count=N&pipelining=on|off&chunking=on|off` delivers N
//! copies of the posted message over one SMTP session and answers how long
//! that took. `POST /bench/accept?n=50` runs the accept path's compute for
//! the posted send request n times (validate, compose, sign, serialize and
//! seal the queue body and the row's job; no storage call) and answers the
//! time taken. The routes exist only in a `diagnostics` build, and answer only
//! when `BENCH_ROUTES=on`. Owns: the parameter names, their defaults and
//! limits, and the answers' shapes. Must not: perform I/O or decide anything
//! about delivery.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::accept::error::{ApiError, FieldProblem};
use crate::message::DkimAlgorithm;

/// Most signatures per `GET /bench/signing`, so one call stays well inside a
/// CPU limit.
pub const SIGNING_MAX_ROUNDS: u32 = 500;

/// What one `POST /bench/accept` asks for: `n` timed runs (default 50, at
/// most [`SIGNING_MAX_ROUNDS`]; unreadable counts as 0) after one untimed
/// warm-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BenchAcceptRequest {
    pub rounds: u32,
}

impl BenchAcceptRequest {
    pub fn from_query<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let rounds = pairs
            .into_iter()
            .filter(|(name, _)| *name == "n")
            .last()
            .map_or(50, |(_, value)| value.parse().unwrap_or(0));
        BenchAcceptRequest {
            rounds: rounds.min(SIGNING_MAX_ROUNDS),
        }
    }

    /// The answer: the time taken, the copies one request makes and the
    /// bytes it serializes (queue body and stored job, per run).
    pub fn answer(&self, elapsed_ms: f64, copies: usize, bytes: usize) -> Value {
        let per_message_ms = if self.rounds > 0 {
            elapsed_ms / f64::from(self.rounds)
        } else {
            0.0
        };
        json!({
            "n": self.rounds,
            "elapsed_ms": elapsed_ms,
            "per_message_ms": per_message_ms,
            "copies": copies,
            "serialized_bytes": bytes,
        })
    }
}

/// Who signs in `GET /bench/signing`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BenchSigner {
    /// RSA through the runtime's WebCrypto (what the relay uses).
    WebCryptoRsa,
    /// RSA with the core's pure-Rust signer.
    RustRsa,
    /// Ed25519 with the core's signer.
    Ed25519,
}

impl BenchSigner {
    pub fn name(self) -> &'static str {
        match self {
            BenchSigner::WebCryptoRsa => "webcrypto-rsa",
            BenchSigner::RustRsa => "rust-rsa",
            BenchSigner::Ed25519 => "ed25519",
        }
    }

    /// The algorithm of the key it signs with.
    pub fn algorithm(self) -> DkimAlgorithm {
        match self {
            BenchSigner::Ed25519 => DkimAlgorithm::Ed25519Sha256,
            BenchSigner::WebCryptoRsa | BenchSigner::RustRsa => DkimAlgorithm::RsaSha256,
        }
    }
}

/// What one `GET /bench/signing` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BenchSigningRequest {
    pub signer: BenchSigner,
    /// Timed signatures, after one untimed warm-up.
    pub rounds: u32,
}

impl BenchSigningRequest {
    /// Reads `signer` (required) and `n` (default 50, at most
    /// [`SIGNING_MAX_ROUNDS`]; unreadable counts as 0). Other parameters are
    /// ignored. An unknown signer is a 404: there is no such benchmark.
    pub fn from_query<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, ApiError> {
        let mut signer = None;
        let mut rounds: u32 = 50;
        for (name, value) in pairs {
            match name {
                "signer" => {
                    signer = [
                        BenchSigner::WebCryptoRsa,
                        BenchSigner::RustRsa,
                        BenchSigner::Ed25519,
                    ]
                    .into_iter()
                    .find(|s| s.name() == value)
                }
                "n" => rounds = value.parse().unwrap_or(0),
                _ => {}
            }
        }
        let signer = signer.ok_or_else(|| {
            ApiError::not_found("signer must be webcrypto-rsa, rust-rsa or ed25519")
        })?;
        Ok(BenchSigningRequest {
            signer,
            rounds: rounds.min(SIGNING_MAX_ROUNDS),
        })
    }

    /// The answer: the time taken, and the data and signature so signers can
    /// be compared byte for byte.
    pub fn answer(&self, elapsed_ms: f64, signed_data: &[u8], signature: &[u8]) -> Value {
        let per_signature_ms = if self.rounds > 0 {
            elapsed_ms / f64::from(self.rounds)
        } else {
            0.0
        };
        json!({
            "signer": self.signer.name(),
            "n": self.rounds,
            "elapsed_ms": elapsed_ms,
            "per_signature_ms": per_signature_ms,
            "signed_data": STANDARD.encode(signed_data),
            "signature": STANDARD.encode(signature),
        })
    }
}

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

    /// The answer: how many of the copies the upstream took, and how long
    /// the session took.
    pub fn answer(
        &self,
        delivered: usize,
        elapsed_ms: u64,
        mime_bytes: usize,
        first_failure: Option<&str>,
    ) -> Value {
        json!({
            "count": self.count,
            "delivered": delivered,
            "elapsed_ms": elapsed_ms,
            "mime_bytes": mime_bytes,
            "pipelining": self.pipelining,
            "chunking": self.chunking,
            "first_failure": first_failure,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bench_accept_rounds_are_bounded() {
        let rounds = |q: &[(&str, &str)]| BenchAcceptRequest::from_query(q.iter().copied()).rounds;
        assert_eq!(rounds(&[]), 50);
        assert_eq!(rounds(&[("n", "0")]), 0);
        assert_eq!(rounds(&[("n", "7"), ("x", "1")]), 7);
        assert_eq!(rounds(&[("n", "999999")]), SIGNING_MAX_ROUNDS);
        assert_eq!(rounds(&[("n", "-1")]), 0);
        let answer = BenchAcceptRequest { rounds: 4 }.answer(2.0, 1, 100);
        assert_eq!(answer["per_message_ms"], 0.5);
        assert_eq!(
            BenchAcceptRequest { rounds: 0 }.answer(2.0, 1, 1)["per_message_ms"],
            0.0
        );
    }

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

    #[test]
    fn signing_queries_pick_a_signer_and_bound_the_rounds() {
        use BenchSigner::*;
        type Case = (
            &'static [(&'static str, &'static str)],
            Option<(BenchSigner, u32)>,
        );
        let cases: &[Case] = &[
            (&[("signer", "webcrypto-rsa")], Some((WebCryptoRsa, 50))),
            (&[("signer", "rust-rsa"), ("n", "2")], Some((RustRsa, 2))),
            (
                &[("n", "100000"), ("signer", "ed25519")],
                Some((Ed25519, 500)),
            ),
            (&[("signer", "ed25519"), ("n", "many")], Some((Ed25519, 0))),
            (&[("signer", "rsa")], None),
            (&[("n", "5")], None),
        ];
        for (pairs, expected) in cases {
            let got = BenchSigningRequest::from_query(pairs.iter().copied());
            match (got, expected) {
                (Ok(r), Some((signer, rounds))) => {
                    assert_eq!((r.signer, r.rounds), (*signer, *rounds), "{pairs:?}")
                }
                (Err(e), None) => assert_eq!(e.status, 404, "{pairs:?}"),
                (got, _) => panic!("{pairs:?}: {got:?}"),
            }
        }
        assert_eq!(WebCryptoRsa.algorithm(), DkimAlgorithm::RsaSha256);
        assert_eq!(Ed25519.algorithm(), DkimAlgorithm::Ed25519Sha256);
    }

    #[test]
    fn answers_carry_what_the_benchmarks_read() {
        let signing = BenchSigningRequest {
            signer: BenchSigner::RustRsa,
            rounds: 4,
        }
        .answer(10.0, b"data", b"sig");
        assert_eq!(signing["signer"], "rust-rsa");
        assert_eq!(signing["per_signature_ms"], 2.5);
        assert_eq!(signing["signed_data"], "ZGF0YQ==");
        let smtp =
            BenchSmtpRequest::from_query("count=3")
                .unwrap()
                .answer(2, 40, 900, Some("550 no"));
        assert_eq!(smtp["count"], 3);
        assert_eq!(smtp["delivered"], 2);
        assert_eq!(smtp["first_failure"], "550 no");
    }
}
