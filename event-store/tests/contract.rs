//! The event store contract: one suite, run against every adapter.
//!
//! The EventStoreDB half runs when `TEST_ESDB_URL` points at a server (for
//! example `esdb://localhost:2113?tls=false` with an insecure node started
//! as README.md, "Run in production", shows); without it, cargo lists each of its
//! tests as ignored with the reason.

// In tests an unwrap is an assertion with a backtrace.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use event_store::{
    ExpectedRevision, MAX_APPEND_BYTES, NewEvent, Position, Snapshot, StoreError, StreamFilter, StreamName,
};
use support::{Context, assert_strictly_increasing, event, events, ids, is_wrong_revision, metadata, next_event};
use uuid::Uuid;

/// Declares the suite for one adapter: a test per case, each with a fresh
/// context from `$context`, carrying `$attribute`.
macro_rules! contract_suite {
    ($adapter:ident, $context:path, #[$attribute:meta]) => {
        mod $adapter {
            contract_suite!(@cases $context, #[$attribute],
                append_then_read_back,
                expected_revision_matrix,
                racing_writers_on_an_empty_stream_one_wins,
                concurrent_appenders_with_retries_lose_nothing,
                repeated_append_is_stored_once,
                read_stream_pages_and_missing_streams,
                read_all_resumes_strictly_after_a_position,
                read_all_filters_by_stream_prefix,
                subscription_catches_up_goes_live_and_resumes_without_gap_or_duplicate,
                subscription_sees_only_filtered_streams,
                large_events_round_trip_and_oversize_appends_are_refused,
                many_streams_keep_their_own_order,
                invalid_input_is_refused_with_typed_errors,
                head_is_the_last_position,
                head_passes_over_system_events,
                snapshots_keep_the_latest_of_each_stream,
                invalid_snapshots_are_refused,
                a_stream_kept_to_a_max_count_keeps_its_last_events,
            );
        }
    };
    (@cases $context:path, #[$attribute:meta], $($case:ident),* $(,)?) => {
        $(
            #[$attribute]
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let context = $context().await;
                super::$case(&context).await;
            }
        )*
    };
}

contract_suite!(sqlite, crate::support::sqlite, #[cfg_attr(any(), ignore)]);
contract_suite!(
    esdb,
    crate::support::esdb,
    #[cfg_attr(
        not(esdb_available),
        ignore = "EventStoreDB contract suite NOT RUN: set TEST_ESDB_URL (esdb://localhost:2113?tls=false)"
    )]
);

async fn append_then_read_back(context: &Context) {
    let stream = context.stream("order-1");
    let written = events("Thing", 3);
    let outcome = context
        .store
        .append(&stream, ExpectedRevision::NoStream, written.clone())
        .await
        .unwrap();
    assert_eq!(outcome.revision, 2);
    let read = context.store.read_stream(&stream, 0, 100).await.unwrap();
    assert_eq!(read.len(), 3);
    for (revision, (stored, sent)) in read.iter().zip(&written).enumerate() {
        assert_eq!(stored.id, sent.id);
        assert_eq!(stored.revision, revision as u64);
        assert_eq!(stored.stream, stream.as_str());
        assert_eq!(stored.event_type, sent.event_type);
        let stored_data: serde_json::Value = serde_json::from_slice(&stored.data).unwrap();
        let sent_data: serde_json::Value = serde_json::from_slice(&sent.data).unwrap();
        assert_eq!(stored_data, sent_data);
        assert_eq!(stored.metadata, sent.metadata);
    }
    assert_strictly_increasing(&read);
    assert_eq!(read.last().unwrap().position, outcome.position);
}

