//! Test and benchmark switches: fault injection on the accept path and in the
//! queue consumer, and the benchmark routes' parameters.
//!
//! Compiled only with the cargo feature `diagnostics` (`make
//! build-diagnostics`), which release builds (`make build`, `wrangler
//! deploy`) never have: there the variables below are not read, their names
//! are not in the wasm, and the benchmark routes do not exist.
//!
//! | Variable | Effect |
//! | --- | --- |
//! | `FAULT_ACCEPT` | `store` / `enqueue` (or `store:N` / `enqueue:N`, the first N only): that step of accepting fails (see [`accept_fault`]) |
//! | `FAULT_CONSUMER_CRASH_AFTER` | N: the queue consumer throws after settling N messages of a larger batch (see [`consumer_crash`]) |
//! | `FAULT_D1_OUTAGE` | N: every D1 call of the queue consumer fails for N seconds from its first batch (see [`d1_outage`]) |
//! | `SNS_LOOPBACK_URLS` | `on`: the SES receiver fetches SNS certificates and subscription confirmations from `http://127.0.0.1:<port>/...` too (see [`sns_loopback`]); default `off` |
//! | `TEST_RETENTION_SECONDS` | N: records are kept N seconds instead of `RETENTION_DAYS`, so a test can watch the purge (see `events::retention`) |
//! | `FIXED_ACCEPT` | `<unix ms>:<64 hex digits>`: the clock and entropy every composed message takes (its id, `Date`, tokens), so a dry run and a real send compare byte for byte (see [`fixed_accept`]) |
//! | `BENCH_ROUTES` | `on` serves `GET /bench/signing` and `POST /bench/smtp` (see [`bench`](mod@bench)); default `off` |
//!
//! Owns: these switches; `FAULT_ACCEPT`, `FIXED_ACCEPT`, `BENCH_ROUTES`,
//! `SNS_LOOPBACK_URLS` and `TEST_RETENTION_SECONDS` are read once per
//! isolate into [`Diagnostics`], the crash and outage switches by the
//! consumer per batch.
//! Must not: be reachable in a release build, or perform I/O.

pub mod accept_fault;
pub mod bench;
pub mod consumer_crash;
pub mod d1_outage;
pub mod fixed_accept;
pub mod sns_loopback;

use crate::config::{ConfigError, ConfigSource, err};

use self::accept_fault::AcceptFaults;
use self::fixed_accept::FixedAccept;

/// The switches, as read from the worker's vars.
#[derive(Debug, Default)]
pub struct Diagnostics {
    /// `FAULT_ACCEPT` and its count of injected faults.
    pub accept_faults: AcceptFaults,
    /// `BENCH_ROUTES=on`: the benchmark routes answer.
    pub bench_routes: bool,
    /// `FIXED_ACCEPT`: the clock and entropy of every composed message.
    pub fixed_accept: Option<FixedAccept>,
    /// `SNS_LOOPBACK_URLS=on`: SNS URLs on loopback are fetched too.
    pub sns_loopback_urls: bool,
    /// `TEST_RETENTION_SECONDS`: the retention period, in seconds, instead
    /// of `RETENTION_DAYS`.
    pub retention_seconds: Option<u64>,
}

impl Diagnostics {
    /// Reads the switches; a malformed `BENCH_ROUTES` is refused like any
    /// malformed setting, so a misspelt switch never measures the wrong thing.
    pub fn from_source(src: &impl ConfigSource) -> Result<Self, ConfigError> {
        let switch = |name: &'static str| match src.get(name).as_deref().map(str::trim) {
            None | Some("") | Some("off") => Ok(false),
            Some("on") => Ok(true),
            Some(_) => Err(err(name, "is neither `on` nor `off`")),
        };
        let retention_seconds =
            match src.get("TEST_RETENTION_SECONDS").as_deref().map(str::trim) {
                None | Some("") => None,
                Some(v) => Some(v.parse::<u64>().map_err(|_| {
                    err("TEST_RETENTION_SECONDS", "is not a whole number of seconds")
                })?),
            };
        Ok(Diagnostics {
            accept_faults: AcceptFaults::from_source(src),
            bench_routes: switch("BENCH_ROUTES")?,
            sns_loopback_urls: switch(sns_loopback::VAR)?,
            retention_seconds,
            fixed_accept: FixedAccept::parse(src.get("FIXED_ACCEPT").as_deref())?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(bench_routes: Option<&str>) -> Result<Diagnostics, ConfigError> {
        let value = bench_routes.map(str::to_string);
        Diagnostics::from_source(&move |name: &str| match name {
            "BENCH_ROUTES" => value.clone(),
            _ => None,
        })
    }

    #[test]
    fn bench_routes_are_off_unless_on() {
        for (value, expected) in [
            (None, Ok(false)),
            (Some(""), Ok(false)),
            (Some("off"), Ok(false)),
            (Some(" on "), Ok(true)),
            (Some("yes"), Err("BENCH_ROUTES")),
        ] {
            let got = read(value).map(|d| d.bench_routes).map_err(|e| e.setting);
            assert_eq!(got, expected, "{value:?}");
        }
    }
}
