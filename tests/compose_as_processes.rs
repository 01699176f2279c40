//! docker-compose.yml run without Docker (#14): each service that runs a
//! Shop image is started as a local process of its Dockerfile target's
//! entrypoint, with its `command`, and with exactly the environment the
//! file and the target give it (interpolated from a `.env` of the test's),
//! as many processes as its replicas; the one-shot services the others
//! wait for run to completion first. What a container would reach on the
//! internal network is mapped onto this machine: every `0.0.0.0:port` a
//! service listens on becomes a free port on 127.0.0.1, the EventStoreDB
//! URL the embedded store file, the Postgres URL a fresh database on the
//! local server, `/run/secrets/<name>` a file holding that secret. Each
//! process must answer its image's `HEALTHCHECK` (the `healthcheck`
//! binary, the port remapped); then an order placed at the command API
//! reads back, confirmed, from every query API process.
//!
//! So a variable the services do not read (a typo), one missing (the key
//! file), an address the healthcheck does not probe, or a command a
//! binary does not know fails here, not in production. Every variable must
//! also be one README.md's configuration table documents. Not covered:
//! EventStoreDB and Postgres themselves, the certificates, the proxy.

// In tests an unwrap is an assertion with a backtrace.
#![allow(clippy::unwrap_used)]

mod compose;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use command_api::auth::tokens::SigningKey;
use compose::Service;
use compose::dockerfile::{Stage, stage};
use reqwest::StatusCode;
use serde_json::{Value, json};
use test_support::binary::{self, Running, free_address};
use test_support::killable::build_binaries;

/// What `.env` holds in this test.
const DOTENV: &[(&str, &str)] = &[
    ("POSTGRES_PASSWORD", "compose-postgres-password"),
    ("EVENTSTORE_PASSWORD", "compose-eventstore-password"),
    ("ADMIN_USERNAME", "compose-admin"),
    ("ADMIN_PASSWORD", "compose-admin-password"),
];

/// The Ed25519 private key of RFC 8410, section 10.3: the signing key
/// `keygen` would have written.
const PRIVATE_KEY: &str = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC\n-----END PRIVATE KEY-----\n";

/// Where the file's references land on this machine.
struct Local {
    store_url: String,
    views_url: String,
    /// Each secret's file.
    secrets: BTreeMap<String, PathBuf>,
    /// The compose file's service names: host names on its network.
    hosts: Vec<String>,
    /// The variables README.md's configuration table lists.
    documented: BTreeSet<String>,
    binaries: PathBuf,
    _folder: tempfile::TempDir,
}

/// One process of a service.
struct Started {
    service: String,
    running: Running,
    /// The healthcheck command, its URL on this machine.
    healthcheck: Vec<String>,
    /// Where its HTTP API is: the address the healthcheck probes.
    address: SocketAddr,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_compose_stack_runs_as_processes_and_serves_an_order_from_every_query_api() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let file = compose::read(&read(&root.join("docker-compose.yml")), DOTENV);
    let dockerfile = read(&root.join("Dockerfile"));
    let local = Local::new(&file, &read(&root.join("README.md"))).await;
    let (one_shots, services): (Vec<&Service>, Vec<&Service>) = file.shop.iter().partition(|service| {
        file.shop
            .iter()
            .any(|other| other.after_completion_of.contains(&service.name))
    });
    for service in one_shots {
        let exit = local
            .start(service, &stage(&dockerfile, &service.target))
            .running
            .exit();
        assert!(exit.success, "{} failed: {}", service.name, exit.stderr);
    }
    let mut started = Vec::new();
    for service in services {
        let stage = stage(&dockerfile, &service.target);
        started.extend((0..service.replicas).map(|_| local.start(service, &stage)));
    }
    for name in ["projectors", "query-api"] {
        let count = started.iter().filter(|process| process.service == name).count();
        assert!(count >= 2, "the file runs {count} {name} processes, not two or more");
    }
    for process in &mut started {
        wait_until_healthy(process).await;
    }
    an_order_reads_back_from_every_query_api(&started).await;
}

impl Local {
    async fn new(file: &compose::Compose, readme: &str) -> Self {
        let folder = tempfile::tempdir().unwrap();
        let secrets = file
            .secrets
            .iter()
            .map(|name| {
                let path = folder.path().join(name);
                std::fs::write(&path, secret(name)).unwrap();
                (name.clone(), path)
            })
            .collect();
        Self {
            store_url: format!("sqlite://{}", folder.path().join("events.db").display()),
            views_url: test_support::postgres::fresh_database().await,
            secrets,
            hosts: file.hosts.clone(),
            documented: documented_variables(readme),
            binaries: build_binaries(env!("CARGO_MANIFEST_DIR"), env!("CARGO_BIN_EXE_shop")),
            _folder: folder,
        }
    }