async fn expected_revision_matrix(context: &Context) {
    use ExpectedRevision::*;
    // (events already in the stream, expectation, accepted, actual revision reported on refusal)
    let cases = [
        (0, Any, true, None),
        (0, NoStream, true, None),
        (0, StreamExists, false, None),
        (0, Exact(0), false, None),
        (2, Any, true, None),
        (2, NoStream, false, Some(1)),
        (2, StreamExists, true, None),
        (2, Exact(1), true, None),
        (2, Exact(0), false, Some(1)),
        (2, Exact(5), false, Some(1)),
    ];
    for (index, (existing, expected, accepted, reported)) in cases.into_iter().enumerate() {
        let case = format!("case {index}: {existing} events, expecting {expected:?}");
        let stream = context.stream(&format!("matrix-{index}"));
        if existing > 0 {
            context
                .store
                .append(&stream, NoStream, events("Setup", existing))
                .await
                .unwrap();
        }
        let result = context.store.append(&stream, expected, vec![event("Probe", 0)]).await;
        let stored = context.store.read_stream(&stream, 0, 100).await.unwrap();
        if accepted {
            let outcome = result.unwrap_or_else(|e| panic!("{case}: refused with {e}"));
            assert_eq!(outcome.revision, existing, "{case}");
            assert_eq!(stored.len() as u64, existing + 1, "{case}");
        } else {
            match result {
                Err(StoreError::WrongExpectedRevision {
                    actual, expected: e, ..
                }) => {
                    assert_eq!(actual, reported, "{case}");
                    assert_eq!(e, expected, "{case}");
                }
                other => panic!("{case}: expected a conflict, got {other:?}"),
            }
            assert_eq!(stored.len() as u64, existing, "{case}: a refused append stores nothing");
        }
    }
}

async fn racing_writers_on_an_empty_stream_one_wins(context: &Context) {
    let stream = context.stream("claim-1");
    let racers = (0..16).map(|n| {
        let store = Arc::clone(&context.store);
        let stream = stream.clone();
        tokio::spawn(async move {
            store
                .append(&stream, ExpectedRevision::NoStream, vec![event("Claimed", n)])
                .await
        })
    });
    let results: Vec<_> = futures::future::join_all(racers)
        .await
        .into_iter()
        .map(|joined| joined.unwrap())
        .collect();
    assert_eq!(
        results.iter().filter(|r| r.is_ok()).count(),
        1,
        "exactly one writer wins"
    );
    assert!(
        results.iter().filter(|r| r.is_err()).all(is_wrong_revision),
        "every loser gets a conflict: {results:?}"
    );
    assert_eq!(context.store.read_stream(&stream, 0, 100).await.unwrap().len(), 1);
}

async fn concurrent_appenders_with_retries_lose_nothing(context: &Context) {
    const WRITERS: u64 = 8;
    const APPENDS: u64 = 25;
    let stream = context.stream("counter-1");
    let writers = (0..WRITERS).map(|writer| {
        let store = Arc::clone(&context.store);
        let stream = stream.clone();
        tokio::spawn(async move {
            let mut mine = Vec::new();
            for n in 0..APPENDS {
                let new = event("Incremented", writer * 1000 + n);
                mine.push(new.id);
                loop {
                    let current = store
                        .read_stream(&stream, 0, 10_000)
                        .await
                        .unwrap()
                        .last()
                        .map(|e| e.revision);
                    let result = store
                        .append(&stream, ExpectedRevision::after(current), vec![new.clone()])
                        .await;
                    match result {
                        Ok(_) => break,
                        Err(StoreError::WrongExpectedRevision { .. }) => continue,
                        Err(e) => panic!("append failed: {e}"),
                    }
                }
            }
            mine
        })
    });
    let mut expected = BTreeSet::new();
    for writer in futures::future::join_all(writers).await {
        expected.extend(writer.unwrap());
    }
    let stored = context.store.read_stream(&stream, 0, 10_000).await.unwrap();
    let revisions: Vec<u64> = stored.iter().map(|e| e.revision).collect();
    assert_eq!(revisions, (0..WRITERS * APPENDS).collect::<Vec<_>>());
    assert_eq!(stored.iter().map(|e| e.id).collect::<BTreeSet<_>>(), expected);
    assert_strictly_increasing(&stored);
}

