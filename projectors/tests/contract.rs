//! The admin API keeps the contract its spec publishes, black-box over a
//! real listening server: every path answers `OPTIONS`, `HEAD` and other
//! methods as RFC 9110 says, and a replay answers the statuses its spec
//! documents (202, 401, 403, 404 for a name outside the spec's enum).

// In tests an unwrap is an assertion with a backtrace.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use api_common::verifier::Verifier;
use projectors::admin::{AdminApi, Projectors};
use reqwest::StatusCode;
use serde_json::Value;
use test_support::{App, methods};
use tokio_util::sync::CancellationToken;

struct Admin {
    app: App,
    base: String,
    _api: AdminApi,
    shutdown: CancellationToken,
    _folder: tempfile::TempDir,
}

impl Drop for Admin {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn start() -> Admin {
    let (url, folder) = test_support::sqlite_views();
    start_on(&url, folder).await
}

/// The admin API over the views at `url`; `folder` lives as long as it.
async fn start_on(url: &str, folder: tempfile::TempDir) -> Admin {
    let app = App::start().await;
    let db = projectors::database::connect_and_migrate(url, 4).await.unwrap();
    let shutdown = CancellationToken::new();
    let projectors = Projectors {
        store: Arc::clone(&app.store),
        db,
        operations: Default::default(),
        instance: Default::default(),
    };
    let verifier = Verifier::from_pem(app.public_key_pem(), "shop".to_owned(), "shop".to_owned()).unwrap();
    let limits = api_common::http_limits::HttpLimits::default();
    let api = projectors::admin::start(
        projectors,
        verifier,
        ([127, 0, 0, 1], 0).into(),
        limits,
        shutdown.clone(),
    )
    .await
    .unwrap();
    Admin {
        base: format!("http://{}", api.address),
        app,
        _api: api,
        shutdown,
        _folder: folder,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_path_answers_options_head_and_other_methods_as_rfc_9110_says() {
    let admin = start().await;
    methods::every_path_answers_options_and_refuses_other_methods_with_allow(&admin.base).await;
    methods::an_unknown_path_is_not_found_for_any_method(&admin.base).await;
    for path in ["/projections", "/openapi.json", "/health/live", "/docs"] {
        methods::head_answers_as_get_without_a_body(&admin.base, path).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_answers_the_statuses_its_spec_documents() {
    let admin = start().await;
    let http = reqwest::Client::new();
    let spec: Value = http
        .get(format!("{}/openapi.json", admin.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let operation = &spec["paths"]["/projections/{name}/replay"]["post"];
    let documented: Vec<&str> = operation["responses"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let names = operation["parameters"][0]["schema"]["enum"].as_array().unwrap().clone();
    assert_eq!(names.len(), projectors::all().len(), "{names:?}");

    let replay = |name: &str, token: Option<String>| {
        let request = http.post(format!("{}/projections/{name}/replay", admin.base));
        let request = match token {
            Some(token) => request.bearer_auth(token),
            None => request,
        };
        async move { request.send().await.unwrap().status() }
    };
    let admin_token = admin.app.admin().await;
    let customer = admin.app.customer("alice").await;
    let name = names[0].as_str().unwrap();
    let answers = [
        (replay(name, None).await, StatusCode::UNAUTHORIZED),
        (replay(name, Some(customer)).await, StatusCode::FORBIDDEN),
        (replay("nope", Some(admin_token.clone())).await, StatusCode::NOT_FOUND),
        (replay(name, Some(admin_token)).await, StatusCode::ACCEPTED),
    ];
    for (status, expected) in answers {
        assert_eq!(status, expected);
        assert!(
            documented.contains(&status.as_str()),
            "{status} is not in {documented:?}"
        );
    }
}

/// With its views database gone, the admin API cannot read a token's
/// credential version: a replay answers the documented 503 with
/// `Retry-After`, not 401 (the token may be fine) nor 500.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_without_its_views_database_answers_503_with_retry_after() {
    let server = test_support::postgres::database_url("postgres");
    let views = test_support::postgres::Scratch::create(&server, "shop_outage").await;
    let admin = start_on(&views.url, tempfile::tempdir().unwrap()).await;
    let token = admin.app.admin().await;
    views.remove().await;
    let response = reqwest::Client::new()
        .post(format!("{}/projections/catalog/replay", admin.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["retry-after"], "1");
    assert_eq!(response.headers()["content-type"], "application/problem+json");
    let spec: Value = serde_json::from_str(&projectors::admin::spec()).unwrap();
    let documented = &spec["paths"]["/projections/{name}/replay"]["post"]["responses"]["503"];
    assert!(documented.is_object(), "503 is documented");
}
