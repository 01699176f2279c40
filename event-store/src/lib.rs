//! The event store: one port ([`EventStore`]) and two adapters, chosen by URL.
//!
//! | URL | adapter |
//! | --- | --- |
//! | `esdb://host:2113?tls=false` | [`esdb::EsdbEventStore`], EventStoreDB / KurrentDB over gRPC |
//! | `sqlite://path/events.db` | [`sqlite::SqliteEventStore`], an embedded single-file log |
//!
//! Both keep the same contract, checked by one test suite
//! (`tests/contract.rs`): optimistic concurrency on every append, idempotent
//! re-appends of the same event ids, per-stream and global reads, and a
//! catch-up subscription to the global log that goes live without a gap or a
//! duplicate, a latest snapshot per stream, and streams kept to their last
//! events.

mod connect;
mod error;
pub mod esdb;
mod event;
mod limits;
mod port;
mod revision;
mod snapshot;
pub mod sqlite;
mod stream_name;
mod subscription;

pub use connect::{DEFAULT_URL, connect};
/// Positions belong to the domain, so that readers of the views can name
/// them without linking the event store.
pub use domain::Position;
pub use error::StoreError;
pub use event::{EventMetadata, NewEvent, RecordedEvent};
pub use limits::MAX_APPEND_BYTES;
pub use port::{EventStore, read_whole_stream};
pub use revision::{AppendOutcome, ExpectedRevision};
pub use snapshot::Snapshot;
pub use stream_name::StreamName;
pub use subscription::{StreamFilter, Subscription};
