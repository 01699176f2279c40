//! On Postgres a session advisory lock, not the lease row, decides which
//! instance runs a projection: an instance waits while another session
//! holds the lock, however stale that session's lease row looks, and takes
//! over as soon as the session is gone; an instance whose session is
//! killed stops that projection until it gets the lock back. (Lease rows
//! on SQLite: `tests/views.rs`; the fail-over between real processes:
//! `tests/failover.rs`.)

// In tests an unwrap is an assertion with a backtrace.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use event_store::{EventStore, Position};
use projectors::runner::ProjectorOptions;
use projectors::session_lock::{self, SessionLock};
use sea_orm::sqlx::{self, Connection, PgConnection};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use test_support::{Shop, wait_for};
use tokio_util::sync::CancellationToken;

async fn postgres() -> DatabaseConnection {
    let url = test_support::postgres::fresh_database().await;
    projectors::database::connect_and_migrate(&url, 4).await.unwrap()
}

/// A supervisor with a 3 s lease (renewed, and its session checked, every
/// second).
fn instance(
    store: &Arc<dyn EventStore>,
    db: &DatabaseConnection,
    shutdown: &CancellationToken,
) -> projectors::supervisor::Running {
    let options = ProjectorOptions {
        lease_ttl: Duration::from_secs(3),
        ..Default::default()
    };
    projectors::supervisor::start(Arc::clone(store), db.clone(), options, shutdown.clone())
}

/// Waits until the running projections `which` picks have reached `head`.
async fn caught_up(running: &projectors::supervisor::Running, head: Position, which: impl Fn(&str) -> bool) {
    for (_, progress) in running.progress.iter().filter(|(name, _)| which(name)) {
        let mut progress = progress.clone();
        tokio::time::timeout(
            test_support::PATIENCE,
            progress.wait_for(|p| p.is_some_and(|p| p >= head)),
        )
        .await
        .expect("the projection caught up")
        .unwrap();
    }
}

/// The lock on every projection, taken by sessions of the test's own.
async fn lock_all(db: &DatabaseConnection) -> Vec<SessionLock> {
    let mut locks = Vec::new();
    for projection in projectors::all() {
        let mut lock = SessionLock::new(projection.name());
        assert!(lock.try_take(db).await.unwrap(), "{} is free", projection.name());
        locks.push(lock);
    }
    locks
}

/// The backends holding (`granted`) or waiting for the session lock on
/// `projection` in this database (advisory locks are per database; other
/// tests' run beside).
async fn lock_sessions(db: &DatabaseConnection, projection: &str, granted: bool) -> Vec<i32> {
    let key = session_lock::key(projection).cast_unsigned();
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT l.pid FROM pg_locks l JOIN pg_database d ON d.oid = l.database \
             WHERE d.datname = current_database() AND l.locktype = 'advisory' AND l.granted = $1 \
             AND l.classid::bigint = $2 AND l.objid::bigint = $3 AND l.objsubid = 1",
            [
                granted.into(),
                ((key >> 32) as i64).into(),
                ((key & 0xffff_ffff) as i64).into(),
            ],
        ))
        .await
        .unwrap();
    rows.iter().map(|row| row.try_get_by_index(0).unwrap()).collect()
}

