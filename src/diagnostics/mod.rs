//! Test and benchmark switches: fault injection on the accept path and the
//! parameters of the benchmark routes.
//!
//! Must not: be reachable in a release build.

pub mod accept_fault;
pub mod bench;
pub mod consumer_crash;
