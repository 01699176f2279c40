//! The query API keeps the contract its spec publishes, black-box over a
//! real listening system: every parameter bound the spec states is the one
//! enforced (a value at each bound accepted, one past it refused with a
//! problem naming the parameter), and every path of the query and the
//! command API answers `OPTIONS`, `HEAD` and other methods as RFC 9110 says.

// In tests an unwrap is an assertion with a backtrace.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use test_support::methods;
use test_support::system::{Settings, System};

/// The system over SQLite views; a short read wait, as positions asked for
/// here are never reached.
async fn start() -> (System, tempfile::TempDir) {
    let (url, keep) = test_support::sqlite_views();
    let settings = Settings {
        read_wait: Duration::from_millis(50),
        ..Settings::default()
    };
    (test_support::system::start_with(&url, settings).await, keep)
}

/// The schema the served spec gives `parameter` of `GET path`.
async fn parameter_schema(system: &System, path: &str, parameter: &str) -> Value {
    let (_, spec) = system.query("/openapi.json", None).await;
    spec["paths"][path]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == parameter)
        .unwrap_or_else(|| panic!("{path} has no parameter {parameter}"))["schema"]
        .clone()
}

fn bound(number: &Value) -> i128 {
    number.as_f64().unwrap() as i128
}

async fn assert_accepted(system: &System, token: Option<&str>, path: &str) {
    let (status, body) = system.query(path, token).await;
    assert!(status.is_success(), "{path}: {status} {body}");
}

async fn assert_refused(system: &System, token: Option<&str>, path: &str, parameter: &str) {
    let (status, body) = system.query(path, token).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
    assert_eq!(body["field"], parameter, "{path}: {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn integer_parameters_take_the_bounds_the_spec_states_and_nothing_past_them() {
    let (system, _keep) = start().await;
    let (alice, _) = system.customer("alice").await;
    let admin = system.app.admin().await;
    let cases = [
        ("/products", "limit", &alice),
        ("/products", "offset", &alice),
        ("/me/orders", "limit", &alice),
        ("/orders", "limit", &admin),
        ("/users", "limit", &admin),
    ];
    for (path, parameter, token) in cases {
        let schema = parameter_schema(&system, path, parameter).await;
        let min = bound(&schema["minimum"]);
        let max = bound(&schema["maximum"]);
        for accepted in [min, max] {
            assert_accepted(&system, Some(token), &format!("{path}?{parameter}={accepted}")).await;
        }
        for refused in [min - 1, max + 1] {
            assert_refused(
                &system,
                Some(token),
                &format!("{path}?{parameter}={refused}"),
                parameter,
            )
            .await;
        }
        let far_below = format!("{path}?{parameter}={}", i64::MIN);
        assert_refused(&system, Some(token), &far_below, parameter).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn positions_cursors_and_skus_take_what_their_patterns_allow() {
    let (system, _keep) = start().await;
    let (alice, registered) = system.customer("alice").await;
    let alice = Some(alice.as_str());
    let position = parameter_schema(&system, "/products", "minPosition").await;
    assert_eq!(position["pattern"], "^[0-9]{1,19}(/[0-9]{1,19})?$");
    assert_accepted(&system, alice, &format!("/me?minPosition={registered}")).await;
    // The longest position the pattern allows parses: not reached, so 503.
    let longest = "9".repeat(19);
    let (status, body) = system
        .query(&format!("/products?minPosition={longest}/{longest}"), None)
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    for refused in ["", "1/", "+1", &format!("{longest}9")] {
        assert_refused(
            &system,
            None,
            &format!("/products?minPosition={refused}"),
            "minPosition",
        )
        .await;
    }
    let header = system
        .query_request("/products")
        .header("X-Min-Position", "x")
        .send()
        .await
        .unwrap();
    assert_eq!(header.status(), StatusCode::BAD_REQUEST);

    let cursor = format!("{}.999999999_{}", "9".repeat(11), "f".repeat(32));
    assert_accepted(&system, alice, &format!("/me/orders?cursor={cursor}")).await;
    assert_refused(&system, alice, &format!("/me/orders?cursor={cursor}0"), "cursor").await;
    assert_refused(&system, alice, "/me/orders?cursor=", "cursor").await;
    let admin = system.app.admin().await;
    let admin = Some(admin.as_str());
    assert_accepted(&system, admin, &format!("/orders?cursor={cursor}")).await;
    assert_refused(&system, admin, &format!("/orders?cursor={cursor}0"), "cursor").await;

    let sku = "A".repeat(64);
    assert_accepted(&system, None, &format!("/products?sku={sku}&cursor={sku}")).await;
    assert_refused(&system, None, &format!("/products?sku={sku}A"), "sku").await;
    assert_refused(&system, None, &format!("/products?cursor={sku}A"), "cursor").await;
    assert_refused(&system, None, "/products?sku=", "sku").await;
    assert_refused(&system, None, "/products/not-a-uuid", "id").await;
    assert_refused(&system, alice, "/orders/42", "id").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_path_of_both_apis_answers_options_head_and_other_methods_as_rfc_9110_says() {
    let (system, _keep) = start().await;
    for base in [&system.queries, &system.commands] {
        methods::every_path_answers_options_and_refuses_other_methods_with_allow(base).await;
        methods::an_unknown_path_is_not_found_for_any_method(base).await;
        for path in ["/openapi.json", "/health/live", "/docs"] {
            methods::head_answers_as_get_without_a_body(base, path).await;
        }
    }
    let unknown = format!("/products/{}", uuid::Uuid::new_v4());
    for path in ["/products", "/products?limit=0", unknown.as_str()] {
        methods::head_answers_as_get_without_a_body(&system.queries, path).await;
    }
}
