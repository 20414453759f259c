//! Randomness from the runtime's CSPRNG (crypto.getRandomValues, via
//! getrandom): message ids, retry jitter, and the ids of discarded forms.
//!
//! Must not: be reached from the core (which takes random bytes and jitter as
//! parameters), or produce a secret: a failing source leaves zeros.

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
