//! edgerelay: an email relay that runs at the edge.
//!
//! Callers hand mail to edgerelay over an authenticated HTTPS API or through a
//! Cloudflare Queue. The flow runs one way only:
//!
//! ```text
//! HTTP request ─┐                                       ┌─> upstream smarthost (465/587)
//!               ├─> accept ─> store + enqueue ─> consume ─> deliver
//! queue message ┘   (auth,     (queue)           (batch)   (SMTP)
//!                    validate,
//!                    MIME, DKIM)
//!                                                  │
//!                                      outcome ─> policy ─> ack | retry(delay) | dead-letter
//! ```
//!
//! The crate is split at one seam. Everything outside [`edge`] is the core: no
//! I/O, no clock, no `worker` import, so it builds natively and `cargo test`
//! exercises it in milliseconds. [`edge`] is the thin Workers glue (entry
//! points, sockets, queues, storage) and only exists on `wasm32`.

pub mod api;
pub mod config;
pub mod delivery;
pub mod message;
pub mod smtp;

#[cfg(target_arch = "wasm32")]
pub mod edge;
