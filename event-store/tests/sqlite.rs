//! What only the embedded store promises: durability across reopening and
//! across the death of the appending process, prompt in-process wake-ups,
//! polling for other processes' writes, group commit under concurrency, and
//! typed errors for corrupt rows.

// In tests an unwrap is an assertion with a backtrace.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use event_store::sqlite::{SqliteEventStore, SqliteOptions};
use event_store::{AppendOutcome, EventStore, ExpectedRevision, StoreError, StreamFilter, StreamName};
use support::{assert_parked, assert_strictly_increasing, event, events, ids, next_event, wait_until};

fn stream(name: &str) -> StreamName {
    StreamName::new(name).unwrap()
}

fn open(folder: &tempfile::TempDir, poll_interval: Duration) -> SqliteEventStore {
    let options = SqliteOptions {
        poll_interval,
        ..SqliteOptions::default()
    };
    SqliteEventStore::open_with(folder.path().join("events.db"), options).unwrap()
}

#[tokio::test]
async fn an_empty_store_has_no_head() {
    let folder = tempfile::tempdir().unwrap();
    let store = open(&folder, Duration::from_secs(1));
    assert_eq!(store.head().await.unwrap(), None);
    assert!(store.read_all(None, 10, &StreamFilter::all()).await.unwrap().is_empty());
}

#[tokio::test]
async fn events_survive_reopening_and_positions_keep_growing() {
    let folder = tempfile::tempdir().unwrap();
    let first = {
        let store = open(&folder, Duration::from_secs(1));
        store
            .append(&stream("order-1"), ExpectedRevision::NoStream, events("Thing", 3))
            .await
            .unwrap()
    };
    let store = open(&folder, Duration::from_secs(1));
    assert_eq!(store.read_stream(&stream("order-1"), 0, 10).await.unwrap().len(), 3);
    let second = store
        .append(&stream("order-1"), ExpectedRevision::Exact(2), vec![event("Thing", 3)])
        .await
        .unwrap();
    assert!(second.position > first.position);
    assert_eq!(second.revision, 3);
}

/// Names the store file in which [`a_child_process_appends_and_waits_to_be_killed_when_asked`]
/// appends; without it that test does nothing.
const CHILD_STORE: &str = "EVENT_STORE_TEST_CHILD_STORE";
/// Starts the child's line on stdout with the acknowledged position and event id.
const ACKNOWLEDGED: &str = "acknowledged-append";

/// An append acknowledged to a process that is killed right after (SIGKILL:
/// no destructor, no flush, no close) is in the file when it is reopened.
/// A killed process loses nothing the OS already has, so this proves the
/// acknowledgement comes after the commit, not after a hand-over to a buffer
/// of the writer thread; that the commit also reaches the disk before the
/// acknowledgement is SQLite's `synchronous = FULL`, checked by
/// [`appends_are_committed_in_wal_mode_with_a_full_sync`].
#[tokio::test]
async fn an_append_acknowledged_to_a_killed_process_is_found_after_reopening() {
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("events.db");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_child_process_appends_and_waits_to_be_killed_when_asked",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_STORE, &path)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let acknowledged = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map(Result::unwrap)
        .find_map(|line| {
            line.split_once(ACKNOWLEDGED)
                .map(|(_, rest)| rest.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
        });
    child.kill().unwrap();
    let status = child.wait().unwrap();
    let acknowledged = acknowledged.expect("the child process acknowledged no append");
    assert!(
        !status.success(),
        "the child ended by itself instead of being killed: {status}"
    );
    let (position, id): (u64, uuid::Uuid) = (acknowledged[0].parse().unwrap(), acknowledged[1].parse().unwrap());

    let store = SqliteEventStore::open(&path).unwrap();
    let stored = store.read_stream(&stream("order-1"), 0, 10).await.unwrap();
    assert_eq!(ids(&stored), vec![id]);
    assert_eq!(stored[0].position.commit, position);
}

/// The child side of [`an_append_acknowledged_to_a_killed_process_is_found_after_reopening`]:
/// appends, says so on stdout, and waits to be killed. Returns at once when
/// the suite runs it.
#[tokio::test]
async fn a_child_process_appends_and_waits_to_be_killed_when_asked() {
    let Some(path) = std::env::var_os(CHILD_STORE) else {
        return;
    };
    let store = SqliteEventStore::open(path).unwrap();
    let sent = event("Thing", 0);
    let outcome = store
        .append(&stream("order-1"), ExpectedRevision::NoStream, vec![sent.clone()])
        .await
        .unwrap();
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "\n{ACKNOWLEDGED} {} {}", outcome.position.commit, sent.id).unwrap();
    stdout.flush().unwrap();
    drop(stdout);
    tokio::time::sleep(support::PATIENCE).await;
    panic!("not killed within {:?}", support::PATIENCE);
}

