//! Out of descriptors, `shop` waits instead of spinning: run with a low
//! `ulimit -n`, more connections than it has descriptors leave its accept
//! failing with `EMFILE` while they wait in the backlog; the listener
//! pauses between attempts (little CPU), and serves again once they close.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use test_support::binary::free_address;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout};

/// Descriptors `shop` gets: its files, pools and listeners fit, a few
/// hundred connections do not.
const DESCRIPTORS: u32 = 128;
const CONNECTIONS: usize = 300;

/// A child process, killed when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `shop` under `ulimit -n DESCRIPTORS`, its data in `folder`, the query
/// API on `queries`; connections stay open however quiet they are.
fn shop(folder: &tempfile::TempDir, queries: SocketAddr) -> Killed {
    let store_url = format!("sqlite://{}", folder.path().join("events.db").display());
    let views_url = format!("sqlite://{}?mode=rwc", folder.path().join("views.db").display());
    let log = std::fs::File::create(folder.path().join("stderr")).expect("a log file");
    let child = Command::new("/bin/sh")
        .args([
            "-c",
            &format!("ulimit -n {DESCRIPTORS} && exec \"$0\""),
            env!("CARGO_BIN_EXE_shop"),
        ])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs([
            ("EVENT_STORE_URL", store_url.as_str()),
            ("VIEWS_DATABASE_URL", views_url.as_str()),
            ("COMMAND_API_ADDR", &free_address().to_string()),
            ("QUERY_API_ADDR", &queries.to_string()),
            ("PROJECTORS_ADMIN_ADDR", "off"),
            ("VIEWS_POOL_SIZE", "2"),
            ("HTTP_HEADER_TIMEOUT_MS", "600000"),
            ("HTTP_IDLE_TIMEOUT_MS", "600000"),
        ])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("shop starts");
    Killed(child)
}

/// Whether `GET /health/live` answers 200 within a second.
async fn live(address: SocketAddr) -> bool {
    let ask = async {
        let mut client = TcpStream::connect(address).await.ok()?;
        let request = b"GET /health/live HTTP/1.1\r\nhost: shop\r\nconnection: close\r\n\r\n";
        client.write_all(request).await.ok()?;
        let mut answer = String::new();
        client.read_to_string(&mut answer).await.ok()?;
        Some(answer.starts_with("HTTP/1.1 200"))
    };
    matches!(timeout(Duration::from_secs(1), ask).await, Ok(Some(true)))
}

async fn until_live(address: SocketAddr, patience: Duration, folder: &tempfile::TempDir) {
    let deadline = Instant::now() + patience;
    while !live(address).await {
        let log = std::fs::read_to_string(folder.path().join("stderr")).unwrap_or_default();
        assert!(Instant::now() < deadline, "not live within {patience:?}: {log}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// User plus system CPU time of `pid`, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("the process's stat");
    // Fields after the command name, which is in parentheses: utime and
    // stime are the 14th and 15th of the whole line.
    let after_name = &stat[stat.rfind(')').expect("a command name") + 2..];
    let fields: Vec<&str> = after_name.split(' ').collect();
    fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime")
}

fn open_descriptors(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count)
}

#[tokio::test]
async fn out_of_descriptors_it_waits_and_then_serves_again() {
    let folder = tempfile::tempdir().expect("a temporary folder");
    let queries = free_address();
    let running = shop(&folder, queries);
    let pid = running.0.id();
    until_live(queries, Duration::from_secs(30), &folder).await;

    let mut held = Vec::new();
    for _ in 0..CONNECTIONS {
        held.push(
            TcpStream::connect(queries)
                .await
                .expect("a connection (the backlog holds it)"),
        );
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let limit = usize::try_from(DESCRIPTORS).unwrap_or(usize::MAX);
    while open_descriptors(pid) < limit - 1 {
        assert!(
            Instant::now() < deadline,
            "shop never ran out: {} open",
            open_descriptors(pid)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Measured over two seconds of accept failing with EMFILE: a retry
    // loop would use a whole core (some 200 ticks at 100 Hz).
    let before = cpu_ticks(pid);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let used = cpu_ticks(pid) - before;
    assert!(used < 20, "{used} clock ticks of CPU in 2 s while out of descriptors");

    drop(held);
    until_live(queries, Duration::from_secs(10), &folder).await;
    let log = std::fs::read_to_string(folder.path().join("stderr")).unwrap_or_default();
    assert!(log.contains("cannot accept connections"), "{log}");
}