async fn repeated_append_is_stored_once(context: &Context) {
    let stream = context.stream("order-1");
    let batch = events("Placed", 2);
    let first = context
        .store
        .append(&stream, ExpectedRevision::NoStream, batch.clone())
        .await
        .unwrap();
    let again = context
        .store
        .append(&stream, ExpectedRevision::NoStream, batch.clone())
        .await
        .unwrap();
    assert_eq!(again.revision, first.revision);
    let stored = context.store.read_stream(&stream, 0, 100).await.unwrap();
    assert_eq!(ids(&stored), batch.iter().map(|e| e.id).collect::<Vec<_>>());
}

async fn read_stream_pages_and_missing_streams(context: &Context) {
    let stream = context.stream("paged-1");
    context
        .store
        .append(&stream, ExpectedRevision::NoStream, events("Thing", 10))
        .await
        .unwrap();
    let page = context.store.read_stream(&stream, 3, 4).await.unwrap();
    assert_eq!(page.iter().map(|e| e.revision).collect::<Vec<_>>(), vec![3, 4, 5, 6]);
    assert!(context.store.read_stream(&stream, 10, 5).await.unwrap().is_empty());
    let missing = context.stream("missing-1");
    assert!(context.store.read_stream(&missing, 0, 5).await.unwrap().is_empty());
    assert_eq!(context.store.read_last(&missing).await.unwrap(), None);
    assert_eq!(context.store.last_revision(&missing).await.unwrap(), None);
    assert_eq!(context.store.last_revision(&stream).await.unwrap(), Some(9));
    let last = context.store.read_last(&stream).await.unwrap().expect("a last event");
    assert_eq!(last.revision, 9);
    let whole = event_store::read_whole_stream(context.store.as_ref(), &stream)
        .await
        .unwrap();
    assert_eq!(whole.len(), 10);
}

async fn read_all_resumes_strictly_after_a_position(context: &Context) {
    let mut appended = Vec::new();
    for n in 0..9 {
        let stream = context.stream(&format!("s-{}", n % 3));
        let new = event("Thing", n);
        appended.push(new.id);
        context
            .store
            .append(&stream, ExpectedRevision::Any, vec![new])
            .await
            .unwrap();
    }
    let all = context.store.read_all(None, 100, &context.filter()).await.unwrap();
    assert_eq!(ids(&all), appended, "the global log is in commit order");
    assert_strictly_increasing(&all);
    let rest = context
        .store
        .read_all(Some(all[2].position), 100, &context.filter())
        .await
        .unwrap();
    assert_eq!(ids(&rest), appended[3..].to_vec());
    let limited = context
        .store
        .read_all(Some(all[2].position), 4, &context.filter())
        .await
        .unwrap();
    assert_eq!(ids(&limited), appended[3..7].to_vec());
    let none = context
        .store
        .read_all(Some(all[8].position), 100, &context.filter())
        .await
        .unwrap();
    assert!(none.is_empty());
}

async fn read_all_filters_by_stream_prefix(context: &Context) {
    for n in 0..4 {
        let category = if n % 2 == 0 { "order" } else { "product" };
        let stream = context.stream(&format!("{category}-{n}"));
        context
            .store
            .append(&stream, ExpectedRevision::NoStream, vec![event("Thing", n)])
            .await
            .unwrap();
    }
    let orders = event_store::StreamFilter::prefixes([format!("{}order-", context.prefix)]);
    let read = context.store.read_all(None, 100, &orders).await.unwrap();
    assert_eq!(read.len(), 2);
    assert!(
        read.iter()
            .all(|e| e.stream.starts_with(&format!("{}order-", context.prefix)))
    );
}

