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
//!                                      outcome ─> settle ─> ack | retry(delay) | dead-letter
//! ```
//!
//! The crate is split at one seam. Everything outside `edge` is the core: it
//! decides, builds natively, and `cargo test` exercises it in milliseconds.
//! `edge` is the thin Workers glue (entry points, sockets, queues, storage)
//! and only exists on `wasm32`: it runs what the core returns.
//! Must not (the core): perform I/O, read the clock, draw randomness or import
//! `worker`; time, random bytes and jitter are passed in.
//!
//! Stages, lowest first; a module imports only from its own layer or below
//! (`scripts/check_layers.py` holds the same list and checks it):
//!
//! | layer | module | owns |
//! | --- | --- | --- |
//! | 0 | [`config`] | where setting values come from; the error naming a setting |
//! | 1 | [`message`], [`smtp`] | request -> MIME -> DKIM; the sans-IO SMTP client |
//! | 2 | [`queue`], [`events`], [`inbound`] | the contract between stages: jobs, queue bodies, statuses; the event stream and bounce classes; reports that come back (DSN, ARF) |
//! | 3 | [`accept`] | any entrance -> one signed job: keys and their limits, forms, producers, idempotency, the commit |
//! | 4 | [`delivery`] | upstreams, health, failover, attempts, retry policy, settlement |
//! | 5 | [`http`] | API shapes: routes, batch, listing, views, CORS, delivery mode |
//! | 6 | [`settings`] | every module's settings gathered; only the edge imports it whole |
//! | 7 | `diagnostics` | test and benchmark switches (cargo feature `diagnostics` only) |
//! | 8 | `edge` | wasm32 glue: entry points, routes, sockets, D1, R2, queues |

pub mod accept;
pub mod config;
pub mod delivery;
#[cfg(feature = "diagnostics")]
pub mod diagnostics;
pub mod events;
pub mod http;
pub mod inbound;
pub mod message;
pub mod queue;
pub mod settings;
pub mod smtp;

#[cfg(target_arch = "wasm32")]
pub mod edge;
