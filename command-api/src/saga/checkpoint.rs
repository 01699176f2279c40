//! Where the saga resumes after a restart, kept in the event store itself
//! (the command side writes nothing else) as a stream of snapshots, of
//! which the store keeps only the latest: the saga saves one a second while
//! orders flow.
//!
//! A checkpoint also records `handled`, the last position whose commands
//! were all executed, usually well past where the saga resumes (an unpaid
//! order pins that for up to its payment window): a restart folds the
//! events up to it in without executing their commands again. A checkpoint
//! saved by an older build has none: everything up to its `after` was
//! executed, and the saga then folds the whole log from its start up to
//! there, so orders confirmed before payment windows existed are counted
//! and expire too (once, at the first start of this build).

use event_store::{EventMetadata, EventStore, ExpectedRevision, NewEvent, Position, StoreError, StreamName};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The stream of the saga's checkpoints, one snapshot per save.
pub const STREAM: &str = "checkpoint-order-saga";
const EVENT_TYPE: &str = "SagaCheckpointed";

#[derive(Serialize, Deserialize)]
struct Checkpoint {
    /// The saga resumes strictly after this position; `None` means from the
    /// start of the log.
    after: Option<String>,
    /// Every command of the events up to this position was executed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    handled: Option<String>,
}

/// Where the saga resumes, and up to where it had executed every command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Resume {
    pub after: Option<Position>,
    pub handled: Option<Position>,
}

fn stream() -> StreamName {
    StreamName::new(STREAM).expect("the checkpoint stream name is valid")
}

/// Where to resume. The saga loads once as it starts, so this is also where
/// the stream is set to keep only its latest checkpoint (older ones, from
/// before the setting existed, go too).
pub async fn load(store: &dyn EventStore) -> Result<Resume, StoreError> {
    store.set_max_count(&stream(), 1).await?;
    let Some(last) = store.read_last(&stream()).await? else {
        return Ok(Resume::default());
    };
    let corrupt = |detail: String| StoreError::Corrupt {
        position: last.position,
        detail,
    };
    let checkpoint: Checkpoint = serde_json::from_slice(&last.data).map_err(|e| corrupt(e.to_string()))?;
    let parse = |text: Option<String>| {
        text.map(|text| text.parse().map_err(|e| corrupt(format!("position {text:?}: {e}"))))
            .transpose()
    };
    Ok(resume_from(parse(checkpoint.after)?, parse(checkpoint.handled)?))
}

/// Where to resume from a checkpoint's positions. An older build's
/// (`after` without `handled`) pinned no unpaid order: read the log again
/// from its start, executing nothing up to its `after`.
fn resume_from(after: Option<Position>, handled: Option<Position>) -> Resume {
    match (after, handled) {
        (Some(after), None) => Resume {
            after: None,
            handled: Some(after),
        },
        (after, handled) => Resume { after, handled },
    }
}

pub async fn save(store: &dyn EventStore, resume: Resume) -> Result<(), StoreError> {
    let checkpoint = Checkpoint {
        after: resume.after.map(|p| p.to_string()),
        handled: resume.handled.map(|p| p.to_string()),
    };
    let event = NewEvent {
        id: Uuid::now_v7(),
        event_type: EVENT_TYPE.to_owned(),
        data: serde_json::to_vec(&checkpoint).expect("a checkpoint always serializes"),
        metadata: EventMetadata {
            correlation_id: Uuid::now_v7(),
            trace_id: None,
            causation_id: None,
            user_id: None,
            schema_version: 1,
        },
    };
    store.append(&stream(), ExpectedRevision::Any, vec![event]).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use event_store::sqlite::SqliteEventStore;

    #[tokio::test]
    async fn an_older_builds_checkpoint_folds_the_log_from_its_start_executing_nothing_up_to_it() {
        let folder = tempfile::tempdir().expect("a temporary folder");
        let store = SqliteEventStore::open(folder.path().join("events.db")).expect("the store opens");
        let older = NewEvent {
            data: br#"{"after":"7"}"#.to_vec(),
            ..test_event()
        };
        store
            .append(&stream(), ExpectedRevision::Any, vec![older])
            .await
            .expect("appended");
        let resume = load(&store).await.expect("loaded");
        assert_eq!(
            resume,
            Resume {
                after: None,
                handled: Some(Position::at(7)),
            }
        );
        let current = Resume {
            after: Some(Position::at(3)),
            handled: Some(Position::at(9)),
        };
        save(&store, current).await.expect("saved");
        assert_eq!(load(&store).await.expect("loaded"), current);
    }

    fn test_event() -> NewEvent {
        NewEvent {
            id: Uuid::now_v7(),
            event_type: EVENT_TYPE.to_owned(),
            data: Vec::new(),
            metadata: EventMetadata {
                correlation_id: Uuid::now_v7(),
                trace_id: None,
                causation_id: None,
                user_id: None,
                schema_version: 1,
            },
        }
    }

    #[tokio::test]
    async fn the_stream_keeps_only_the_latest_checkpoint() {
        let folder = tempfile::tempdir().expect("a temporary folder");
        let store = SqliteEventStore::open(folder.path().join("events.db")).expect("the store opens");
        // Saved before a max count existed (an older build), then a restart.
        for n in 1..=3 {
            save(&store, at(n, Some(n))).await.expect("saved");
        }
        assert_eq!(load(&store).await.expect("loaded"), at(3, Some(3)));
        for n in 4..=10 {
            save(&store, at(n, Some(n + 5))).await.expect("saved");
        }
        let kept = store.read_stream(&stream(), 0, 100).await.expect("read");
        assert_eq!(kept.len(), 1, "checkpoints kept");
        assert_eq!(kept[0].revision, 9);
        assert_eq!(load(&store).await.expect("loaded"), at(10, Some(15)));
    }

    fn at(after: u64, handled: Option<u64>) -> Resume {
        Resume {
            after: Some(Position::at(after)),
            handled: handled.map(Position::at),
        }
    }
}
