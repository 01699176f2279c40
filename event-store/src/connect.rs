use std::sync::Arc;

use crate::esdb::EsdbEventStore;
use crate::sqlite::SqliteEventStore;
use crate::{EventStore, StoreError};

/// Where the events are when no URL is configured: the embedded store in
/// `./data`.
pub const DEFAULT_URL: &str = "sqlite://data/events.db";

/// Opens the event store a URL names:
///
/// - `esdb://host:2113?tls=false` (also `esdb+discover://`, `kurrentdb://`):
///   EventStoreDB through its official client;
/// - `sqlite://path/to/events.db` (relative to the working directory) or
///   `sqlite:///absolute/path/events.db`: the embedded store.
pub fn connect(url: &str) -> Result<Arc<dyn EventStore>, StoreError> {
    let unsupported = |reason: &str| StoreError::UnsupportedUrl {
        url: url.to_owned(),
        reason: reason.to_owned(),
    };
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| unsupported("expected scheme://..."))?;
    match scheme {
        "esdb" | "esdb+discover" => Ok(Arc::new(EsdbEventStore::connect(url)?)),
        "kurrentdb" | "kurrentdb+discover" | "kdb" | "kdb+discover" => {
            let esdb_url = format!(
                "{}://{rest}",
                scheme.replace("kurrentdb", "esdb").replace("kdb", "esdb")
            );
            Ok(Arc::new(EsdbEventStore::connect(&esdb_url)?))
        }
        "sqlite" => {
            let path = rest.split('?').next().unwrap_or_default();
            if path.is_empty() {
                return Err(unsupported("sqlite:// needs a file path"));
            }
            Ok(Arc::new(SqliteEventStore::open(path)?))
        }
        _ => Err(unsupported("the scheme must be esdb, kurrentdb or sqlite")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_urls_it_cannot_serve() {
        for url in ["", "events.db", "postgres://localhost/db", "sqlite://"] {
            assert!(
                matches!(connect(url), Err(StoreError::UnsupportedUrl { .. })),
                "case {url:?}"
            );
        }
    }

    #[tokio::test]
    async fn opens_an_embedded_store_by_url() {
        let folder = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/nested/events.db", folder.path().display());
        let store = connect(&url).unwrap();
        assert_eq!(store.head().await.unwrap(), None);
        assert!(folder.path().join("nested/events.db").exists());
    }
}
