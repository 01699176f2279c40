//! Running every projection in this process, each while this instance holds
//! its claim on it (`claim.rs`): with several instances, one runs each
//! projection and another takes over when it stops or dies.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use event_store::{EventStore, Position};
use sea_orm::DatabaseConnection;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::claim::Claim;
use crate::instance::{Instance, Subscriber};
use crate::projection::Projection;
use crate::runner::{Follower, ProjectorOptions};

/// The running projections and how far each has got.
pub struct Running {
    pub progress: BTreeMap<&'static str, watch::Receiver<Option<Position>>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Running {
    /// Waits for every projection to stop after shutdown.
    pub async fn stopped(self) {
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// Starts every projection, as an instance of its own.
pub fn start(
    store: Arc<dyn EventStore>,
    db: DatabaseConnection,
    options: ProjectorOptions,
    shutdown: CancellationToken,
) -> Running {
    start_in(&Arc::new(Instance::default()), store, db, options, shutdown)
}

/// Starts every projection as `instance`, which then knows how each goes
/// (for readiness). Outages of the store or the database, and failed
/// writes, restart a projection after a pause; an event it cannot read is
/// tried again, then parked (`quarantine.rs`).
pub fn start_in(
    instance: &Arc<Instance>,
    store: Arc<dyn EventStore>,
    db: DatabaseConnection,
    options: ProjectorOptions,
    shutdown: CancellationToken,
) -> Running {
    // The projections count from their first batch, not from the first
    // HTTP request that would install the recorder otherwise.
    api_common::metrics::handle();
    let mut progress = BTreeMap::new();
    let mut tasks = Vec::new();
    for projection in crate::all() {
        let (sender, receiver) = watch::channel(None);
        progress.insert(projection.name(), receiver.clone());
        let supervised = Supervised {
            store: Arc::clone(&store),
            db: db.clone(),
            subscriber: instance.register(projection.name(), receiver),
            projection,
            options: options.clone(),
            holder: instance.id().to_owned(),
            progress: sender,
        };
        tasks.push(tokio::spawn(supervised.run(shutdown.clone())));
    }
    Running { progress, tasks }
}

struct Supervised {
    store: Arc<dyn EventStore>,
    db: DatabaseConnection,
    projection: Arc<dyn Projection>,
    options: ProjectorOptions,
    holder: String,
    progress: watch::Sender<Option<Position>>,
    subscriber: Arc<Subscriber>,
}

/// Marks its projection ended when dropped (its task returned or
/// panicked) unless the instance is shutting down.
struct EndGuard<'a> {
    subscriber: &'a Subscriber,
    shutdown: &'a CancellationToken,
}

impl Drop for EndGuard<'_> {
    fn drop(&mut self) {
        if !self.shutdown.is_cancelled() {
            tracing::error!(projection = self.subscriber.name(), "projection task ended");
            self.subscriber.set_ended();
        }
    }
}

impl Supervised {
    async fn run(self, shutdown: CancellationToken) {
        let name = self.projection.name();
        let _ended = EndGuard {
            subscriber: &self.subscriber,
            shutdown: &shutdown,
        };
        let mut claim = Claim::new(self.db.clone(), name, self.holder.clone(), self.options.lease_ttl);
        loop {
            let pause = match claim.take().await {
                Ok(true) => {
                    tracing::info!(projection = name, holder = self.holder, "lease taken");
                    let (flow, returned) = self.while_holding(claim, &shutdown).await;
                    self.subscriber.set_held(false);
                    claim = returned;
                    if flow.is_break() {
                        claim.give_up().await;
                        return;
                    }
                    claim.retry_after()
                }
                Ok(false) => claim.retry_after(),
                Err(error) => {
                    tracing::warn!(projection = name, %error, "cannot take the lease");
                    claim.renew_every()
                }
            };
            tokio::select! {
                () = shutdown.cancelled() => {
                    claim.give_up().await;
                    return;
                }
                () = tokio::time::sleep(pause) => {}
            }
        }
    }

    /// Runs the projection, restarting it after outages, while `claim`
    /// holds, and hands the claim back. `Break` on shutdown; `Continue`
    /// when the claim was lost.
    async fn while_holding(&self, claim: Claim, shutdown: &CancellationToken) -> (std::ops::ControlFlow<()>, Claim) {
        use std::ops::ControlFlow::{Break, Continue};
        let name = self.projection.name();
        let holding = shutdown.child_token();
        let renewing = tokio::spawn(renew(claim, holding.clone()));
        let follower = Follower {
            store: Arc::clone(&self.store),
            db: self.db.clone(),
            projection: Arc::clone(&self.projection),
            slot: crate::generations::Slot::Live,
            options: self.options.clone(),
            progress: self.progress.clone(),
            subscriber: Arc::clone(&self.subscriber),
            parked_by: self.holder.clone(),
        };
        let flow = loop {
            match follower.follow(&holding).await {
                Ok(()) if shutdown.is_cancelled() => break Break(()),
                Ok(()) => break Continue(()),
                Err(error) => {
                    tracing::warn!(projection = name, %error, "projection failed; restarting");
                    tokio::select! {
                        () = holding.cancelled() => break if shutdown.is_cancelled() { Break(()) } else { Continue(()) },
                        () = tokio::time::sleep(self.options.quarantine.pause) => {}
                    }
                }
            }
        };
        holding.cancel();
        let claim = renewing.await.expect("the renewal task does not panic");
        (flow, claim)
    }
}

/// Renews `claim` every third of the lease until `holding` is cancelled,
/// and hands it back; cancels `holding` itself when the claim is lost
/// (another instance took it, or the Postgres session holding it is gone)
/// or could not be renewed for a whole lease.
async fn renew(mut claim: Claim, holding: CancellationToken) -> Claim {
    let projection = claim.projection();
    let mut renewed = Instant::now();
    loop {
        tokio::select! {
            () = holding.cancelled() => return claim,
            () = tokio::time::sleep(claim.renew_every()) => {}
        }
        match claim.keep().await {
            Ok(true) => renewed = Instant::now(),
            Ok(false) => {
                tracing::warn!(projection, "lease lost to another instance; stopping here");
                holding.cancel();
                return claim;
            }
            Err(error) if renewed.elapsed() >= claim.lease_ttl() => {
                tracing::warn!(projection, %error, "lease not renewed in time; stopping here");
                holding.cancel();
                return claim;
            }
            Err(error) => tracing::warn!(projection, %error, "cannot renew the lease yet"),
        }
    }
}