/// Waits until the lease rows of `names` have each been renewed (their
/// expiry moved on) `times` times.
async fn renewed(db: &DatabaseConnection, names: &[&str], times: usize) {
    let expiries = || async {
        projectors::lease::all(db)
            .await
            .unwrap()
            .into_iter()
            .filter(|lease| names.contains(&lease.projection.as_str()))
            .map(|lease| (lease.projection, lease.expires_at))
            .collect::<BTreeMap<_, _>>()
    };
    let deadline = Instant::now() + test_support::PATIENCE;
    let mut last = expiries().await;
    let mut renewals = BTreeMap::new();
    while names
        .iter()
        .any(|name| renewals.get(*name).copied().unwrap_or(0) < times)
    {
        assert!(
            Instant::now() < deadline,
            "{names:?} not renewed {times} times: {renewals:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
        let now = expiries().await;
        for (name, expiry) in &now {
            if last.get(name).is_some_and(|before| expiry > before) {
                *renewals.entry(name.clone()).or_insert(0) += 1;
            }
        }
        last = now;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_waits_for_a_held_lock_and_takes_it_once_its_session_dies() {
    let db = postgres().await;
    let shop = Shop::start().await;
    shop.trade(0).await;
    // Another instance holds every lock; its lease rows expired long ago.
    let held = lock_all(&db).await;
    for projection in projectors::all() {
        projectors::lease::record(&db, projection.name(), "elsewhere", Duration::ZERO)
            .await
            .unwrap();
    }
    let shutdown = CancellationToken::new();
    let running = instance(&shop.app.store, &db, &shutdown);
    let mut catalog = running.progress["catalog"].clone();
    let waited = tokio::time::timeout(Duration::from_millis(1_500), catalog.wait_for(Option::is_some)).await;
    assert!(
        waited.is_err(),
        "it waits while the lock is held, whatever the rows say"
    );

    // The holder dies: its sessions close without a word.
    drop(held);
    let died = Instant::now();
    caught_up(&running, shop.app.head().await, |_| true).await;
    assert!(
        died.elapsed() < Duration::from_secs(2),
        "taken over {:?} after the holder's sessions died",
        died.elapsed()
    );
    let leases = projectors::lease::all(&db).await.unwrap();
    assert!(
        leases.iter().all(|lease| lease.holder != "elsewhere"),
        "the rows record the new holder: {leases:?}"
    );
    shutdown.cancel();
    running.stopped().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_whose_session_is_killed_stops_until_it_gets_the_lock_back() {
    let db = postgres().await;
    let shop = Shop::start().await;
    shop.trade(0).await;
    let shutdown = CancellationToken::new();
    let running = instance(&shop.app.store, &db, &shutdown);
    caught_up(&running, shop.app.head().await, |_| true).await;
    // Its session on the orders lock is killed (as by a network failure
    // or an operator), and another instance takes the lock at once.
    // Another session queues for the lock first, so that Postgres hands
    // it the lock on release, before the instance can try again.
    let options = db.get_postgres_connection_pool().connect_options();
    let mut usurper = PgConnection::connect_with(&options).await.unwrap();
    let usurper_pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut usurper)
        .await
        .unwrap();
    let key = session_lock::key("orders");
    let waiting = tokio::spawn(async move {
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(key)
            .execute(&mut usurper)
            .await
            .unwrap();
        usurper
    });
    wait_for("another session queueing for the orders lock", || async {
        let waiting = lock_sessions(&db, "orders", false).await;
        waiting
            .contains(&usurper_pid)
            .then_some(())
            .ok_or(format!("{waiting:?}"))
    })
    .await;
    let holders = lock_sessions(&db, "orders", true).await;
    let [pid] = holders[..] else {
        panic!("one session, the instance's, holds the orders lock: {holders:?}");
    };
    db.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT pg_terminate_backend($1)",
        [pid.into()],
    ))
    .await
    .unwrap();
    let usurper = tokio::time::timeout(test_support::PATIENCE, waiting)
        .await
        .expect("the killed session's lock went to the session queued for it")
        .unwrap();

    // The instance checks every session on one clock, every second: by
    // the second renewal of the others' rows, it has checked the orders
    // session and found it gone.
    renewed(&db, &["catalog", "users"], 2).await;
    let mut orders = running.progress["orders"].clone();
    let before = *orders.borrow_and_update();
    shop.trade(1).await;
    caught_up(&running, shop.app.head().await, |name| name != "orders").await;
    let moved = tokio::time::timeout(Duration::from_millis(500), orders.changed()).await;
    assert!(moved.is_err(), "orders stopped here");
    assert_eq!(*orders.borrow(), before);
    usurper.close().await.unwrap();
    caught_up(&running, shop.app.head().await, |_| true).await;
    assert_eq!(
        lock_sessions(&db, "orders", true).await.len(),
        1,
        "the instance took the orders lock back"
    );
    shutdown.cancel();
    running.stopped().await;
}
