//! Shop deployed as an operator deploys it: each service a process of its
//! own (`command-api`, `projectors`, `query-api`), configured only through
//! its environment, on one embedded event store file and one views
//! database, all verifying tokens with one key pair. For tests of what
//! happens between processes: starting together, a dependency going away.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use command_api::auth::tokens::SigningKey;

use crate::binary::{self, Running, free_address};

/// The administrator every command API of a deployment makes sure of.
pub const ADMIN: (&str, &str) = ("admin", "deployment-admin-password");

/// The Ed25519 private key of RFC 8410, section 10.3: the command APIs sign
/// with it, the others verify with its public half.
const PRIVATE_KEY: &str = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC\n-----END PRIVATE KEY-----\n";

/// Where the binaries, the log and the views are.
pub struct Deployment {
    binaries: PathBuf,
    store_url: String,
    views_url: String,
    public_key: String,
    _folder: tempfile::TempDir,
}

/// One service's process and where its HTTP API listens.
pub struct Process {
    pub name: &'static str,
    pub address: SocketAddr,
    pub running: Running,
}

impl Process {
    /// `http://{address}`.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Waits until its readiness answers 200; fails, with what it wrote to
    /// stderr, if it exits first.
    pub async fn wait_until_ready(&mut self) {
        self.running.wait_until_ready(self.address).await;
    }
}

impl Deployment {
    /// A deployment of the binaries in `binaries` (see
    /// [`crate::killable::build_binaries`]) on a fresh event store file and
    /// the views at `views_url`.
    pub fn new(binaries: &Path, views_url: &str) -> Self {
        let folder = tempfile::tempdir().expect("a temporary folder");
        Self {
            binaries: binaries.to_path_buf(),
            store_url: format!("sqlite://{}", folder.path().join("events.db").display()),
            views_url: views_url.to_owned(),
            public_key: SigningKey::from_pem(PRIVATE_KEY)
                .expect("the RFC 8410 key")
                .public_key_pem(),
            _folder: folder,
        }
    }

    /// The event store's URL.
    pub fn store_url(&self) -> &str {
        &self.store_url
    }

    /// A `command-api` with its saga, making sure of [`ADMIN`], with `env`
    /// added.
    pub fn command_api(&self, env: &[(&str, &str)]) -> Process {
        let address = free_address();
        let listen = address.to_string();
        let mut all = vec![
            ("EVENT_STORE_URL", self.store_url.as_str()),
            ("COMMAND_API_ADDR", listen.as_str()),
            ("JWT_PRIVATE_KEY", PRIVATE_KEY),
            ("ADMIN_USERNAME", ADMIN.0),
            ("ADMIN_PASSWORD", ADMIN.1),
        ];
        all.extend_from_slice(env);
        self.start("command-api", address, &all)
    }

    /// A `projectors` with its admin API, with `env` added.
    pub fn projectors(&self, env: &[(&str, &str)]) -> Process {
        let address = free_address();
        let listen = address.to_string();
        let mut all = vec![
            ("EVENT_STORE_URL", self.store_url.as_str()),
            ("VIEWS_DATABASE_URL", self.views_url.as_str()),
            ("PROJECTORS_ADMIN_ADDR", listen.as_str()),
            ("JWT_PUBLIC_KEY", self.public_key.as_str()),
        ];
        all.extend_from_slice(env);
        self.start("projectors", address, &all)
    }

    /// A `query-api`, with `env` added.
    pub fn query_api(&self, env: &[(&str, &str)]) -> Process {
        let address = free_address();
        let listen = address.to_string();
        let mut all = vec![
            ("VIEWS_DATABASE_URL", self.views_url.as_str()),
            ("QUERY_API_ADDR", listen.as_str()),
            ("JWT_PUBLIC_KEY", self.public_key.as_str()),
        ];
        all.extend_from_slice(env);
        self.start("query-api", address, &all)
    }

    fn start(&self, name: &'static str, address: SocketAddr, env: &[(&str, &str)]) -> Process {
        let program = self.binaries.join(name);
        let running = binary::start(&program.to_string_lossy(), &[], env);
        Process { name, address, running }
    }
}