    /// A process of `service`: its target's entrypoint with its command,
    /// the target's `ENV` overridden by the service's `environment`, each
    /// value mapped onto this machine.
    fn start(&self, service: &Service, stage: &Stage) -> Started {
        let mut variables = BTreeMap::new();
        for (name, value) in stage.env.iter().chain(&service.environment) {
            variables.insert(name.clone(), value.clone());
        }
        let mut listens = BTreeMap::new();
        let env: Vec<(String, String)> = variables
            .into_iter()
            .map(|(name, value)| {
                let local = self.local_value(service, &name, &value, &mut listens);
                (name, local)
            })
            .collect();
        let (healthcheck, address) = local_healthcheck(service, stage, &listens);
        let program = self.binaries.join(file_name(&stage.entrypoint[0]));
        let args: Vec<&str> = stage.entrypoint[1..]
            .iter()
            .chain(&service.command)
            .map(String::as_str)
            .collect();
        let env: Vec<(&str, &str)> = env.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        Started {
            service: service.name.clone(),
            running: binary::start(&program.to_string_lossy(), &args, &env),
            healthcheck,
            address,
        }
    }

    /// `value` of the variable `name` as it must read on this machine; a
    /// listening address gets a free port, recorded in `listens` by the
    /// container's port.
    fn local_value(
        &self,
        service: &Service,
        name: &str,
        value: &str,
        listens: &mut BTreeMap<u16, SocketAddr>,
    ) -> String {
        assert!(
            self.documented.contains(name),
            "{}: {name} is no variable README.md's configuration table lists",
            service.name
        );
        if value.starts_with("esdb://") || value.starts_with("kurrentdb://") {
            self.assert_hosts_known(service, name, value.split_once('@').map_or(value, |(_, hosts)| hosts));
            return self.store_url.clone();
        }
        if let Some(rest) = value.strip_prefix("postgres://") {
            self.assert_hosts_known(service, name, rest.split_once('@').map_or(rest, |(_, host)| host));
            return self.views_url.clone();
        }
        if let Some(secret) = value.strip_prefix("/run/secrets/") {
            assert!(
                service.secrets.iter().any(|s| s == secret),
                "{}: {name} names the secret {secret} it does not mount",
                service.name
            );
            return self.secrets[secret].display().to_string();
        }
        if let Ok(address) = value.parse::<SocketAddr>() {
            assert!(
                address.ip().is_unspecified(),
                "{}: {name}={value} is unreachable from outside its container",
                service.name
            );
            return listens.entry(address.port()).or_insert_with(free_address).to_string();
        }
        assert!(
            !self.hosts.iter().any(|host| value.contains(&format!("{host}:"))),
            "{}: {name}={value} names a service this test does not map",
            service.name
        );
        value.to_owned()
    }

    /// Every `host:port` of a URL's authority is a service of the file.
    fn assert_hosts_known(&self, service: &Service, name: &str, authority: &str) {
        let authority = authority.split(['/', '?']).next().unwrap_or_default();
        for host in authority
            .split(',')
            .map(|host| host.split(':').next().unwrap_or_default())
        {
            assert!(
                self.hosts.iter().any(|known| known == host),
                "{}: {name} names {host}, no service of the file",
                service.name
            );
        }
    }
}