async fn subscription_catches_up_goes_live_and_resumes_without_gap_or_duplicate(context: &Context) {
    let stream = context.stream("log-1");
    for n in 0..20 {
        context
            .store
            .append(&stream, ExpectedRevision::Any, vec![event("Thing", n)])
            .await
            .unwrap();
    }
    let writer = {
        let store = Arc::clone(&context.store);
        let stream = stream.clone();
        tokio::spawn(async move {
            for n in 20..40 {
                store
                    .append(&stream, ExpectedRevision::Any, vec![event("Thing", n)])
                    .await
                    .unwrap();
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    let mut seen = Vec::new();
    let mut subscription = context.store.subscribe_all(None, context.filter());
    for _ in 0..25 {
        seen.push(next_event(&mut subscription).await);
    }
    drop(subscription);
    let mut resumed = context.store.subscribe_all(Some(seen[24].position), context.filter());
    for _ in 25..40 {
        seen.push(next_event(&mut resumed).await);
    }
    writer.await.unwrap();
    let quiet = tokio::time::timeout(Duration::from_millis(300), resumed.next()).await;
    assert!(quiet.is_err(), "no event after the last one: {quiet:?}");
    let stored = context.store.read_all(None, 100, &context.filter()).await.unwrap();
    assert_eq!(stored.len(), 40);
    assert_eq!(ids(&seen), ids(&stored), "every event once, in commit order");
    assert_strictly_increasing(&seen);
}

async fn subscription_sees_only_filtered_streams(context: &Context) {
    let mut subscription = context.store.subscribe_all(
        None,
        event_store::StreamFilter::prefixes([format!("{}order-", context.prefix)]),
    );
    let other = context.stream("account-1");
    let order = context.stream("order-1");
    context
        .store
        .append(&other, ExpectedRevision::Any, vec![event("Other", 0)])
        .await
        .unwrap();
    let wanted = event("Wanted", 1);
    context
        .store
        .append(&order, ExpectedRevision::Any, vec![wanted.clone()])
        .await
        .unwrap();
    assert_eq!(next_event(&mut subscription).await.id, wanted.id);
}

async fn large_events_round_trip_and_oversize_appends_are_refused(context: &Context) {
    let stream = context.stream("large-1");
    let big_text = "x".repeat(900_000);
    let big = NewEvent {
        id: Uuid::new_v4(),
        event_type: "Big".to_owned(),
        data: serde_json::to_vec(&serde_json::json!({ "text": big_text })).unwrap(),
        metadata: metadata(),
    };
    context
        .store
        .append(&stream, ExpectedRevision::NoStream, vec![big.clone()])
        .await
        .unwrap();
    let read = context.store.read_stream(&stream, 0, 1).await.unwrap();
    let data: serde_json::Value = serde_json::from_slice(&read[0].data).unwrap();
    assert_eq!(data["text"].as_str().map(str::len), Some(900_000));

    let too_big = NewEvent {
        id: Uuid::new_v4(),
        event_type: "TooBig".to_owned(),
        data: serde_json::to_vec(&"y".repeat(MAX_APPEND_BYTES + 1)).unwrap(),
        metadata: metadata(),
    };
    let halves = vec![
        NewEvent {
            data: serde_json::to_vec(&"z".repeat(MAX_APPEND_BYTES / 2 + 1)).unwrap(),
            ..event("Half", 0)
        },
        NewEvent {
            data: serde_json::to_vec(&"z".repeat(MAX_APPEND_BYTES / 2 + 1)).unwrap(),
            ..event("Half", 1)
        },
    ];
    for batch in [vec![too_big], halves] {
        let result = context.store.append(&stream, ExpectedRevision::Any, batch).await;
        assert!(matches!(result, Err(StoreError::TooLarge { .. })), "{result:?}");
    }
    assert_eq!(context.store.read_stream(&stream, 0, 10).await.unwrap().len(), 1);
}

async fn many_streams_keep_their_own_order(context: &Context) {
    const STREAMS: u64 = 100;
    const PER_STREAM: u64 = 5;
    let tasks = (0..10).map(|task| {
        let store = Arc::clone(&context.store);
        let streams: Vec<StreamName> = (0..STREAMS)
            .filter(|n| n % 10 == task)
            .map(|n| context.stream(&format!("many-{n}")))
            .collect();
        tokio::spawn(async move {
            for revision in 0..PER_STREAM {
                for stream in &streams {
                    store
                        .append(stream, ExpectedRevision::Any, vec![event("Thing", revision)])
                        .await
                        .unwrap();
                }
            }
        })
    });
    for task in futures::future::join_all(tasks).await {
        task.unwrap();
    }
    for n in 0..STREAMS {
        let stream = context.stream(&format!("many-{n}"));
        let stored = context.store.read_stream(&stream, 0, 100).await.unwrap();
        let numbers: Vec<u64> = stored
            .iter()
            .map(|e| {
                serde_json::from_slice::<serde_json::Value>(&e.data).unwrap()["n"]
                    .as_u64()
                    .unwrap()
            })
            .collect();
        assert_eq!(numbers, (0..PER_STREAM).collect::<Vec<_>>(), "stream {n}");
    }
    let all = context.store.read_all(None, 10_000, &context.filter()).await.unwrap();
    assert_eq!(all.len() as u64, STREAMS * PER_STREAM);
    assert_strictly_increasing(&all);
}

async fn invalid_input_is_refused_with_typed_errors(context: &Context) {
    for name in ["", "$system", "has space", &"x".repeat(300)] {
        assert!(
            matches!(StreamName::new(name), Err(StoreError::InvalidStreamName { .. })),
            "stream name {name:?}"
        );
    }
    let stream = context.stream("bad-1");
    let not_json = NewEvent {
        data: b"{oops".to_vec(),
        ..event("Thing", 0)
    };
    let no_type = NewEvent {
        event_type: String::new(),
        ..event("Thing", 0)
    };
    for batch in [vec![], vec![not_json], vec![no_type]] {
        let result = context.store.append(&stream, ExpectedRevision::Any, batch).await;
        assert!(matches!(result, Err(StoreError::InvalidEvent { .. })), "{result:?}");
    }
    assert!(context.store.read_stream(&stream, 0, 10).await.unwrap().is_empty());
}

async fn head_is_the_last_position(context: &Context) {
    let stream = context.stream("head-1");
    let outcome = context
        .store
        .append(&stream, ExpectedRevision::Any, events("Thing", 3))
        .await
        .unwrap();
    let head = context.store.head().await.unwrap().expect("a head after an append");
    assert!(
        head >= outcome.position,
        "head {head} is behind the append at {}",
        outcome.position
    );
}

/// Setting a max count writes a system event on EventStoreDB (`$metadata`);
/// the head is where subscribers catch up to, so it is not that event.
async fn head_passes_over_system_events(context: &Context) {
    let stream = context.stream("head-2");
    let outcome = context
        .store
        .append(&stream, ExpectedRevision::Any, events("Thing", 2))
        .await
        .unwrap();
    context.store.set_max_count(&stream, 5).await.unwrap();
    let head = context.store.head().await.unwrap().expect("a head after an append");
    // Other tests may append to a shared server meanwhile: the head is our
    // append or an event that a global reader sees after it.
    let later = context
        .store
        .read_all(Some(outcome.position), 100_000, &StreamFilter::all())
        .await
        .unwrap();
    assert!(
        head == outcome.position || later.iter().any(|event| event.position == head),
        "head {head} is neither the append at {} nor an event a reader sees",
        outcome.position
    );
}

fn snapshot(revision: u64, data: &str) -> Snapshot {
    Snapshot {
        revision,
        position: Some(Position::new(revision * 10 + 7, revision * 10 + 7)),
        version: 2,
        data: data.as_bytes().to_vec(),
    }
}

async fn snapshots_keep_the_latest_of_each_stream(context: &Context) {
    let (first, second) = (context.stream("snap-1"), context.stream("snap-2"));
    assert_eq!(context.store.read_snapshot(&first).await.unwrap(), None);
    context
        .store
        .append(&first, ExpectedRevision::Any, events("Thing", 3))
        .await
        .unwrap();
    context
        .store
        .write_snapshot(&first, snapshot(1, r#"{"n":1}"#))
        .await
        .unwrap();
    context
        .store
        .write_snapshot(&first, snapshot(2, r#"{"n":2,"list":[1,2,3]}"#))
        .await
        .unwrap();
    let no_position = Snapshot {
        position: None,
        ..snapshot(0, "[]")
    };
    context
        .store
        .write_snapshot(&second, no_position.clone())
        .await
        .unwrap();
    assert_eq!(
        context.store.read_snapshot(&first).await.unwrap(),
        Some(snapshot(2, r#"{"n":2,"list":[1,2,3]}"#))
    );
    assert_eq!(context.store.read_snapshot(&second).await.unwrap(), Some(no_position));
    // Snapshots are not events of their streams, nor of the test's streams.
    assert_eq!(context.store.read_stream(&first, 0, 100).await.unwrap().len(), 3);
    assert!(context.store.read_stream(&second, 0, 100).await.unwrap().is_empty());
    let all = context.store.read_all(None, 100_000, &context.filter()).await.unwrap();
    assert_eq!(all.len(), 3);
}

async fn invalid_snapshots_are_refused(context: &Context) {
    let stream = context.stream("snap-3");
    let not_json = context.store.write_snapshot(&stream, snapshot(0, "{oops")).await;
    assert!(matches!(not_json, Err(StoreError::InvalidEvent { .. })), "{not_json:?}");
    let big = format!("\"{}\"", "x".repeat(MAX_APPEND_BYTES));
    let too_large = context.store.write_snapshot(&stream, snapshot(0, &big)).await;
    assert!(matches!(too_large, Err(StoreError::TooLarge { .. })), "{too_large:?}");
    assert_eq!(context.store.read_snapshot(&stream).await.unwrap(), None);
    let none = context.store.set_max_count(&stream, 0).await;
    assert!(matches!(none, Err(StoreError::InvalidEvent { .. })), "{none:?}");
}

async fn a_stream_kept_to_a_max_count_keeps_its_last_events(context: &Context) {
    let (kept, other) = (context.stream("kept-1"), context.stream("kept-2"));
    for _ in 0..3 {
        context
            .store
            .append(&kept, ExpectedRevision::Any, events("Thing", 1))
            .await
            .unwrap();
    }
    context
        .store
        .append(&other, ExpectedRevision::Any, events("Thing", 3))
        .await
        .unwrap();
    // Set on a stream with events: the older ones go at once.
    context.store.set_max_count(&kept, 2).await.unwrap();
    let revisions = |events: Vec<event_store::RecordedEvent>| events.iter().map(|e| e.revision).collect::<Vec<_>>();
    assert_eq!(
        revisions(context.store.read_stream(&kept, 0, 100).await.unwrap()),
        [1, 2]
    );
    // And after each append; revisions go on counting.
    for expected in 2..6 {
        let outcome = context
            .store
            .append(&kept, ExpectedRevision::Exact(expected), events("Thing", 1))
            .await
            .unwrap();
        assert_eq!(outcome.revision, expected + 1);
    }
    assert_eq!(
        revisions(context.store.read_stream(&kept, 0, 100).await.unwrap()),
        [5, 6]
    );
    assert_eq!(context.store.read_last(&kept).await.unwrap().unwrap().revision, 6);
    assert_eq!(context.store.last_revision(&kept).await.unwrap(), Some(6));
    let whole = event_store::read_whole_stream(context.store.as_ref(), &kept)
        .await
        .unwrap();
    assert_eq!(revisions(whole), [5, 6]);
    assert_eq!(
        revisions(context.store.read_stream(&other, 0, 100).await.unwrap()),
        [0, 1, 2]
    );
}
