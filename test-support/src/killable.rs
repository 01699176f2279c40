//! Shop's service binaries as processes a fault-injection test kills with
//! SIGKILL and starts again, on the same address and data, as an
//! orchestrator restarting a crashed container would.
//!
//! A package's integration tests only get its own binaries built for them
//! (`CARGO_BIN_EXE_<name>`), so [`build_binaries`] asks Cargo for the rest
//! first: a test never runs a stale build of another crate.

use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::time::Instant;

/// Builds every binary of the workspace at `workspace` as `cargo test
/// --workspace` does (the same profile as `own_binary`, a
/// `CARGO_BIN_EXE_<name>` of the calling test, and the same features), and
/// returns the folder that holds them. Under `cargo test --workspace`
/// (CI) they are built already and this only checks; a narrower `cargo
/// build` would resolve features differently and build them all again.
/// Cargo releases its build lock while tests run, so this does not wait
/// on the `cargo test` that runs the caller.
pub fn build_binaries(workspace: &str, own_binary: &str) -> PathBuf {
    build(workspace, own_binary, &["test", "--workspace", "--no-run"])
}

/// Builds only the binaries of the workspace at `workspace` (`cargo build
/// --workspace --bins`), in the profile of `own_binary`, and returns the
/// folder that holds them: for a benchmark, whose release profile would
/// otherwise build every test of the workspace optimized too.
pub fn build_bins(workspace: &str, own_binary: &str) -> PathBuf {
    build(workspace, own_binary, &["build", "--workspace", "--bins"])
}

/// Runs `cargo <args>` on `workspace` in the profile of `own_binary`.
fn build(workspace: &str, own_binary: &str, args: &[&str]) -> PathBuf {
    let folder = Path::new(own_binary)
        .parent()
        .expect("a binary lives in a folder")
        .to_path_buf();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    // What Cargo sets for the test it runs, not for builds: a build script
    // that reads one (ring reads CARGO_MANIFEST_DIR) would see it changed
    // and everything above it would be built again.
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        let set_for_the_test = name.starts_with("CARGO_PKG_")
            || [
                "OUT_DIR",
                "CARGO_MANIFEST_DIR",
                "CARGO_MANIFEST_PATH",
                "CARGO_CRATE_NAME",
                "CARGO_BIN_NAME",
                "CARGO_PRIMARY_PACKAGE",
                "CARGO_TARGET_TMPDIR",
                "CARGO_RUSTC_CURRENT_DIR",
            ]
            .contains(&name.as_ref());
        if set_for_the_test {
            command.env_remove(name.as_ref());
        }
    }
    command
        .args(args)
        .args(["--quiet", "--manifest-path"])
        .arg(Path::new(workspace).join("Cargo.toml"));
    match folder.file_name().and_then(|name| name.to_str()) {
        Some("debug") | None => {}
        Some("release") => {
            command.arg("--release");
        }
        Some(profile) => {
            command.args(["--profile", profile]);
        }
    }
    let output = command.output().expect("cargo runs");
    assert!(
        output.status.success(),
        "cargo could not build the workspace's binaries: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    folder
}

/// One service: how to start it, where it listens, and its process while
/// it runs. Killed when dropped.
pub struct Service {
    pub name: String,
    program: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    /// Where its HTTP API listens (`/health/live` answers there).
    pub address: SocketAddr,
    log: PathBuf,
    child: Option<Child>,
    starts: u32,
}

impl Service {
    /// A service (not started yet) that runs `program` with `args` and
    /// `env` as its whole environment but `PATH`, listening on `address`,
    /// and appends its stdout and stderr to `log`.
    pub fn new(
        name: &str,
        program: PathBuf,
        args: &[&str],
        env: &[(&str, &str)],
        address: SocketAddr,
        log: PathBuf,
    ) -> Self {
        Self {
            name: name.to_owned(),
            program,
            args: args.iter().map(|&arg| arg.to_owned()).collect(),
            env: env.iter().map(|&(k, v)| (k.to_owned(), v.to_owned())).collect(),
            address,
            log,
            child: None,
            starts: 0,
        }
    }

    /// Starts it and waits until `/health/live` answers 200, starting it
    /// again if it exits first (its port may still be held by a process
    /// being torn down). Fails after `within`.
    pub async fn start(&mut self, within: Duration) {
        let deadline = Instant::now() + within;
        let http = reqwest::Client::new();
        let url = format!("http://{}/health/live", self.address);
        loop {
            if !self.is_running() {
                assert!(
                    Instant::now() < deadline,
                    "{} did not start within {within:?}: {}",
                    self.name,
                    self.log_tail()
                );
                self.spawn();
            }
            let answer = http.get(&url).timeout(Duration::from_secs(1)).send().await;
            if answer.is_ok_and(|response| response.status() == reqwest::StatusCode::OK) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{url} did not answer 200 within {within:?}: {}",
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    fn spawn(&mut self) {
        self.starts += 1;
        let log = File::options()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("the log file opens");
        let child = Command::new(&self.program)
            .args(&self.args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(log.try_clone().expect("the log file is shared"))
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{} runs: {e}", self.program.display()));
        self.child = Some(child);
    }

    /// Whether its process is alive (not exited, not killed).
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|child| child.try_wait().expect("the child can be waited for").is_none())
    }

    /// Kills it with SIGKILL (it cleans nothing up) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// How many processes of it were started.
    pub fn starts(&self) -> u32 {
        self.starts
    }

    /// The last 3,000 characters of what its processes wrote.
    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let start = log.char_indices().rev().nth(3_000).map_or(0, |(at, _)| at);
        format!("--- {} log ({}) ---\n{}", self.name, self.log.display(), &log[start..])
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.kill();
    }
}
