//! The last verification of each generation as metrics:
//! `projection_verify_differences{projection,generation}` (rows that
//! differed) and `projection_verify_timestamp_seconds` (when). Set by the
//! process that verified, and refreshed from the records by every
//! projectors daemon, so that a verification run from the CLI shows in the
//! daemons' metrics too.

use std::time::Duration;

use sea_orm::{DatabaseConnection, DbErr};
use tokio_util::sync::CancellationToken;

use super::{Slot, record};

/// How often a daemon refreshes the gauges from the records.
pub const REFRESH: Duration = Duration::from_secs(15);

/// Sets the gauges of `projection`'s generation in `slot`.
pub fn verified(projection: &str, slot: Slot, differences: u64, at: chrono::DateTime<chrono::Utc>) {
    let labels = [
        ("projection", projection.to_owned()),
        ("generation", slot.label().to_owned()),
    ];
    metrics::gauge!("projection_verify_differences", &labels).set(differences as f64);
    metrics::gauge!("projection_verify_timestamp_seconds", &labels).set(at.timestamp() as f64);
}

/// Sets the gauges from every verified generation's record, and to 0 for
/// the generations that have none (dropped, promoted, never verified), so
/// that a gauge does not keep a generation's differences once it is gone.
pub async fn refresh(db: &DatabaseConnection) -> Result<(), DbErr> {
    let records = record::all(db).await?;
    for projection in crate::all() {
        for slot in Slot::ALL {
            let key = slot.name(projection.name());
            let verified = records
                .iter()
                .find(|generation| generation.generation == key)
                .and_then(|generation| Some((generation.differences?, generation.verified_at?)));
            let (differences, at) = verified.unwrap_or((0, chrono::DateTime::UNIX_EPOCH));
            self::verified(projection.name(), slot, differences.max(0) as u64, at);
        }
    }
    Ok(())
}

/// Refreshes the gauges every [`REFRESH`] until `shutdown`; a failed
/// refresh (the database away) is tried again at the next one.
pub async fn keep_refreshed(db: DatabaseConnection, shutdown: CancellationToken) {
    loop {
        if let Err(error) = refresh(&db).await {
            tracing::debug!(%error, "cannot refresh the verification metrics");
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(REFRESH) => {}
        }
    }
}
