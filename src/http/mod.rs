//! HTTP shapes: how requests and answers look on the wire, without plumbing.
//!
//! Owns: the route table (paths, their methods, the `Allow` of a 405), the
//! `202` answer of an accepted message, the batch endpoint's per-item
//! results, listing queries and cursors, the views of stored messages (and
//! of a message sent as one copy per recipient), CORS for publishable keys,
//! the delivery mode and dry run query parameters (and the dry run's
//! answer), the `/v1/suppressions` queries, bodies
//! and views, the requests and answers of `/v1/webhooks`, and the
//! `/v1/inbound-reports` query and view, the answers of
//! `/v1/provider-events/{id}`, the `/v1/privacy` query and answers, the
//! requests and answers of `/v1/keys`, the scope each route needs, and
//! the operator's view of the upstreams (`/v1/upstreams`), and other
//! providers' API shapes (`compat`: Resend's and SendGrid's requests as
//! send requests, and errors in their shapes).
//! Must not: perform I/O, or decide who may send or how mail is delivered.

pub mod accepted;
pub mod batch;
pub mod compat;
pub mod copies;
pub mod cors;
pub mod dashboard;
pub mod delivery_mode;
pub mod domains;
pub mod dry_run;
pub mod inbound_reports;
pub mod keys;
pub mod listing;
pub mod privacy;
pub mod provider_events;
pub mod routes;
pub mod stats;
pub mod suppressions;
pub mod templates;
pub mod upstreams;
pub mod views;
pub mod webhooks;