/// `synchronous` is a setting of each connection, not of the file, so it is
/// read back from the store's own writer connection: FULL (2) syncs the
/// write-ahead log on every commit, NORMAL (1) would lose the last commits
/// on a power cut.
#[tokio::test]
async fn appends_are_committed_in_wal_mode_with_a_full_sync() {
    let folder = tempfile::tempdir().unwrap();
    let store = open(&folder, Duration::from_secs(1));
    assert_eq!(store.durability().journal_mode, "wal", "the log is written ahead");
    assert_eq!(store.durability().synchronous, 2, "FULL: every commit is synced");
}

/// With a one-hour poll interval, only the writer's commit notification can
/// bring an event to a subscription already waiting, so its arrival at all
/// proves the wake-up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_is_woken_by_a_commit_in_this_process_without_polling() {
    let folder = tempfile::tempdir().unwrap();
    let store = open(&folder, Duration::from_secs(3600));
    let mut subscription = store.subscribe_all(None, StreamFilter::all());
    assert_parked(&mut subscription, "the subscription of an empty store").await;
    let sent = event("Thing", 0);
    store
        .append(&stream("order-1"), ExpectedRevision::Any, vec![sent.clone()])
        .await
        .unwrap();
    assert_eq!(next_event(&mut subscription).await.id, sent.id);
}

/// A subscriber that has read everything stored takes this process's
/// commits from the live tail: after its first read it reads the file no
/// more. The one-hour poll interval rules out reads by polling.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caught_up_subscriber_takes_this_processs_commits_without_reading() {
    let folder = tempfile::tempdir().unwrap();
    let store = open(&folder, Duration::from_secs(3600));
    store
        .append(&stream("order-0"), ExpectedRevision::Any, vec![event("Thing", 0)])
        .await
        .unwrap();
    let mut subscription = store.subscribe_all(None, StreamFilter::prefixes(["order-"]));
    next_event(&mut subscription).await;
    let before = store.reads();
    let mut sent = Vec::new();
    for n in 1..4 {
        let events = vec![event("Thing", n), event("Thing", n + 10)];
        sent.extend(events.iter().map(|e| e.id));
        store
            .append(&stream("order-1"), ExpectedRevision::Any, events)
            .await
            .unwrap();
        store
            .append(&stream("product-1"), ExpectedRevision::Any, vec![event("Other", n)])
            .await
            .unwrap();
    }
    let mut received = Vec::new();
    for _ in 0..sent.len() {
        received.push(next_event(&mut subscription).await.id);
    }
    assert_eq!(received, sent, "the order- events, in order, once");
    assert_parked(&mut subscription, "the subscription after the last event").await;
    assert_eq!(store.reads() - before, 0, "reads of the file");
}

/// Another process writes, then this one commits: the tail's commit does
/// not follow what the subscriber saw, so it reads the file, and gets the
/// other process's event first, without waiting for its poll.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_after_another_processs_write_brings_that_write_first() {
    let folder = tempfile::tempdir().unwrap();
    let store = open(&folder, Duration::from_secs(3600));
    let other_process = open(&folder, Duration::from_secs(3600));
    let mut subscription = store.subscribe_all(None, StreamFilter::all());
    assert_parked(&mut subscription, "the subscription of an empty store").await;
    let (theirs, ours) = (event("Thing", 0), event("Thing", 1));
    other_process
        .append(&stream("order-1"), ExpectedRevision::Any, vec![theirs.clone()])
        .await
        .unwrap();
    store
        .append(&stream("order-2"), ExpectedRevision::Any, vec![ours.clone()])
        .await
        .unwrap();
    assert_eq!(next_event(&mut subscription).await.id, theirs.id);
    assert_eq!(next_event(&mut subscription).await.id, ours.id);
    assert_parked(&mut subscription, "the subscription after both").await;
}

