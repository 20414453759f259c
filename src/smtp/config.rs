//! The session's configuration: how the connection is protected, which
//! name to greet with, the credentials, how long to wait for each reply,
//! and which extensions to use when offered.
//!
//! Owns: plain values only. Must not: read the environment or parse settings
//! strings (the caller builds these from its typed settings), or depend on
//! the session or the transactions that read it.

use super::auth::Credentials;

/// How the connection is protected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Security {
    /// TLS is up before the greeting (port 465).
    ImplicitTls,
    /// Plaintext until STARTTLS, which the server must offer (port 587).
    StartTls,
    /// Plaintext throughout, AUTH included. Only for explicitly configured
    /// test or private-network upstreams.
    Insecure,
}

/// How long to wait for each reply, and for each write, in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// From connection to the greeting.
    pub greeting_ms: u64,
    /// For each command's reply.
    pub command_ms: u64,
    /// For the reply to the end of the message data, which servers answer
    /// only after their content checks.
    pub data_end_ms: u64,
    /// For each write (and flush) of one piece of output, at most
    /// `MAX_TRANSMIT` bytes, and for closing the socket: a server that
    /// reads nothing for this long has stopped reading, and the session
    /// ends rather than hang.
    pub write_ms: u64,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            greeting_ms: 30_000,
            command_ms: 30_000,
            data_end_ms: 60_000,
            write_ms: 30_000,
        }
    }
}

#[derive(Clone, Debug)]
pub struct SmtpConfig {
    /// Name sent with EHLO/HELO.
    pub ehlo_name: String,
    pub security: Security,
    pub credentials: Option<Credentials>,
    pub timeouts: Timeouts,
    /// Use PIPELINING when offered; off forces lock-step.
    pub use_pipelining: bool,
    /// Use CHUNKING (BDAT) when offered; off forces DATA.
    pub use_chunking: bool,
}

impl SmtpConfig {
    pub fn new(ehlo_name: impl Into<String>, security: Security) -> Self {
        SmtpConfig {
            ehlo_name: ehlo_name.into(),
            security,
            credentials: None,
            timeouts: Timeouts::default(),
            use_pipelining: true,
            use_chunking: true,
        }
    }
}
