//! `POST /orders` waits for the saga's decision with at most
//! `ORDER_MAX_WAITERS` requests waiting at a time: past the cap an order
//! is answered 202 pending at once, as a wait that ran out answers, and
//! once the waiting ones are answered the next one waits again.
//!
//! Alone in its test binary: it reads the process's metrics, which every
//! server in the process shares.

// In tests an unwrap is an assertion with a backtrace.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;
use test_support::App;

/// How long an order waits: long enough that "at once" is far below it.
const WAIT: Duration = Duration::from_secs(3);

/// The value of the sample `series` (name and labels) on `/metrics`.
async fn metric(app: &App, series: &str) -> Option<f64> {
    let text = app.http.get(app.url("/metrics")).send().await.ok()?.text().await.ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
}

/// Places an order of `product` and times the answer.
async fn timed_order(app: &App, token: &str, product: &str) -> (StatusCode, Value, Duration) {
    let started = Instant::now();
    let (status, body) = app.order(token, &[(product, 1)]).await;
    (status, body, started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn past_the_cap_an_order_is_answered_pending_at_once_and_waits_again_once_places_free_up() {
    let mut config = App::config();
    // No saga: nothing decides, so every order waits its whole wait.
    config.run_saga = false;
    config.order_wait = WAIT;
    config.max_order_waiters = 2;
    let app = App::start_with(config).await;
    let admin = app.admin().await;
    let product = app.product(&admin, "CAP-1", "1.00", 100).await;
    let token = app.customer("capped").await;
    let waiting = r#"waiting_requests{wait="order-decision"}"#;
    let capped = r#"waits_capped_total{wait="order-decision"}"#;

    let park = || timed_order(&app, &token, &product);
    let past_the_cap = async {
        test_support::wait_for("two orders waiting for the saga", || async {
            match metric(&app, waiting).await {
                Some(2.0) => Ok(()),
                other => Err(format!("{waiting} is {other:?}")),
            }
        })
        .await;
        timed_order(&app, &token, &product).await
    };
    let (first, second, third) = tokio::join!(park(), park(), past_the_cap);

    let (status, body, took) = third;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["status"], "pending", "{body}");
    assert!(took < WAIT / 3, "past the cap it answered after {took:?}, not at once");
    assert_eq!(metric(&app, capped).await, Some(1.0));
    for (status, body, took) in [first, second] {
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        assert!(took >= WAIT, "a parked order waited only {took:?}");
    }
    assert_eq!(metric(&app, waiting).await, Some(0.0));
    let (status, body, took) = park().await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert!(took >= WAIT, "with places free an order waits again, not {took:?}");
    assert_eq!(metric(&app, capped).await, Some(1.0), "it was not capped");
}