/// A subscriber that does not take its events while more commits happen
/// than the tail holds falls behind it, and reads the file: it still gets
/// every event once, in order, with the stored values.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_behind_the_tail_reads_what_it_missed() {
    let folder = tempfile::tempdir().unwrap();
    let store = open(&folder, Duration::from_secs(3600));
    let mut subscription = store.subscribe_all(None, StreamFilter::all());
    assert_parked(&mut subscription, "the subscription of an empty store").await;
    let commits = event_store::sqlite::TAIL_CAPACITY + 20;
    for n in 0..commits {
        store
            .append(
                &stream("order-1"),
                ExpectedRevision::Any,
                vec![event("Thing", n as u64)],
            )
            .await
            .unwrap();
    }
    let mut received = Vec::new();
    for _ in 0..commits {
        received.push(next_event(&mut subscription).await);
    }
    assert_parked(&mut subscription, "the subscription after the last event").await;
    assert_eq!(
        received,
        store.read_all(None, commits + 1, &StreamFilter::all()).await.unwrap()
    );
}

/// The writer is a second store on the same file, with its own writer thread
/// and its own commit notifications, as another process would have. A third
/// store that polls only once an hour, its subscription waiting the same
/// way, does not get the event: commit notifications do not cross stores, so
/// the polling store's subscription got it by polling.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_sees_writes_of_another_process_by_polling() {
    let folder = tempfile::tempdir().unwrap();
    let polling = open(&folder, Duration::from_millis(100));
    let not_polling = open(&folder, Duration::from_secs(3600));
    let other_process = open(&folder, Duration::from_secs(3600));
    let mut polled = polling.subscribe_all(None, StreamFilter::all());
    let mut not_polled = not_polling.subscribe_all(None, StreamFilter::all());
    assert_parked(&mut polled, "the polling subscription").await;
    assert_parked(&mut not_polled, "the subscription that does not poll").await;
    let sent = event("Thing", 0);
    other_process
        .append(&stream("order-1"), ExpectedRevision::Any, vec![sent.clone()])
        .await
        .unwrap();
    assert_eq!(next_event(&mut polled).await.id, sent.id);
    assert_parked(&mut not_polled, "the subscription that does not poll, after the write").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_writers_on_one_file_keep_one_gapless_order() {
    let folder = tempfile::tempdir().unwrap();
    let stores = [
        open(&folder, Duration::from_millis(50)),
        open(&folder, Duration::from_millis(50)),
    ];
    let tasks = stores.iter().enumerate().map(|(writer, store)| {
        let store = store.clone();
        tokio::spawn(async move {
            for n in 0..50 {
                store
                    .append(
                        &stream(&format!("w{writer}-{n}")),
                        ExpectedRevision::NoStream,
                        vec![event("Thing", n)],
                    )
                    .await
                    .unwrap();
            }
        })
    });
    for task in futures::future::join_all(tasks).await {
        task.unwrap();
    }
    let all = stores[0].read_all(None, 1000, &StreamFilter::all()).await.unwrap();
    assert_eq!(all.len(), 100);
    assert_strictly_increasing(&all);
    let positions: Vec<u64> = all.iter().map(|e| e.position.commit).collect();
    assert_eq!(positions, (1..=100).collect::<Vec<_>>(), "no gaps");
}

/// Holds the store's writer back: SQLite's write lock on the same file,
/// taken by another connection. The writer waits for it in its own
/// `BEGIN IMMEDIATE` (for up to its 5 s busy timeout), holding the group it
/// has taken, while later appends queue. Dropping the connection releases it.
fn take_write_lock(path: &Path) -> rusqlite::Connection {
    let connection = rusqlite::Connection::open(path).unwrap();
    connection.execute_batch("BEGIN IMMEDIATE").unwrap();
    connection
}

type AppendTask = tokio::task::JoinHandle<Result<AppendOutcome, StoreError>>;

fn spawn_append(
    store: &SqliteEventStore,
    name: &str,
    expected: ExpectedRevision,
    events: Vec<event_store::NewEvent>,
) -> AppendTask {
    let store = store.clone();
    let stream = stream(name);
    tokio::spawn(async move { store.append(&stream, expected, events).await })
}

/// Sends a first append to a held writer and waits until the writer has
/// taken it alone, so that the appends sent next all queue behind it and are
/// taken together once the writer is let go.
async fn hold_the_writer_with_a_first_append(store: &SqliteEventStore) -> (rusqlite::Connection, AppendTask) {
    let lock = take_write_lock(store.path());
    let taken = store.writer_stats().taken_appends;
    let first = spawn_append(store, "first", ExpectedRevision::NoStream, vec![event("First", 0)]);
    wait_until("the writer takes the first append", || {
        store.writer_stats().taken_appends == taken + 1
    })
    .await;
    (lock, first)
}

