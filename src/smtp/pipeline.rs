//! Pipelining across transactions (RFC 2920 §3.1): message content may be
//! the first "command" of a group, so the end of one message's data, the
//! next transaction's MAIL, RCPTs and DATA (or QUIT after the last message)
//! go out in one write, and each message costs one round trip instead of
//! two. Replies still arrive in command order and are matched by the wire's
//! queue of expectations.
//!
//! With CHUNKING (RFC 3030) there is no 354 to wait for, and BDAT may be
//! pipelined: a transaction with at most
//! [`BLIND_RECIPIENTS`](super::transaction::BLIND_RECIPIENTS) recipients
//! goes out "blind", MAIL, every RCPT and `BDAT <size> LAST` with the whole
//! message in one write, and up to [`WINDOW`] such transactions are on the
//! wire at once, so a run of messages costs one round trip, not one each.
//! The replies come back in order: each one belongs to the oldest
//! transaction on the wire that still awaits one, so a refusal that arrives
//! while later messages are already written (a 5xx to a RCPT, or to `BDAT
//! … LAST`) settles that message alone. A server that refuses every RCPT
//! refuses the BDAT too and discards its chunk (RFC 3030 §4.2), and a
//! refusal to MAIL makes its RCPTs and BDAT fail the same way. If the
//! connection fails part-way, each transaction on the wire ends by what it
//! knows: settled by its own replies, `Unknown` once its data end was
//! handed out with no reply to it, or retryable before that (see
//! `Transaction::fail`).
//!
//! This file owns the rules for pipelining past an end of data: whether a
//! transaction may have the next one's commands behind it, what goes
//! between them, and what the reply to such a data end settles. The
//! session applies them. Must not: hold session state, or change what a
//! reply means: the reply to the end of data decides
//! the previous message alone, and the next transaction's MAIL stands on
//! its own whatever that reply was, because the end of data closes a
//! transaction whether it succeeded or not (RFC 5321 §4.1.1.4).
//!
//! Not pipelined past: a transaction with recipients deferred by 452 (its
//! continuation needs the data end's reply first), lock-step sessions, and
//! the bare terminator sent when nobody was accepted. A blind transaction's
//! recipients deferred by 452 are not sent again on the connection (others
//! are behind it on the wire): they come back to the caller as retryable.
//!
//! After `BDAT … LAST` a RSET goes before the next MAIL: RFC 3030 leaves
//! the server's state undefined after a refused BDAT and asks for RSET
//! before further commands; pipelined, it costs no round trip, and after a
//! successful BDAT it is harmless.

use super::reply::Reply;
use super::transaction::{DataEnd, Transaction};

/// How many transactions may be on the wire at once with their data ends
/// unanswered. It bounds the replies the server may have to buffer
/// toward a client still writing (RFC 2920 §3.2's deadlock), and what a
/// broken connection leaves `Unknown`.
pub(crate) const WINDOW: usize = 32;

/// Whether the next transaction's commands, or QUIT, may follow the end of
/// `current`'s data in the same write. Its data end must be on the wire
/// already, and no other transaction's data end may still be unanswered.
pub(crate) fn may_follow_data_end(current: &Transaction) -> bool {
    current.is_pipelined() && !current.has_deferred()
}

/// Whether a transaction with its data end on the wire needs a RSET before
/// the next MAIL goes out behind it.
pub(crate) fn owes_rset(ending: &Transaction) -> bool {
    ending.uses_bdat()
}

/// The reply to the end of data of a transaction that has the next one's
/// commands (or QUIT) behind it. It settles that message only: no
/// continuation follows (deferred recipients go back to the caller) and no
/// RSET (any that was needed goes out before the next MAIL). A reply that
/// cannot answer an end of data comes back as the error, with the
/// transaction unchanged.
pub(crate) fn settle_ending(ending: &mut Transaction, reply: Reply) -> Result<DataEnd, Reply> {
    ending.settle_data_end(reply)
}
