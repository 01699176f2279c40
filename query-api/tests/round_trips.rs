//! What a read costs on the wire to Postgres, counted by a TCP relay
//! between the views' pool and a real server (issue #15): a read on a
//! connection in use is its statement, one round trip. sqlx 0.9 pings every
//! connection given back to the pool, a second round trip after the answer
//! is in; our patched `sqlx-core` (vendor/README.md) pings only one with
//! something still to send, and sea-orm's default pinged every connection
//! taken as well, a third. What the pings were for still holds: a read
//! dropped part-way leaves nothing for the next one to trip on, a
//! transaction dropped unfinished is rolled back at once (its locks freed),
//! and a connection left idle past `views::PING_AFTER_IDLE` that the server
//! has dropped meanwhile is replaced before a read uses it, so no read
//! fails for it; one the server drops while it is in use fails its read
//! and is closed, not handed to the next.

// In tests an unwrap is an assertion with a backtrace.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use sea_orm::{ConnectionTrait, DatabaseConnection, EntityTrait};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use views::tables::products;

/// A relay to the Postgres server of `url`: the URL to reach it through
/// the relay (without TLS, so that one message is one write), and how many
/// times a client has sent the server something. A client sends once per
/// round trip, as it waits for each answer before it sends again.
async fn relay(url: &str) -> (String, Arc<AtomicUsize>) {
    let mut target = url::Url::parse(url).unwrap();
    let server = format!("{}:{}", target.host_str().unwrap(), target.port().unwrap_or(5432));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    target.set_port(Some(listener.local_addr().unwrap().port())).unwrap();
    target.set_host(Some("127.0.0.1")).unwrap();
    target.query_pairs_mut().append_pair("sslmode", "disable");
    let sends = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&sends);
    tokio::spawn(async move {
        loop {
            let (client, _) = listener.accept().await.unwrap();
            let upstream = TcpStream::connect(&server).await.unwrap();
            let (mut from_client, mut to_client) = client.into_split();
            let (mut from_server, mut to_server) = upstream.into_split();
            let counted = Arc::clone(&counted);
            tokio::spawn(async move {
                let mut buffer = vec![0; 64 * 1024];
                while let Ok(read @ 1..) = from_client.read(&mut buffer).await {
                    counted.fetch_add(1, Ordering::SeqCst);
                    if to_server.write_all(&buffer[..read]).await.is_err() {
                        return;
                    }
                }
            });
            tokio::spawn(async move { tokio::io::copy(&mut from_server, &mut to_client).await });
        }
    });
    (target.to_string(), sends)
}

/// Migrated views on a fresh database, through a relay, with one pooled
/// connection; the database's URL, the views and the relay's count.
async fn views_through_a_relay() -> (String, DatabaseConnection, Arc<AtomicUsize>) {
    let url = test_support::postgres::fresh_database().await;
    let (relayed, sends) = relay(&url).await;
    let db = views::connect(&relayed, 1).await.unwrap();
    views::migrate(&db).await.unwrap();
    (url, db, sends)
}

async fn read_a_product(db: &DatabaseConnection) {
    let found = products::Entity::find_by_id(uuid::Uuid::new_v4())
        .one(db)
        .await
        .unwrap();
    assert!(found.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_on_a_connection_in_use_is_one_round_trip() {
    let (_, db, sends) = views_through_a_relay().await;
    // The statement prepared once, on the first read.
    read_a_product(&db).await;
    // A connection given back goes back in a task of its own: let it.
    let settled = || tokio::time::sleep(std::time::Duration::from_millis(200));
    settled().await;
    let before = sends.load(Ordering::SeqCst);
    for _ in 0..20 {
        read_a_product(&db).await;
    }
    settled().await;
    let sent = sends.load(Ordering::SeqCst) - before;
    assert_eq!(sent, 20, "a statement per read, no ping when taken or given back");
}

/// How many times `db`'s client sends to the server for `work`, done
/// twice first so that its statements are prepared and cached.
async fn sends_for<F, Fut>(db: &DatabaseConnection, sends: &AtomicUsize, work: F) -> usize
where
    F: Fn(DatabaseConnection) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let settled = || tokio::time::sleep(std::time::Duration::from_millis(200));
    work(db.clone()).await;
    work(db.clone()).await;
    settled().await;
    let before = sends.load(Ordering::SeqCst);
    work(db.clone()).await;
    settled().await;
    sends.load(Ordering::SeqCst) - before
}

/// Every other kind of statement the services send ends cleanly too, so
/// none is followed by a ping when its connection goes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_writes_batches_and_transactions_are_a_send_per_statement() {
    use sea_orm::{QuerySelect, TransactionTrait};
    let (_, db, sends) = views_through_a_relay().await;
    db.execute_unprepared("CREATE TABLE counted (n int8)").await.unwrap();
    let list = sends_for(&db, &sends, |db| async move {
        let found = products::Entity::find().limit(5).all(&db).await.unwrap();
        assert!(found.is_empty());
    });
    assert_eq!(list.await, 1, "a list");
    let write = sends_for(&db, &sends, |db| async move {
        let insert = sea_orm::Statement::from_sql_and_values(
            db.get_database_backend(),
            "INSERT INTO counted VALUES ($1)",
            [1_i64.into()],
        );
        db.execute_raw(insert).await.unwrap();
    });
    assert_eq!(write.await, 1, "a prepared write");
    let batch = sends_for(&db, &sends, |db| async move {
        db.execute_unprepared("INSERT INTO counted VALUES (2); INSERT INTO counted VALUES (3)")
            .await
            .unwrap();
    });
    assert_eq!(batch.await, 1, "statements sent as one");
    let transaction = sends_for(&db, &sends, |db| async move {
        let transaction = db.begin().await.unwrap();
        transaction
            .execute_unprepared("INSERT INTO counted VALUES (4)")
            .await
            .unwrap();
        transaction.commit().await.unwrap();
    });
    assert_eq!(transaction.await, 3, "BEGIN, the statement, COMMIT");
}

