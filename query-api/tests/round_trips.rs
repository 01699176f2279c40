//! What a read costs on the wire to Postgres, counted by a TCP relay
//! between the views' pool and a real server (issue #15): a read on a
//! connection in use is its statement, then the ping sqlx always sends when
//! the connection goes back to the pool (after the answer is in). sea-orm's
//! default pinged every connection taken as well, a third round trip, before
//! the statement. And a connection left idle past `views::PING_AFTER_IDLE`
//! that the server has dropped meanwhile is still replaced before a read
//! uses it, so no read fails for it.

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
async fn a_read_on_a_connection_in_use_is_pinged_only_when_given_back() {
    let (_, db, sends) = views_through_a_relay().await;
    // The statement prepared once, on the first read.
    read_a_product(&db).await;
    // The pool pings a connection given back in a task of its own: let it.
    let settled = || tokio::time::sleep(std::time::Duration::from_millis(200));
    settled().await;
    let before = sends.load(Ordering::SeqCst);
    for _ in 0..20 {
        read_a_product(&db).await;
    }
    settled().await;
    let sent = sends.load(Ordering::SeqCst) - before;
    assert_eq!(
        sent,
        2 * 20,
        "a statement and the ping on release per read, no ping when taken"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_dropped_by_the_server_while_idle_is_replaced_before_a_read() {
    let (url, db, _) = views_through_a_relay().await;
    read_a_product(&db).await;
    let pid: i32 = db
        .query_one_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            "SELECT pg_backend_pid()",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get_by_index(0)
        .unwrap();
    let other = views::connect(&url, 1).await.unwrap();
    other
        .execute_unprepared(&format!("SELECT pg_terminate_backend({pid})"))
        .await
        .unwrap();
    tokio::time::sleep(views::PING_AFTER_IDLE + std::time::Duration::from_millis(100)).await;
    read_a_product(&db).await;
}
