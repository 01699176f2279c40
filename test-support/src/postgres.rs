//! Databases of their own on Postgres. Tests get a fresh one with
//! [`fresh_database`]: on the server `TEST_DATABASE_URL` names, or else on a
//! throwaway server started from the installed Postgres binaries (stopped
//! when the test process ends). Never skipped: without either, the test
//! fails and says why. Benchmarks name their server and drop what they
//! create ([`Scratch::remove`]). A test that stops and starts its database
//! runs a [`Server`] of its own.

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

/// A table locked against every other session (`ACCESS EXCLUSIVE`), in a
/// transaction of its own, until [`TableLock::release`]: reads of it wait.
pub struct TableLock(sea_orm::DatabaseTransaction);

impl TableLock {
    /// Locks `table` in the database at `url`.
    pub async fn take(url: &str, table: &str) -> Self {
        use sea_orm::TransactionTrait;
        let transaction = admin(url).await.begin().await.unwrap();
        transaction
            .execute_unprepared(&format!("LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"))
            .await
            .unwrap_or_else(|e| panic!("cannot lock {table}: {e}"));
        Self(transaction)
    }

    /// Ends the transaction, and the lock with it.
    pub async fn release(self) {
        self.0.rollback().await.unwrap();
    }
}

fn server_url() -> String {
    if let Some(url) = std::env::var("TEST_DATABASE_URL").ok().filter(|url| !url.is_empty()) {
        return url;
    }
    // Never dropped: the watchdog stops it when the test process ends.
    static THROWAWAY: OnceLock<Server> = OnceLock::new();
    THROWAWAY
        .get_or_init(|| {
            let bin =
                installed_binaries().expect("no TEST_DATABASE_URL and no Postgres binaries (initdb, pg_ctl) installed");
            Server::start(&bin)
        })
        .url("postgres")
}

/// The folder that holds `initdb` and `pg_ctl`: `pg_config --bindir`, else
/// the first folder on `PATH` with both, else the newest
/// `/usr/lib/postgresql/*/bin`; `None` when Postgres is not installed.
pub fn installed_binaries() -> Option<PathBuf> {
    let has_both = |dir: &Path| dir.join("initdb").exists() && dir.join("pg_ctl").exists();
    if let Ok(output) = Command::new("pg_config").arg("--bindir").output()
        && output.status.success()
    {
        let dir = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
        if has_both(&dir) {
            return Some(dir);
        }
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    if let Some(dir) = std::env::split_paths(&path).find(|dir| has_both(dir)) {
        return Some(dir);
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path().join("bin"))
        .filter(|bin| has_both(bin))
        .collect();
    found.sort();
    found.pop()
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

/// A Postgres server of the test's own, in a temporary folder, listening
/// on 127.0.0.1 on a port of its own; it trusts local connections (user
/// `postgres`, any password). A test may stop it and start it again on the
/// same port and data ([`Server::stop_immediately`], [`Server::restart`]),
/// as an operator's crash or restart would. Stopped and removed when
/// dropped, and by a watchdog when the test process ends however it ends.
pub struct Server {
    pg_ctl: PathBuf,
    folder: PathBuf,
    port: u16,
}

impl Server {
    /// Creates a cluster with the binaries in `bin` (see
    /// [`installed_binaries`]) and starts it.
    pub fn start(bin: &Path) -> Self {
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
        let data = folder.join("data").to_string_lossy().to_string();
        run(
            &bin.join("initdb"),
            &["-D", &data, "-U", "postgres", "-A", "trust", "--no-sync"],
        );
        let port = crate::binary::free_address().port();
        let server = Self {
            pg_ctl: bin.join("pg_ctl"),
            folder,
            port,
        };
        server.watch_over();
        server.restart();
        server
    }

    /// The URL of the database `name` on it.
    pub fn url(&self, name: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    fn data(&self) -> String {
        self.folder.join("data").to_string_lossy().to_string()
    }

    /// Starts it (again), on its port and data, and waits until it accepts
    /// connections.
    pub fn restart(&self) {
        let folder = self.folder.to_string_lossy().to_string();
        let options = format!("-p {} -k {folder} -c listen_addresses=127.0.0.1 -F", self.port);
        let log = self.folder.join("postgres.log").to_string_lossy().to_string();
        run(
            &self.pg_ctl,
            &["-D", &self.data(), "-o", &options, "-l", &log, "-w", "start"],
        );
    }

    /// Stops it as a crash would (`pg_ctl stop -m immediate`): every
    /// session ends at once, nothing is shut down cleanly, and connecting
    /// is refused until [`Server::restart`].
    pub fn stop_immediately(&self) {
        run(&self.pg_ctl, &["-D", &self.data(), "-m", "immediate", "-w", "stop"]);
    }

    /// Stops the server and removes its folder once the test process has
    /// ended, however it ended (a watchdog process that outlives it).
    fn watch_over(&self) {
        let pg_ctl = self.pg_ctl.to_string_lossy().to_string();
        let folder = self.folder.to_string_lossy().to_string();
        let watchdog = format!(
            "while [ -d /proc/{pid} ]; do sleep 1; done; {pg_ctl} -D {data} stop -m immediate >/dev/null 2>&1; rm -rf {folder}",
            pid = std::process::id(),
            data = self.data(),
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
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let mut command = if is_root() {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(&self.pg_ctl);
            command
        } else {
            Command::new(&self.pg_ctl)
        };
        let _ = command
            .args(["-D", &self.data(), "-m", "immediate", "stop"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.folder);
    }
}
