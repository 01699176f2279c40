//! Which aggregates keep snapshots, and how their state is written in one.
//!
//! A product's stream grows with every order that asks it for stock; an
//! order's and an account's stay a handful of events, so they keep none.

use domain::account::Account;
use domain::account::administrators::Administrators;
use domain::account::revocation::AccessToken;
use domain::decider::Decider;
use domain::order::Order;
use domain::product::{Product, ProductState};

/// How an aggregate type's state is kept as a snapshot in the event store,
/// so that loading a long stream reads the snapshot and the events after it.
pub trait Snapshots: Decider {
    /// A snapshot is written once this many events were folded since the
    /// last one; `None`: never.
    const EVERY: Option<u64> = None;
    /// The format of [`Snapshots::encode_snapshot`]; a snapshot of another
    /// version is passed over and the stream folded from its start.
    const VERSION: u32 = 0;

    /// The state as JSON, `None` when this type keeps no snapshots.
    fn encode_snapshot(_state: &Self::State) -> Option<Vec<u8>> {
        None
    }

    fn decode_snapshot(_data: &[u8]) -> Result<Self::State, String> {
        Err("this aggregate keeps no snapshots".to_owned())
    }
}

impl Snapshots for Product {
    /// A load after a restart then folds at most 999 events after the
    /// snapshot; a snapshot (the held orders and the window of recent
    /// answers, some 80 KB at most for a product with 1,000 orders holding)
    /// costs about 80 bytes per event.
    const EVERY: Option<u64> = Some(1000);
    const VERSION: u32 = 1;

    fn encode_snapshot(state: &ProductState) -> Option<Vec<u8>> {
        serde_json::to_vec(state).ok()
    }

    fn decode_snapshot(data: &[u8]) -> Result<ProductState, String> {
        serde_json::from_slice(data).map_err(|e| e.to_string())
    }
}

impl Snapshots for Order {}

impl Snapshots for Account {}

/// One event per stream.
impl Snapshots for AccessToken {}

/// One event per appointment or dismissal: a handful in a shop's life.
impl Snapshots for Administrators {}
