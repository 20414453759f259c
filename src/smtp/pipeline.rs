//! Pipelining across transactions (RFC 2920 §3.1): message content may be
//! the first "command" of a group, so the end of one message's data, the
//! next transaction's MAIL, RCPTs and DATA (or QUIT after the last message)
//! go out in one write, and each message costs one round trip instead of
//! two. Replies still arrive in command order and are matched by the wire's
//! queue of expectations.
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
//! the bare terminator sent when nobody was accepted.
//!
//! After `BDAT … LAST` a RSET goes between the data and the next MAIL:
//! RFC 3030 leaves the server's state undefined after a refused BDAT and
//! asks for RSET before further commands; pipelined, it costs no round
//! trip, and after a successful BDAT it is harmless.

use super::reply::Reply;
use super::transaction::Transaction;
use super::wire::{Expect, Wire};

/// Whether the next transaction's commands, or QUIT, may follow the end of
/// `current`'s data in the same write. Its data end must be on the wire
/// already, and no other transaction's data end may still be unanswered.
pub(crate) fn may_follow_data_end(current: &Transaction) -> bool {
    current.is_pipelined() && !current.has_deferred()
}

/// Writes what must come between `ending`'s data and the next
/// transaction's MAIL.
pub(crate) fn separate(ending: &Transaction, wire: &mut Wire, now_ms: u64) {
    if ending.uses_bdat() {
        wire.command(b"RSET\r\n", Expect::Rset, now_ms);
    }
}

/// The reply to the end of data of a transaction that has the next one's
/// commands (or QUIT) behind it. It settles that message only: no
/// continuation follows (it had no deferred recipients) and no RSET (any
/// that was needed went out before the next MAIL). A reply that cannot
/// answer an end of data comes back as the error, with the transaction
/// unchanged.
pub(crate) fn settle_ending(ending: &mut Transaction, reply: Reply) -> Result<(), Reply> {
    ending.settle_data_end(reply).map(|_| ())
}
