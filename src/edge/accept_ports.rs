//! The accept commit sequence's ports over the platform: message rows, leases
//! and tags in D1, jobs on the jobs queue, large bodies in R2.
//!
//! Owns: carrying out each port call and reporting its error. Must not:
//! decide the order of the steps or what to undo (`accept::commit` does),
//! or retry anything. In a build with the `diagnostics` feature the ports
//! are wrapped with `FAULT_ACCEPT`'s faults; a release build has no wrapper.

use worker::Env;

use crate::accept::commit::{
    self, BodyStore, CommitFailure, JobQueue, MessageStore, NewRow, Order, PortError,
};
use crate::events::log_line::LogValue;
use crate::queue::{DeliveryJob, ExternalBody, QueueBody};

use super::d1::Db;
use super::log;
use super::platform::{BODIES_BUCKET, Loaded};
use super::queue_writer;

fn port_error(e: worker::Error) -> PortError {
    PortError(e.to_string())
}

/// D1, the jobs queue and the bodies bucket, as the commit's ports.
pub struct AcceptPorts<'a> {
    env: &'a Env,
    db: Db,
}

impl<'a> AcceptPorts<'a> {
    pub fn new(env: &'a Env) -> worker::Result<Self> {
        Ok(AcceptPorts {
            env,
            db: Db::open(env)?,
        })
    }
}

impl MessageStore for AcceptPorts<'_> {
    async fn insert(&self, row: &NewRow<'_>) -> Result<(), PortError> {
        self.db.insert_accepted(row).await.map_err(port_error)
    }

    async fn delete(&self, id: &str) -> Result<(), PortError> {
        self.db.delete(id).await.map_err(port_error)
    }

    async fn release_lease(&self, id: &str) -> Result<(), PortError> {
        self.db.release_lease(id).await.map_err(port_error)
    }
}

impl JobQueue for AcceptPorts<'_> {
    async fn enqueue(&self, body: &QueueBody, delay_seconds: Option<u32>) -> Result<(), PortError> {
        queue_writer::send_job(self.env, body, delay_seconds)
            .await
            .map_err(port_error)
    }
}

impl BodyStore for AcceptPorts<'_> {
    async fn put(&self, body: &ExternalBody) -> Result<(), PortError> {
        super::bodies::store(self.env, body)
            .await
            .map_err(port_error)
    }

    async fn release(&self, key: &str) -> Result<(), PortError> {
        let bucket = self.env.bucket(BODIES_BUCKET).map_err(port_error)?;
        bucket.delete(key).await.map_err(port_error)
    }
}

/// Runs the commit sequence over D1, the queue and R2 for every copy of a
/// message: all, or none (see `accept::commit::commit_copies`; a message of
/// one copy is the plain sequence). In a diagnostics build the ports are
/// wrapped by the accept fault switches.
pub async fn commit_copies(
    ports: &AcceptPorts<'_>,
    loaded: &Loaded,
    orders: Vec<Order>,
) -> Result<Vec<DeliveryJob>, CommitFailure> {
    #[cfg(feature = "diagnostics")]
    let ports = &loaded.diagnostics.accept_faults.wrap(ports);
    #[cfg(not(feature = "diagnostics"))]
    let _ = loaded;
    let committed = commit::commit_copies(ports, ports, ports, orders).await;
    if let Err(failure) = &committed
        && !failure.residue.is_empty()
    {
        log::warn(
            "refused_message_left_residue",
            &[("residue", LogValue::Text(&format!("{:?}", failure.residue)))],
        );
    }
    committed
}