/// The one value `sql` selects, on `db`.
async fn select_one(db: &DatabaseConnection, sql: &str) -> i64 {
    db.query_one_raw(sea_orm::Statement::from_string(db.get_database_backend(), sql))
        .await
        .unwrap()
        .unwrap()
        .try_get_by_index(0)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_dropped_part_way_leaves_its_connection_good_for_the_next() {
    let (_, db, _) = views_through_a_relay().await;
    // The pool's only connection: the dropped read's answer is still on its
    // way when it goes back to the pool.
    let slow = sea_orm::Statement::from_string(db.get_database_backend(), "SELECT 7 FROM pg_sleep(0.4)");
    let dropped = tokio::time::timeout(std::time::Duration::from_millis(50), db.query_one_raw(slow)).await;
    assert!(dropped.is_err(), "the read was dropped before its answer");
    assert_eq!(select_one(&db, "SELECT 2::int8").await, 2);
    assert_eq!(select_one(&db, "SELECT 3::int8").await, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_dropped_unfinished_is_rolled_back_at_once() {
    use sea_orm::TransactionTrait;
    let (url, db, _) = views_through_a_relay().await;
    db.execute_unprepared("CREATE TABLE held (n int8)").await.unwrap();
    let transaction = db.begin().await.unwrap();
    transaction
        .execute_unprepared("INSERT INTO held VALUES (1)")
        .await
        .unwrap();
    drop(transaction);
    // Nothing else uses the pool's connection: unless the rollback is sent
    // as the connection goes back, the transaction stays open, and keeps
    // its lock on the table.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let other = views::connect(&url, 1).await.unwrap();
    let locked = other
        .execute_unprepared("BEGIN; SET LOCAL lock_timeout = '500ms'; LOCK TABLE held IN ACCESS EXCLUSIVE MODE; COMMIT")
        .await;
    assert!(locked.is_ok(), "the table is still locked: {locked:?}");
    assert_eq!(select_one(&db, "SELECT count(*) FROM held").await, 0);
}

/// Has the server end the session of `db`'s one connection, as a restart
/// or an administrator would, from another connection to `url`.
async fn drop_its_connection(url: &str, db: &DatabaseConnection) {
    let pid = select_one(db, "SELECT pg_backend_pid()::int8").await;
    let other = views::connect(url, 1).await.unwrap();
    other
        .execute_unprepared(&format!("SELECT pg_terminate_backend({pid})"))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_dropped_by_the_server_while_idle_is_replaced_before_a_read() {
    let (url, db, _) = views_through_a_relay().await;
    read_a_product(&db).await;
    drop_its_connection(&url, &db).await;
    tokio::time::sleep(views::PING_AFTER_IDLE + std::time::Duration::from_millis(100)).await;
    read_a_product(&db).await;
}

/// The views database restarting under a busy service (#18): its
/// connections are cut while in use, more often than `PING_AFTER_IDLE`
/// lets them idle. The read that finds its connection cut fails; the
/// connection is then closed, not handed to the next read, which opens a
/// new one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_dropped_by_the_server_while_in_use_is_not_handed_out_again() {
    let (url, db, _) = views_through_a_relay().await;
    read_a_product(&db).await;
    drop_its_connection(&url, &db).await;
    // Time for the server to end the session, well within PING_AFTER_IDLE.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let cut = products::Entity::find_by_id(uuid::Uuid::new_v4()).one(&db).await;
    let error = cut.expect_err("the read on the connection the server dropped fails");
    assert!(views::is_unavailable(&error), "{error}");
    read_a_product(&db).await;
    read_a_product(&db).await;
}
