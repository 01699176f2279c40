//! Databases of their own on Postgres. Tests get a fresh one with
//! [`fresh_database`]: on the server `TEST_DATABASE_URL` names, or else on a
//! throwaway server started from the installed Postgres binaries (stopped
//! when the test process ends). Never skipped: without either, the test
//! fails and says why. Benchmarks name their server and drop what they
//! create ([`Scratch::remove`]).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use sea_orm::ConnectionTrait;

/// The URL of an empty database of its own on the test server. It is not
/// dropped: the throwaway server goes with the test process.
pub async fn fresh_database() -> String {
    Scratch::create(&server_url(), "shop_test").await.url
}

/// The URL of the database `name` on the test server.
pub fn database_url(name: &str) -> String {
    url_on(&server_url(), name)
}

fn url_on(server: &str, name: &str) -> String {
    let mut url = url::Url::parse(server).expect("a Postgres server URL");
    url.set_path(name);
    url.to_string()
}

/// `url` (a test Postgres database) with a password, and the password:
/// the one it has, else `SECRETPW` (the throwaway server trusts local
/// connections, so any password logs in). For tests that a password
/// never reaches what a binary prints.
pub fn with_password(url: &str) -> (String, String) {
    let (scheme, rest) = url.split_once("://").expect("a URL");
    let (userinfo, host) = rest.rsplit_once('@').unwrap_or(("postgres", rest));
    match userinfo.split_once(':') {
        Some((_, password)) => (url.to_owned(), password.to_owned()),
        None => (format!("{scheme}://{userinfo}:SECRETPW@{host}"), "SECRETPW".to_owned()),
    }
}

/// A database created for one run on a given server.
pub struct Scratch {
    server: String,
    pub name: String,
    /// The URL of the database.
    pub url: String,
}

impl Scratch {
    /// Creates an empty database named `{prefix}_{random}` on `server` (the
    /// URL of any database there).
    pub async fn create(server: &str, prefix: &str) -> Self {
        let name = format!("{prefix}_{}", uuid::Uuid::new_v4().simple());
        admin(server)
            .await
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap_or_else(|e| panic!("cannot create a database on {server}: {e}"));
        Self {
            url: url_on(server, &name),
            server: server.to_owned(),
            name,
        }
    }

    /// Drops the database, closing the connections still open to it.
    pub async fn remove(self) {
        admin(&self.server)
            .await
            .execute_unprepared(&format!("DROP DATABASE {} WITH (FORCE)", self.name))
            .await
            .unwrap_or_else(|e| panic!("cannot drop {} on {}: {e}", self.name, self.server));
    }
}

async fn admin(server: &str) -> sea_orm::DatabaseConnection {
    sea_orm::Database::connect(server)
        .await
        .unwrap_or_else(|e| panic!("cannot reach Postgres at {server}: {e}"))
}

fn server_url() -> String {
    if let Some(url) = std::env::var("TEST_DATABASE_URL").ok().filter(|url| !url.is_empty()) {
        return url;
    }
    static THROWAWAY: OnceLock<String> = OnceLock::new();
    THROWAWAY.get_or_init(start_throwaway_server).clone()
}

fn binaries() -> PathBuf {
    if let Ok(output) = Command::new("pg_config").arg("--bindir").output()
        && output.status.success()
    {
        let dir = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
        if dir.join("initdb").exists() {
            return dir;
        }
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path().join("bin"))
        .filter(|bin| bin.join("initdb").exists())
        .collect();
    found.sort();
    found
        .pop()
        .expect("no TEST_DATABASE_URL and no Postgres binaries (initdb, pg_ctl) installed")
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|output| String::from_utf8_lossy(&output.stdout).trim() == "0")
}

/// Runs a Postgres binary, as the `postgres` user when we are root
/// (Postgres refuses to run as root).
fn run(bin: &Path, args: &[&str]) {
    let mut command = if is_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(bin);
        command
    } else {
        Command::new(bin)
    };
    let status = command.args(args).stdout(std::process::Stdio::null()).status();
    let status = status.unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()));
    assert!(status.success(), "{} {args:?} failed: {status}", bin.display());
}

fn start_throwaway_server() -> String {
    let bin = binaries();
    let folder = tempfile::Builder::new()
        .prefix("shop-postgres-")
        .tempdir()
        .expect("a temporary folder")
        .keep();
    if is_root() {
        let status = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(&folder)
            .status()
            .expect("chown runs");
        assert!(status.success(), "cannot hand the data folder to the postgres user");
    }
    let data = folder.join("data");
    let data_text = data.to_string_lossy().to_string();
    let folder_text = folder.to_string_lossy().to_string();
    run(
        &bin.join("initdb"),
        &["-D", &data_text, "-U", "postgres", "-A", "trust", "--no-sync"],
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let options = format!("-p {port} -k {folder_text} -c listen_addresses=127.0.0.1 -F");
    let log = folder.join("postgres.log").to_string_lossy().to_string();
    run(
        &bin.join("pg_ctl"),
        &["-D", &data_text, "-o", &options, "-l", &log, "-w", "start"],
    );
    // Stop the server when this test process ends, however it ends.
    let pg_ctl = bin.join("pg_ctl").to_string_lossy().to_string();
    let watchdog = format!(
        "while [ -d /proc/{pid} ]; do sleep 1; done; {pg_ctl} -D {data_text} stop -m immediate >/dev/null 2>&1; rm -rf {folder_text}",
        pid = std::process::id()
    );
    let mut command = if is_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--", "sh", "-c", &watchdog]);
        command
    } else {
        let mut command = Command::new("sh");
        command.args(["-c", &watchdog]);
        command
    };
    // The watchdog must outlive this process, so nothing waits for it.
    #[allow(clippy::zombie_processes)]
    command
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("the watchdog starts");
    format!("postgres://postgres@127.0.0.1:{port}/postgres")
}