/// 32 appends queue behind a held writer; once it is let go it commits the
/// first append alone and then the 32 in one transaction: 33 appends, 2
/// commits, 33 distinct positions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_are_committed_in_groups_with_distinct_positions() {
    const QUEUED: usize = 32;
    let folder = tempfile::tempdir().unwrap();
    let store = open(&folder, Duration::from_secs(1));
    let before = store.writer_stats();
    let (lock, first) = hold_the_writer_with_a_first_append(&store).await;
    let queued: Vec<_> = (0..QUEUED)
        .map(|n| {
            spawn_append(
                &store,
                &format!("order-{n}"),
                ExpectedRevision::NoStream,
                vec![event("Placed", n as u64)],
            )
        })
        .collect();
    wait_until("the other appends queue behind the first", || {
        store.writer_stats().queued_appends == QUEUED
    })
    .await;
    assert_eq!(
        store.writer_stats().commits,
        before.commits,
        "nothing commits while the writer is held"
    );
    drop(lock);

    let mut positions = vec![first.await.unwrap().unwrap().position];
    for task in futures::future::join_all(queued).await {
        positions.push(task.unwrap().unwrap().position);
    }
    let after = store.writer_stats();
    assert_eq!(after.taken_appends - before.taken_appends, QUEUED as u64 + 1);
    assert_eq!(
        after.commits - before.commits,
        2,
        "the first append alone, then the {QUEUED} queued ones together"
    );
    positions.sort();
    positions.dedup();
    assert_eq!(positions.len(), QUEUED + 1);
    let all = store.read_all(None, 1000, &StreamFilter::all()).await.unwrap();
    assert_eq!(all.iter().map(|e| e.position).collect::<Vec<_>>(), positions);
}

/// Three appends share one transaction (queued behind a held writer, as
/// above): one expects a stream to be new when it is not, one is half
/// inserted when its second event id turns out to be taken, one is fine.
/// Only the first two fail, the half insert leaves nothing behind, and the
/// fine one is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conflict_in_a_group_fails_alone() {
    let folder = tempfile::tempdir().unwrap();
    let store = open(&folder, Duration::from_secs(1));
    let taken_event = event("Thing", 0);
    store
        .append(
            &stream("taken-1"),
            ExpectedRevision::NoStream,
            vec![taken_event.clone()],
        )
        .await
        .unwrap();
    let before = store.writer_stats();
    let (lock, first) = hold_the_writer_with_a_first_append(&store).await;
    let conflicting = spawn_append(&store, "taken-1", ExpectedRevision::NoStream, vec![event("Thing", 1)]);
    let half_inserted = spawn_append(
        &store,
        "half-1",
        ExpectedRevision::NoStream,
        vec![event("Thing", 2), taken_event.clone()],
    );
    let fine = spawn_append(&store, "free-1", ExpectedRevision::NoStream, vec![event("Thing", 3)]);
    wait_until("the three appends queue behind the first", || {
        store.writer_stats().queued_appends == 3
    })
    .await;
    drop(lock);

    assert!(first.await.unwrap().is_ok());
    let conflicting = conflicting.await.unwrap();
    assert!(
        matches!(
            conflicting,
            Err(StoreError::WrongExpectedRevision { actual: Some(0), .. })
        ),
        "{conflicting:?}"
    );
    let half_inserted = half_inserted.await.unwrap();
    assert!(
        matches!(half_inserted, Err(StoreError::DuplicateEventId { id }) if id == taken_event.id),
        "{half_inserted:?}"
    );
    assert!(fine.await.unwrap().is_ok());
    assert_eq!(
        store.writer_stats().commits - before.commits,
        2,
        "the first append alone, then the three queued ones together"
    );
    assert_eq!(store.read_stream(&stream("taken-1"), 0, 10).await.unwrap().len(), 1);
    assert!(store.read_stream(&stream("half-1"), 0, 10).await.unwrap().is_empty());
    assert_eq!(store.read_stream(&stream("free-1"), 0, 10).await.unwrap().len(), 1);
}

#[tokio::test]
async fn an_event_id_reused_elsewhere_is_refused() {
    let folder = tempfile::tempdir().unwrap();
    let store = open(&folder, Duration::from_secs(1));
    let batch = events("Thing", 2);
    store
        .append(&stream("order-1"), ExpectedRevision::NoStream, batch.clone())
        .await
        .unwrap();
    let in_another_stream = store
        .append(&stream("order-2"), ExpectedRevision::NoStream, vec![batch[0].clone()])
        .await;
    assert!(matches!(in_another_stream, Err(StoreError::DuplicateEventId { id }) if id == batch[0].id));
    let half_repeated = store
        .append(
            &stream("order-1"),
            ExpectedRevision::Any,
            vec![batch[0].clone(), event("Thing", 9)],
        )
        .await;
    assert!(matches!(half_repeated, Err(StoreError::DuplicateEventId { .. })));
    let second_reused = store
        .append(
            &stream("order-1"),
            ExpectedRevision::Any,
            vec![event("Thing", 7), batch[1].clone()],
        )
        .await;
    assert!(matches!(second_reused, Err(StoreError::DuplicateEventId { id }) if id == batch[1].id));
    assert_eq!(
        ids(&store.read_stream(&stream("order-1"), 0, 10).await.unwrap()),
        ids_of(&batch)
    );
    assert!(store.read_stream(&stream("order-2"), 0, 10).await.unwrap().is_empty());
}

