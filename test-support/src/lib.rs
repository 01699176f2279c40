//! What Shop's integration tests and benchmarks share: the services started
//! in this process over real HTTP ([`App`], [`Shop`], [`system`],
//! [`projectors_admin`]), a throwaway Postgres ([`postgres`]), forged tokens
//! ([`tokens`]), an event store that fails on cue ([`FaultyStore`]), the
//! HTTP method rules every service keeps ([`methods`]), the OpenAPI drift
//! checks ([`openapi`]), the binaries run as their users run them
//! ([`binary`]), each service a process of its own ([`deployment`]) and
//! the benchmarks' machine line ([`bench`](mod@bench)).
//!
//! It depends on the crates it starts, so it is only ever a
//! dev-dependency, for tests in `tests/` and benchmarks: they link the
//! same build of those crates as this one does. (A crate's unit tests in
//! `src/` are a build of their own and cannot use it.)

// Here an unwrap is an assertion with a backtrace, as in the tests.
#![allow(clippy::unwrap_used)]

pub mod app;
pub mod bench;
pub mod binary;
pub mod deployment;
pub mod faulty_store;
pub mod killable;
pub mod methods;
pub mod openapi;
pub mod postgres;
pub mod projectors_admin;
pub mod shop;
pub mod system;
pub mod tokens;
pub mod views_rows;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use event_store::{EventMetadata, EventStore, NewEvent};
use reqwest::StatusCode;
use serde_json::Value;

pub use app::{App, order_body, order_stream_name, product_stream_name};
pub use faulty_store::FaultyStore;
pub use shop::Shop;

/// How long tests wait for what the system does on its own (the saga
/// deciding or releasing, the projectors catching up): generous, so a
/// loaded machine only slows the tests down and running out of it means a
/// bug.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// Polls `check` every 20 ms until it answers `Ok`, and returns what it
/// found; after [`PATIENCE`] fails saying what did not happen and what
/// `check` last found.
///
/// `check` is a closure returning a future (`|| async move { … }`), not an
/// async closure: a future that waits on an async closure's borrowed
/// future cannot be spawned (rustc: "`Send` is not general enough").
pub async fn wait_for<T, Found>(what: &str, mut check: impl FnMut() -> Found) -> T
where
    Found: Future<Output = Result<T, String>>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let last = match check().await {
            Ok(found) => return found,
            Err(last) => last,
        };
        if tokio::time::Instant::now() >= deadline {
            panic!("{what} did not happen within {PATIENCE:?}: {last}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Sends `request`: the status and the body, as JSON when it is JSON and
/// as a string otherwise. An answer may take up to the command API's order
/// wait ([`PATIENCE`] in tests), so the client waits twice that.
pub async fn respond(request: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let response = tokio::time::timeout(PATIENCE * 2, request.send())
        .await
        .unwrap_or_else(|_| panic!("no answer within {:?}", PATIENCE * 2))
        .unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, body)
}

/// The embedded event store in `folder` (created when it is not there).
pub fn embedded_store(folder: &Path) -> Arc<dyn EventStore> {
    Arc::new(event_store::sqlite::SqliteEventStore::open(folder.join("events.db")).unwrap())
}

/// The URL of a fresh SQLite views database, and the folder that keeps it.
pub fn sqlite_views() -> (String, tempfile::TempDir) {
    let folder = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", folder.path().join("views.db").display());
    (url, folder)
}

/// An event of `event_type` with `data` as no request caused it: a fresh
/// correlation id, no cause, no user.
pub fn new_event(event_type: &str, schema_version: u32, data: Vec<u8>) -> NewEvent {
    NewEvent {
        id: uuid::Uuid::new_v4(),
        event_type: event_type.to_owned(),
        data,
        metadata: EventMetadata {
            correlation_id: uuid::Uuid::new_v4(),
            trace_id: None,
            causation_id: None,
            user_id: None,
            schema_version,
        },
    }
}
