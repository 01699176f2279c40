//! Logs a platform can ingest: with `LOG_FORMAT=json` every line `shop`
//! writes is one JSON object with `timestamp`, `level`, `target` and
//! `fields` (the `message` among them) and the spans it was logged in, so
//! one order can be followed by its request id and its `traceparent`'s
//! trace id from the request through the saga and the projectors, and
//! every service's requests carry theirs. Text stays the default; a format
//! it does not know is named and nothing starts.

use std::net::SocketAddr;

use reqwest::StatusCode;
use serde_json::{Value, json};
use test_support::binary::{self, free_address};
use test_support::{order_body, respond, wait_for};
use uuid::Uuid;

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const ADMIN: (&str, &str) = ("admin", "admin-password");

/// `shop` with `env`, its log and views in `folder`, its three APIs on
/// free addresses (the command API's, the query API's, the admin API's).
fn shop(folder: &tempfile::TempDir, env: &[(&str, &str)]) -> (binary::Running, [SocketAddr; 3]) {
    let addresses = [(); 3].map(|()| free_address());
    let [commands, queries, admin] = addresses.map(|address| address.to_string());
    let store_url = format!("sqlite://{}", folder.path().join("events.db").display());
    let views_url = format!("sqlite://{}?mode=rwc", folder.path().join("views.db").display());
    let mut all = vec![
        ("EVENT_STORE_URL", store_url.as_str()),
        ("VIEWS_DATABASE_URL", views_url.as_str()),
        ("COMMAND_API_ADDR", commands.as_str()),
        ("QUERY_API_ADDR", queries.as_str()),
        ("PROJECTORS_ADMIN_ADDR", admin.as_str()),
        ("ADMIN_USERNAME", ADMIN.0),
        ("ADMIN_PASSWORD", ADMIN.1),
        ("VIEWS_POOL_SIZE", "2"),
    ];
    all.extend_from_slice(env);
    (binary::start(env!("CARGO_BIN_EXE_shop"), &[], &all), addresses)
}

/// A client of the command API at `base`.
struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> Value {
        let mut request = self.http.post(format!("{}{path}", self.base)).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let (status, body) = respond(request).await;
        assert!(status.is_success(), "{path}: {status} {body}");
        body
    }

    async fn login(&self, username: &str, password: &str) -> String {
        let body = json!({"username": username, "password": password});
        let answer = self.post("/auth/login", None, &body).await;
        answer["accessToken"].as_str().expect("an access token").to_owned()
    }
}

/// The complete lines of `stderr` (the last may still be being written),
/// each checked to be a JSON object with what every line must have.
fn json_lines(stderr: &str) -> Vec<Value> {
    let complete = stderr.rsplit_once('\n').map_or("", |(complete, _)| complete);
    complete.lines().map(json_line).collect()
}

fn json_line(line: &str) -> Value {
    let parsed: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
    for field in ["timestamp", "level", "target"] {
        assert!(parsed[field].is_string(), "no {field}: {line}");
    }
    assert!(
        ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"].contains(&parsed["level"].as_str().unwrap_or_default()),
        "{line}"
    );
    assert!(parsed["fields"]["message"].is_string(), "no fields.message: {line}");
    parsed
}

/// Whether `line` was logged while serving the request `request_id`,
/// which came with [`TRACE`].
fn in_request(line: &Value, request_id: Uuid) -> bool {
    let spans = line["spans"].as_array().map(Vec::as_slice).unwrap_or_default();
    spans.iter().any(|span| {
        span["name"] == "request" && span["request_id"] == request_id.to_string() && span["trace_id"] == TRACE
    })
}

/// Whether `line` says `message` of an event correlated with `request_id`
/// in [`TRACE`].
fn of_event(line: &Value, message: &str, request_id: Uuid) -> bool {
    let fields = &line["fields"];
    fields["message"] == message && fields["correlation_id"] == request_id.to_string() && fields["trace_id"] == TRACE
}

/// A line a test waits for: what it is, and how to know it.
type Wanted<'a> = (&'a str, &'a dyn Fn(&Value) -> bool);

