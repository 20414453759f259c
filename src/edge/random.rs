//! Randomness from the runtime's CSPRNG (crypto.getRandomValues, via
//! getrandom): message ids, retry jitter, the ids of discarded forms, and
//! webhook endpoint ids and secrets.
//!
//! Must not: be reached from the core (which takes random bytes and jitter as
//! parameters); only [`secret`] may produce a secret ([`bytes`] leaves zeros
//! when the source fails).

pub fn bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    // The runtime's CSPRNG does not fail; should it ever, the zeros below only
    // weaken ids and jitter, never a secret.
    let _ = getrandom::fill(&mut buf);
    buf
}

/// A number in [0, 1) for retry jitter.
pub fn unit() -> f64 {
    let b = bytes::<4>();
    f64::from(u32::from_le_bytes(b)) / (f64::from(u32::MAX) + 1.0)
}

/// Random bytes for a secret, or `None` if the source failed: unlike
/// [`bytes`], never zeros.
pub fn secret<const N: usize>() -> Option<[u8; N]> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).ok().map(|()| buf)
}
