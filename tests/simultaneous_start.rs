//! Services started at the same instant (#18), as compose and every
//! orchestrator start replicas: two command APIs, two projectors and two
//! query APIs, each a process of its own, on a fresh Postgres views
//! database and one event store file. The projectors race to migrate the
//! schema, the query APIs start before there is one, the command APIs race
//! to register the administrator: all six must come up ready and serve. And
//! two `shop` processes (`cargo run`) started at once on one data folder:
//! both start, with the sample products added once.
//!
//! Who wins which race varies from run to run, so each runs in rounds.

// In tests an unwrap is an assertion with a backtrace.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use reqwest::StatusCode;
use serde_json::{Value, json};
use test_support::binary::{self, free_address};
use test_support::deployment::{ADMIN, Deployment, Process};
use test_support::killable::build_binaries;

const ROUNDS: usize = 3;

/// The six processes, started one right after the other (no process waits
/// for another); then each must become ready.
async fn six_at_once(binaries: &Path) {
    let views_url = test_support::postgres::fresh_database().await;
    let deployment = Deployment::new(binaries, &views_url);
    let mut processes = vec![
        deployment.projectors(&[]),
        deployment.query_api(&[]),
        deployment.command_api(&[]),
        deployment.projectors(&[]),
        deployment.query_api(&[]),
        deployment.command_api(&[]),
    ];
    for process in &mut processes {
        process.wait_until_ready().await;
    }
    serve(&processes).await;
    for process in &mut processes {
        assert!(
            process.running.exited().is_none(),
            "{} exited: {}",
            process.name,
            process.running.stderr()
        );
    }
}

/// Every process serves: the administrator logs in at each command API, a
/// product it creates reads back from each query API at its position, and
/// each projectors' admin API lists the projections.
async fn serve(processes: &[Process]) {
    let http = reqwest::Client::new();
    let of = |name: &'static str| processes.iter().filter(move |p| p.name == name);
    let mut token = String::new();
    for commands in of("command-api") {
        let (status, body) = test_support::respond(
            http.post(format!("{}/auth/login", commands.url()))
                .json(&json!({"username": ADMIN.0, "password": ADMIN.1})),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{}: {body}", commands.name);
        token = body["accessToken"].as_str().unwrap().to_owned();
    }
    let commands = of("command-api").next().unwrap();
    let sku = format!("LAMP-{}", uuid::Uuid::new_v4().simple());
    let (status, created) = test_support::respond(
        http.post(format!("{}/products", commands.url()))
            .bearer_auth(&token)
            .json(&json!({"sku": sku, "name": "Lamp", "price": "12.50", "stock": 3})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    for queries in of("query-api") {
        let url = format!(
            "{}/products/{}?minPosition={}",
            queries.url(),
            created["productId"].as_str().unwrap(),
            created["position"].as_str().unwrap()
        );
        let product = test_support::wait_for("the product read back", || read(&http, url.clone())).await;
        assert_eq!(product["sku"], sku.to_uppercase());
    }
    for projectors in of("projectors") {
        let (status, body) = test_support::respond(http.get(format!("{}/projections", projectors.url()))).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
}

/// The body of `GET url` when it answers 200 (a 503 while the projectors
/// catch up is waited out).
async fn read(http: &reqwest::Client, url: String) -> Result<Value, String> {
    match test_support::respond(http.get(&url)).await {
        (StatusCode::OK, body) => Ok(body),
        (status, body) => Err(format!("{status}: {body}")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn six_services_started_at_once_on_a_fresh_database_all_come_up_and_serve() {
    let binaries = build_binaries(env!("CARGO_MANIFEST_DIR"), env!("CARGO_BIN_EXE_shop"));
    for round in 0..ROUNDS {
        println!("round {round}");
        six_at_once(&binaries).await;
    }
}

/// A `shop` on the data in `folder`, on ports of its own.
fn shop(folder: &Path) -> (binary::Running, [std::net::SocketAddr; 3]) {
    let addresses = [free_address(), free_address(), free_address()];
    let [commands, queries, admin] = addresses.map(|address| address.to_string());
    let store = format!("sqlite://{}", folder.join("events.db").display());
    let views = format!("sqlite://{}?mode=rwc", folder.join("views.db").display());
    let running = binary::start(
        env!("CARGO_BIN_EXE_shop"),
        &[],
        &[
            ("EVENT_STORE_URL", store.as_str()),
            ("VIEWS_DATABASE_URL", views.as_str()),
            ("COMMAND_API_ADDR", commands.as_str()),
            ("QUERY_API_ADDR", queries.as_str()),
            ("PROJECTORS_ADMIN_ADDR", admin.as_str()),
            ("ADMIN_USERNAME", ADMIN.0),
            ("ADMIN_PASSWORD", ADMIN.1),
        ],
    );
    (running, addresses)
}

/// Two `shop` processes at once on one folder: both become ready, and the
/// catalog holds the 100 sample products once.
async fn two_shops_at_once() {
    let folder = tempfile::tempdir().unwrap();
    let mut shops = [shop(folder.path()), shop(folder.path())];
    for (running, addresses) in &mut shops {
        for address in addresses.iter() {
            running.wait_until_ready(*address).await;
        }
    }
    let http = reqwest::Client::new();
    let queries = shops[1].1[1];
    test_support::wait_for("the 100 sample products in the views", || {
        let url = format!("http://{queries}/products?sku=SAMPLE-100");
        let http = http.clone();
        async move {
            let page = read(&http, url).await?;
            match page["items"].as_array().map(Vec::len) {
                Some(1) => Ok(()),
                _ => Err(format!("{page}")),
            }
        }
    })
    .await;
    let page = read(&http, format!("http://{queries}/products?limit=100&offset=100")).await;
    assert_eq!(page.unwrap()["items"], json!([]), "no more than 100 products");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_shops_started_at_once_on_one_folder_both_start_with_one_catalog() {
    for round in 0..ROUNDS {
        println!("round {round}");
        two_shops_at_once().await;
    }
}