/// The healthcheck command with its URL's port mapped to where the
/// process listens, and that address.
fn local_healthcheck(
    service: &Service,
    stage: &Stage,
    listens: &BTreeMap<u16, SocketAddr>,
) -> (Vec<String>, SocketAddr) {
    let [program, url] = stage.healthcheck.as_slice() else {
        panic!(
            "{}: the healthcheck is not `healthcheck URL`: {:?}",
            service.name, stage.healthcheck
        );
    };
    let rest = url
        .strip_prefix("http://127.0.0.1:")
        .expect("the healthcheck probes 127.0.0.1");
    let (port, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let address = *listens.get(&port.parse().unwrap()).unwrap_or_else(|| {
        panic!(
            "{}: the healthcheck probes port {port}, where the service does not listen",
            service.name
        )
    });
    (vec![program.clone(), format!("http://{address}{path}")], address)
}

/// Runs the process's healthcheck until it passes, as Docker would; fails
/// if the process exits first or [`test_support::PATIENCE`] passes.
async fn wait_until_healthy(process: &mut Started) {
    let probe = Path::new(env!("CARGO_BIN_EXE_healthcheck"));
    assert_eq!(file_name(&process.healthcheck[0]), file_name(&probe.to_string_lossy()));
    let url = process.healthcheck[1].clone();
    let name = process.service.clone();
    let exited = test_support::wait_for(&format!("{name} healthy at {url}"), || {
        let status = process.running.exited();
        let url = url.clone();
        async move {
            if let Some(status) = status {
                return Ok(Some(status));
            }
            let probed = Command::new(probe).arg(&url).output().unwrap();
            match probed.status.success() {
                true => Ok(None),
                false => Err(String::from_utf8_lossy(&probed.stderr).into_owned()),
            }
        }
    })
    .await;
    if let Some(status) = exited {
        panic!("{name} exited ({status}): {}", process.running.stderr());
    }
}

/// The administrator of `.env` adds a product, a customer orders it at
/// the command API, and every query API process reads the order back,
/// confirmed, at the position the command answered.
async fn an_order_reads_back_from_every_query_api(started: &[Started]) {
    let http = reqwest::Client::new();
    let commands = format!("http://{}", only(started, "command-api").address);
    let admin = login(&http, &commands, variable("ADMIN_USERNAME"), variable("ADMIN_PASSWORD")).await;
    let sku = format!("LAMP-{}", uuid::Uuid::new_v4().simple());
    let (status, product) = test_support::respond(
        http.post(format!("{commands}/products"))
            .bearer_auth(&admin)
            .json(&json!({"sku": sku, "name": "Lamp", "price": "12.50", "stock": 3})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{product}");
    let customer = format!("customer-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let (status, body) = test_support::respond(
        http.post(format!("{commands}/auth/register"))
            .json(&json!({"username": customer, "password": "password-123", "displayName": "Customer"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let token = login(&http, &commands, &customer, "password-123").await;
    let product_id = product["productId"].as_str().unwrap();
    let (status, order) = test_support::respond(
        http.post(format!("{commands}/orders"))
            .bearer_auth(&token)
            .json(&test_support::order_body(&[(product_id, 2)])),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    for queries in started.iter().filter(|process| process.service == "query-api") {
        let url = format!(
            "http://{}/orders/{}?minPosition={}",
            queries.address,
            order["orderId"].as_str().unwrap(),
            order["position"].as_str().unwrap()
        );
        let read = test_support::wait_for("the order read back", || confirmed(&http, url.clone(), &token)).await;
        assert_eq!(read["total"], "25.00", "{read}");
    }
}

/// The order at `url` once it reads as confirmed.
async fn confirmed(http: &reqwest::Client, url: String, token: &str) -> Result<Value, String> {
    match test_support::respond(http.get(&url).bearer_auth(token)).await {
        (StatusCode::OK, order) if order["status"] == "confirmed" => Ok(order),
        (status, body) => Err(format!("{status}: {body}")),
    }
}

async fn login(http: &reqwest::Client, commands: &str, username: &str, password: &str) -> String {
    let (status, body) = test_support::respond(
        http.post(format!("{commands}/auth/login"))
            .json(&json!({"username": username, "password": password})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{username}: {body}");
    body["accessToken"].as_str().unwrap().to_owned()
}

fn only<'a>(started: &'a [Started], service: &str) -> &'a Started {
    let mut of = started.iter().filter(|process| process.service == service);
    let first = of.next().unwrap_or_else(|| panic!("the file runs no {service}"));
    assert!(of.next().is_none(), "the file runs more than one {service}");
    first
}

fn variable(name: &str) -> &'static str {
    DOTENV.iter().find(|(variable, _)| *variable == name).unwrap().1
}

/// What the secret `name` holds: the signing key or its public half.
fn secret(name: &str) -> String {
    match name {
        "jwt_private_key" => PRIVATE_KEY.to_owned(),
        "jwt_public_key" => SigningKey::from_pem(PRIVATE_KEY).unwrap().public_key_pem(),
        other => panic!("a secret this test does not know: {other}"),
    }
}

/// The names in the first column of README.md's configuration table
/// (`| \`NAME\` / \`NAME_FILE\` | default | ...`).
fn documented_variables(readme: &str) -> BTreeSet<String> {
    readme
        .lines()
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|row| row.split(" | ").next())
        .flat_map(|cell| cell.split('`').map(str::to_owned).collect::<Vec<_>>())
        .filter(|word| {
            !word.is_empty()
                && word
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        })
        .collect()
}

fn file_name(path: &str) -> String {
    Path::new(path).file_name().unwrap().to_string_lossy().into_owned()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