fn ids_of(events: &[event_store::NewEvent]) -> Vec<uuid::Uuid> {
    events.iter().map(|e| e.id).collect()
}

#[tokio::test]
async fn corrupt_rows_give_typed_errors_not_panics() {
    let corruptions = [
        (
            "event id of the wrong length",
            "UPDATE events SET event_id = x'0102' WHERE position = 2",
        ),
        (
            "metadata that is not JSON",
            "UPDATE events SET metadata = x'7b6e6f' WHERE position = 2",
        ),
        (
            "a stream that is not text",
            "UPDATE events SET stream = x'ff' WHERE position = 2",
        ),
        (
            "a timestamp out of range",
            "UPDATE events SET recorded_at = 9223372036854775807 WHERE position = 2",
        ),
        (
            "a negative revision",
            "UPDATE events SET revision = -5 WHERE position = 2",
        ),
    ];
    for (case, corruption) in corruptions {
        let folder = tempfile::tempdir().unwrap();
        let store = three_events_then(&folder, corruption).await;
        let before = store.read_all(None, 10, &StreamFilter::all()).await.unwrap();
        assert_eq!(before.len(), 1, "{case}: the events before the damage are read");
        let read = store.read_all(Some(before[0].position), 10, &StreamFilter::all()).await;
        assert!(
            matches!(&read, Err(StoreError::Corrupt { position, .. }) if position.commit == 2),
            "{case}: {read:?}"
        );
        let mut subscription = store.subscribe_all(None, StreamFilter::all());
        assert!(
            subscription.next().await.unwrap().is_ok(),
            "{case}: the first event is fine"
        );
        assert!(
            matches!(subscription.next().await, Some(Err(StoreError::Corrupt { .. }))),
            "{case}: the subscription reports the corrupt row"
        );
        assert!(subscription.next().await.is_none(), "{case}: and then ends");
    }
}

#[tokio::test]
async fn a_last_revision_read_from_the_index_alone_still_refuses_a_corrupt_one() {
    let folder = tempfile::tempdir().unwrap();
    let store = three_events_then(&folder, "").await;
    assert_eq!(store.last_revision(&stream("order-1")).await.unwrap(), Some(2));
    assert_eq!(store.last_revision(&stream("order-2")).await.unwrap(), None);
    let damage = rusqlite::Connection::open(folder.path().join("events.db")).unwrap();
    damage
        .execute_batch("UPDATE events SET revision = revision - 10")
        .unwrap();
    let read = store.last_revision(&stream("order-1")).await;
    assert!(
        matches!(&read, Err(StoreError::Corrupt { position, .. }) if position.commit == 3),
        "{read:?}"
    );
}

#[tokio::test]
async fn a_store_file_from_a_newer_build_is_refused() {
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("events.db");
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("PRAGMA user_version = 99;")
        .unwrap();
    assert!(matches!(
        SqliteEventStore::open(&path),
        Err(StoreError::Incompatible { .. })
    ));
}

#[tokio::test]
async fn a_file_that_is_not_a_database_is_refused() {
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("events.db");
    std::fs::write(
        &path,
        b"this is not sqlite, just some text that is long enough to look like a header",
    )
    .unwrap();
    assert!(matches!(
        SqliteEventStore::open(&path),
        Err(StoreError::Unavailable { .. })
    ));
}

/// A store in `folder` holding three events of `order-1` (positions 1 to
/// 3), then `sql` run on its file behind its back.
async fn three_events_then(folder: &tempfile::TempDir, sql: &str) -> SqliteEventStore {
    let store = open(folder, Duration::from_secs(1));
    store
        .append(&stream("order-1"), ExpectedRevision::NoStream, events("Thing", 3))
        .await
        .unwrap();
    rusqlite::Connection::open(folder.path().join("events.db"))
        .unwrap()
        .execute_batch(sql)
        .unwrap();
    store
}
