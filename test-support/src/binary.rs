//! A Shop binary run as its users run it: a child process that sees only
//! the variables a test gives it (and `PATH`), so a test proves what the
//! binary reads from its environment without changing this process's.

use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::PATIENCE;

/// The ports [`free_address`] hands out: below the ephemeral ranges of
/// Linux (32768–60999), macOS and Windows (49152–65535), so an outgoing
/// connection (to Postgres, between services) never takes one between the
/// test choosing it and the binary binding it.
const PORTS: std::ops::Range<u32> = 10_000..32_000;

/// How many ports each test process counts through before it reaches the
/// next window's: processes take windows by their id, so two tests running
/// at once share one only if their ids differ by a multiple of the number
/// of windows (343).
const PORTS_PER_PROCESS: u32 = 64;

/// How many ports this process has handed out.
static HANDED_OUT: AtomicU32 = AtomicU32::new(0);

/// An address on 127.0.0.1 that nothing listens on right now and that
/// this process has not handed out before, so the binary can take it.
///
/// Asking the OS for port 0 and releasing it is not enough: the OS may
/// give the same port to the next call (two binaries of one test then
/// race for it) or to an outgoing connection. The port comes instead from
/// [`PORTS`], counted from the start of a window that depends on the
/// process id, and is bound once to check that nothing else holds it.
pub fn free_address() -> SocketAddr {
    let span = PORTS.end - PORTS.start;
    let start = std::process::id() % (span / PORTS_PER_PROCESS) * PORTS_PER_PROCESS;
    for _ in 0..span {
        let offset = start.wrapping_add(HANDED_OUT.fetch_add(1, Ordering::Relaxed)) % span;
        let port = u16::try_from(PORTS.start + offset).expect("the ports fit in a u16");
        if let Ok(listener) = TcpListener::bind((Ipv4Addr::LOCALHOST, port)) {
            return listener.local_addr().expect("a bound listener has an address");
        }
    }
    panic!("no free port on 127.0.0.1 in {PORTS:?}")
}

/// A running binary; killed when dropped.
pub struct Running {
    child: Child,
    stdout: Output,
    stderr: Output,
}

/// What a child writes to one of its pipes, collected as it comes so the
/// pipe never fills.
struct Output {
    text: Arc<Mutex<String>>,
    reader: Option<JoinHandle<()>>,
}

impl Output {
    fn collect(mut pipe: impl Read + Send + 'static) -> Self {
        let text = Arc::new(Mutex::new(String::new()));
        let collected = Arc::clone(&text);
        let reader = std::thread::spawn(move || {
            let mut buffer = [0_u8; 4096];
            while let Ok(read @ 1..) = pipe.read(&mut buffer) {
                let chunk = String::from_utf8_lossy(&buffer[..read]).into_owned();
                collected.lock().expect("the output lock").push_str(&chunk);
            }
        });
        Self {
            text,
            reader: Some(reader),
        }
    }

    fn text(&self) -> String {
        self.text.lock().expect("the output lock").clone()
    }

    /// Everything, once the child has exited and closed the pipe.
    fn finish(&mut self) -> String {
        if let Some(reader) = self.reader.take() {
            reader.join().expect("the output reader finishes");
        }
        self.text()
    }
}

/// Starts the binary at `path` (`env!("CARGO_BIN_EXE_<name>")`) with
/// `args`, and `env` as its whole environment but `PATH`.
pub fn start(path: &str, args: &[&str], env: &[(&str, &str)]) -> Running {
    let mut child = Command::new(path)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{path} runs: {e}"));
    let stdout = Output::collect(child.stdout.take().expect("stdout is piped"));
    let stderr = Output::collect(child.stderr.take().expect("stderr is piped"));
    Running { child, stdout, stderr }
}

/// How a binary ended.
#[derive(Debug)]
pub struct Exit {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Running {
    /// Waits for the binary to stop on its own; fails if it still runs
    /// after [`PATIENCE`] (a configuration accepted by mistake runs until
    /// stopped).
    pub fn exit(mut self) -> Exit {
        let deadline = Instant::now() + PATIENCE;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("the child can be waited for") {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "the binary kept running for {PATIENCE:?}: {}",
                self.stderr.text()
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        Exit {
            success: status.success(),
            stdout: self.stdout.finish(),
            stderr: self.stderr.finish(),
        }
    }

    /// Waits until `GET http://{address}/health/live` answers 200: the
    /// binary listens there. Fails, with what the binary wrote to stderr,
    /// if it exits first or [`PATIENCE`] passes.
    pub async fn wait_until_live(&mut self, address: SocketAddr) {
        self.wait_until_ok(&format!("http://{address}/health/live")).await;
    }

    /// Waits until `GET http://{address}/health/ready` answers 200: the
    /// binary listens there and its dependencies answer. Fails like
    /// [`Running::wait_until_live`].
    pub async fn wait_until_ready(&mut self, address: SocketAddr) {
        self.wait_until_ok(&format!("http://{address}/health/ready")).await;
    }

    async fn wait_until_ok(&mut self, url: &str) {
        let http = reqwest::Client::new();
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.exited() {
                panic!("the binary stopped ({status}) before {url} answered: {}", self.stderr());
            }
            let answer = http.get(url).timeout(Duration::from_secs(1)).send().await;
            if answer.is_ok_and(|response| response.status() == reqwest::StatusCode::OK) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{url} did not answer 200 within {PATIENCE:?}: {}",
                self.stderr()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// How the binary ended, if it has.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().expect("the child can be waited for")
    }

    /// The binary's process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Kills the binary with SIGKILL (`kill -9`: it cleans nothing up) and
    /// waits until it is gone.
    pub fn kill(mut self) {
        self.child.kill().expect("the binary can be killed");
        self.child.wait().expect("the killed binary can be waited for");
    }

    /// What the binary has written to stdout so far.
    pub fn stdout(&self) -> String {
        self.stdout.text()
    }

    /// What the binary has written to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.text()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The status, content type and body of `GET {url}`, waiting at most 20 s.
pub async fn get(url: String) -> (u16, String, String) {
    let response = reqwest::Client::new()
        .get(&url)
        .timeout(Duration::from_secs(20))
        .send()
        .await
        .expect("an answer");
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (
        response.status().as_u16(),
        content_type,
        response.text().await.expect("a body"),
    )
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::{PORTS, free_address};

    #[test]
    fn free_addresses_are_never_handed_out_twice_and_stay_below_the_ephemeral_ranges() {
        let ports: Vec<u16> = (0..500).map(|_| free_address().port()).collect();
        let distinct: HashSet<u16> = ports.iter().copied().collect();
        assert_eq!(distinct.len(), ports.len(), "a port handed out twice: {ports:?}");
        assert!(ports.iter().all(|port| PORTS.contains(&u32::from(*port))), "{ports:?}");
    }
}