/// `Ok` once `lines` hold every line `wanted` names, else which are
/// missing.
fn all_there(lines: &[Value], wanted: &[Wanted<'_>]) -> Result<(), String> {
    let missing: Vec<&str> = wanted
        .iter()
        .filter(|(_, found)| !lines.iter().any(found))
        .map(|(what, _)| *what)
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!("missing {missing:?}"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_follow_an_order_from_its_request_through_the_saga_and_the_projectors() {
    let folder = tempfile::tempdir().expect("a temporary folder");
    let debug = "info,api_common=debug,command_api::saga=debug,projectors::runner=debug";
    let (mut running, [commands, queries, admin]) = shop(&folder, &[("LOG_FORMAT", "json"), ("RUST_LOG", debug)]);
    for address in [commands, queries, admin] {
        running.wait_until_live(address).await;
    }
    let client = Client {
        http: reqwest::Client::new(),
        base: format!("http://{commands}"),
    };
    let admin_token = client.login(ADMIN.0, ADMIN.1).await;
    let product = json!({"sku": "MUG-1", "name": "Mug", "price": "12.50", "stock": 5});
    let created = client.post("/products", Some(&admin_token), &product).await;
    let product_id = created["productId"].as_str().expect("a product id");
    let customer = json!({"username": "alice", "password": "password-123", "displayName": "Alice"});
    client.post("/auth/register", None, &customer).await;
    let alice = client.login("alice", "password-123").await;

    let ordered_by = Uuid::now_v7();
    let order = client
        .http
        .post(format!("{}/orders", client.base))
        .bearer_auth(&alice)
        .header("X-Request-Id", ordered_by.to_string())
        .header("traceparent", TRACEPARENT)
        .json(&order_body(&[(product_id, 1)]));
    let (status, order) = respond(order).await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    let (read_by, listed_by) = (Uuid::now_v7(), Uuid::now_v7());
    for (url, request_id) in [
        (format!("http://{queries}/products"), read_by),
        (format!("http://{admin}/projections"), listed_by),
    ] {
        let request = client
            .http
            .get(url)
            .header("X-Request-Id", request_id.to_string())
            .header("traceparent", TRACEPARENT);
        respond(request).await;
    }

    let answered =
        |request_id| move |line: &Value| line["fields"]["message"] == "answered" && in_request(line, request_id);
    let (ordered, read, listed) = (answered(ordered_by), answered(read_by), answered(listed_by));
    let saga = |line: &Value| of_event(line, "order saga reads an event", ordered_by);
    let projected = |line: &Value| of_event(line, "projecting an event", ordered_by);
    let wanted: [Wanted<'_>; 5] = [
        ("the order's answer in its request's span", &ordered),
        ("the saga reading the order's events", &saga),
        ("a projector taking the order's events in", &projected),
        ("the query API's answer in its request's span", &read),
        ("the admin API's answer in its request's span", &listed),
    ];
    wait_for("the order followed through the logs", || {
        std::future::ready(all_there(&json_lines(&running.stderr()), &wanted))
    })
    .await;
}

#[tokio::test]
async fn logs_are_text_by_default() {
    let folder = tempfile::tempdir().expect("a temporary folder");
    let (mut running, [commands, _, _]) = shop(&folder, &[("RUST_LOG", "info,api_common=debug")]);
    running.wait_until_live(commands).await;
    let request_id = Uuid::now_v7();
    let request = reqwest::Client::new()
        .get(format!("http://{commands}/health/live"))
        .header("X-Request-Id", request_id.to_string())
        .header("traceparent", TRACEPARENT);
    respond(request).await;
    let line = wait_for("the answer's line", || {
        let stderr = running.stderr();
        let line = stderr.lines().find(|line| line.contains(&request_id.to_string()));
        std::future::ready(line.map(str::to_owned).ok_or(stderr))
    })
    .await;
    assert!(serde_json::from_str::<Value>(&line).is_err(), "{line}");
    assert!(line.contains("answered") && line.contains(TRACE), "{line}");
}

#[tokio::test]
async fn an_unknown_log_format_is_named_and_nothing_starts() {
    let folder = tempfile::tempdir().expect("a temporary folder");
    let (running, _) = shop(&folder, &[("LOG_FORMAT", "yaml")]);
    let exit = tokio::task::spawn_blocking(move || running.exit())
        .await
        .expect("the binary is waited for");
    assert!(!exit.success);
    assert!(
        exit.stderr
            .contains("LOG_FORMAT is not valid: \"yaml\": use text or json"),
        "{}",
        exit.stderr
    );
    assert!(!folder.path().join("events.db").exists(), "nothing started");
}
