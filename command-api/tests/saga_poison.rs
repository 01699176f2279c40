//! An event the order saga cannot decode (a newer schema version, written
//! by a newer replica during a rolling deploy) is tried `POISON_ATTEMPTS`
//! times, then parked, and the saga goes on past it (issue #11, point 2):
//! over real HTTP against a command API with its saga on the embedded
//! store. Alone in its test binary: it reads the process's metrics.

// In tests an unwrap is an assertion with a backtrace.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use command_api::saga::CHECKPOINT_STREAM;
use event_store::{ExpectedRevision, Position, StreamName};
use reqwest::StatusCode;
use serde_json::Value;
use test_support::{App, new_event, order_stream_name, wait_for};

const ATTEMPTS: u32 = 3;

/// The value of the sample `series` (name and labels) on `/metrics`.
async fn metric(app: &App, series: &str) -> Option<f64> {
    let text = app.http.get(app.url("/metrics")).send().await.ok()?.text().await.ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
}

async fn ready(app: &App) -> (StatusCode, String) {
    let response = app.http.get(app.url("/health/ready")).send().await.unwrap();
    (response.status(), response.text().await.unwrap())
}

async fn get(app: &App, path: &str, token: Option<&str>) -> (StatusCode, Value) {
    let mut request = app.http.get(app.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    test_support::respond(request).await
}

/// `POST` without a body; the status, the content type and the body.
async fn post(app: &App, path: &str, token: Option<&str>) -> (StatusCode, String, Value) {
    let mut request = app.http.post(app.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|kind| kind.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let text = response.text().await.unwrap();
    (status, content_type, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn parked(app: &App, admin: &str) -> Vec<Value> {
    let (status, body) = get(app, "/saga/parked", Some(admin)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["parked"].as_array().unwrap().clone()
}

/// Up to where the saga's last checkpoint says it executed every command
/// (where it resumes stays before the unpaid orders).
async fn saved_checkpoint(app: &App) -> Option<Position> {
    let checkpoint = app
        .store
        .read_last(&StreamName::new(CHECKPOINT_STREAM).unwrap())
        .await
        .unwrap()?;
    let data: Value = serde_json::from_slice(&checkpoint.data).unwrap();
    data["handled"].as_str().map(|handled| handled.parse().unwrap())
}

/// A placement written by a newer build (schema version 2) of an order of
/// its own; its position and the order's id.
async fn newer_placement(app: &App) -> (Position, String) {
    let order_id = uuid::Uuid::now_v7().to_string();
    let event = new_event("OrderPlaced", 2, br#"{"orderId":"x","newField":true}"#.to_vec());
    let outcome = app
        .store
        .append(&order_stream_name(&order_id), ExpectedRevision::NoStream, vec![event])
        .await
        .unwrap();
    (outcome.position, order_id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_the_saga_cannot_read_is_parked_after_its_attempts_and_orders_flow_again() {
    let mut config = App::config();
    config.saga.poison_attempts = ATTEMPTS;
    config.saga.checkpoint_every = Duration::ZERO;
    let app = App::start_with(config).await;
    let admin = app.admin().await;
    let buyer = app.customer("buyer").await;
    let mug = app.product(&admin, "MUG-1", "12.50", 10).await;
    let (status, body) = app.order(&buyer, &[(&mug, 1)]).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(ready(&app).await.0, StatusCode::OK);

    let (poison, poisoned_order) = newer_placement(&app).await;
    // Not ready while the saga retries it...
    let stalled = wait_for("readiness reporting the saga stalled", || async {
        match ready(&app).await {
            (StatusCode::SERVICE_UNAVAILABLE, reason) => Ok(reason),
            other => Err(format!("it answers {other:?}")),
        }
    })
    .await;
    assert!(stalled.contains("saga") && stalled.contains("stalled"), "{stalled}");
    assert!(stalled.contains(&poison.to_string()), "{stalled}");

    // ...then parked, listed, and ready again.
    let listed = wait_for("the event parked", || async {
        match parked(&app, &admin).await.as_slice() {
            [one] => Ok(one.clone()),
            other => Err(format!("the list is {other:?}")),
        }
    })
    .await;
    assert_eq!(listed["subscriber"], "saga");
    assert_eq!(listed["position"], poison.to_string());
    assert_eq!(listed["stream"], format!("order-{poisoned_order}"));
    assert_eq!(listed["revision"], 0);
    assert_eq!(listed["eventType"], "OrderPlaced");
    assert_eq!(listed["orderId"], poisoned_order.as_str());
    assert_eq!(listed["attempts"], ATTEMPTS);
    assert!(
        listed["error"].as_str().unwrap().contains("schema version 2"),
        "{listed}"
    );
    assert!(
        listed["parkedBy"]
            .as_str()
            .unwrap()
            .contains(&std::process::id().to_string())
    );
    assert!(listed["parkedAt"].is_string());
    wait_for("readiness back to 200", || async {
        match ready(&app).await {
            (StatusCode::OK, _) => Ok(()),
            other => Err(format!("it answers {other:?}")),
        }
    })
    .await;

    // Later orders are decided again, and the checkpoint moves past it.
    let (status, body) = app.order(&buyer, &[(&mug, 2)]).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    wait_for("the checkpoint passing the parked event", || async {
        match saved_checkpoint(&app).await {
            Some(after) if after > poison => Ok(()),
            other => Err(format!("it is at {other:?}")),
        }
    })
    .await;
    assert_eq!(
        metric(&app, r#"parked_events_total{subscriber="saga"}"#).await,
        Some(1.0)
    );
    assert_eq!(metric(&app, r#"parked_events{subscriber="saga"}"#).await, Some(1.0));

    // A retry fails while this build still cannot read it: 409, one more
    // attempt recorded.
    let retry = format!("/saga/parked/{poison}/retry");
    let (status, content_type, problem) = post(&app, &retry, Some(&admin)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert_eq!(content_type, "application/problem+json");
    assert!(
        problem["detail"].as_str().unwrap().contains("schema version 2"),
        "{problem}"
    );
    let after_retry = parked(&app, &admin).await;
    assert_eq!(after_retry.len(), 1);
    assert_eq!(after_retry[0]["attempts"], ATTEMPTS + 1);

    // Only administrators; positions are tokens.
    let (status, _, _) = post(&app, &retry, Some(&buyer)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = post(&app, &retry, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(get(&app, "/saga/parked", Some(&buyer)).await.0, StatusCode::FORBIDDEN);
    // A segment that is no position names no parked event.
    let (status, content_type, problem) = post(&app, "/saga/parked/x/retry", Some(&admin)).await;
    assert_eq!(
        (status, content_type.as_str()),
        (StatusCode::NOT_FOUND, "application/problem+json"),
        "{problem}"
    );

    // A skip drops it for good.
    let skip = format!("/saga/parked/{poison}/skip");
    let (status, _, skipped) = post(&app, &skip, Some(&admin)).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{skipped}");
    assert!(parked(&app, &admin).await.is_empty());
    let (status, content_type, problem) = post(&app, &skip, Some(&admin)).await;
    assert_eq!(
        (status, content_type.as_str()),
        (StatusCode::NOT_FOUND, "application/problem+json"),
        "{problem}"
    );
    assert_eq!(post(&app, &retry, Some(&admin)).await.0, StatusCode::NOT_FOUND);
    assert_eq!(metric(&app, r#"parked_events{subscriber="saga"}"#).await, Some(0.0));
    assert_eq!(
        metric(&app, r#"parked_events_total{subscriber="saga"}"#).await,
        Some(1.0)
    );
    let (status, body) = app.order(&buyer, &[(&mug, 1)]).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(ready(&app).await.0, StatusCode::OK);
}
