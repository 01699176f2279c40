//! A request's W3C `traceparent` goes into the metadata of every event it
//! causes, beside its correlation id (`X-Request-Id`): the command's own
//! events and the saga's follow-ups. A header that is not valid is ignored.

// In tests an unwrap is an assertion with a backtrace.
#![allow(clippy::unwrap_used)]

use event_store::RecordedEvent;
use reqwest::StatusCode;
use serde_json::json;
use test_support::{App, respond, wait_for};
use uuid::Uuid;

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const OTHER_TRACE: &str = "0af7651916cd43dd8448eb211c80319c";

fn traceparent(trace: &str) -> String {
    format!("00-{trace}-00f067aa0ba902b7-01")
}

/// The types of the events correlated with `request_id`, with the trace id
/// each records.
fn correlated(log: &[RecordedEvent], request_id: Uuid) -> Vec<(String, Option<String>)> {
    log.iter()
        .filter(|event| event.metadata.correlation_id == request_id)
        .map(|event| {
            let trace = event.metadata.trace_id.map(|id| id.to_string());
            (event.event_type.clone(), trace)
        })
        .collect()
}

/// Waits until the log holds an event of `event_type` correlated with
/// `request_id` (the saga appends it after the answer); all of them.
async fn correlated_once_there(app: &App, request_id: Uuid, event_type: &str) -> Vec<(String, Option<String>)> {
    wait_for(&format!("a {event_type} correlated with {request_id}"), || async move {
        let events = correlated(&app.events().await, request_id);
        if events.iter().any(|(kind, _)| kind == event_type) {
            Ok(events)
        } else {
            Err(format!("{events:?}"))
        }
    })
    .await
}

fn types(events: &[(String, Option<String>)]) -> Vec<&str> {
    events.iter().map(|(kind, _)| kind.as_str()).collect()
}

fn traces(events: &[(String, Option<String>)]) -> Vec<Option<&str>> {
    events.iter().map(|(_, trace)| trace.as_deref()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_trace_id_follows_an_order_through_the_saga_and_its_cancellation() {
    let app = App::start().await;
    let admin = app.admin().await;
    let mug = app.product(&admin, "MUG-1", "12.50", 10).await;
    let alice = app.customer("alice").await;

    let placed_by = Uuid::now_v7();
    let request = app
        .order_request(&alice, &[(&mug, 2)])
        .header("X-Request-Id", placed_by.to_string())
        .header("traceparent", traceparent(TRACE));
    let (status, order) = respond(request).await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    assert_eq!(order["status"], "confirmed");
    let events = correlated(&app.events().await, placed_by);
    assert_eq!(types(&events), ["OrderPlaced", "StockReserved", "OrderConfirmed"]);
    assert_eq!(traces(&events), [Some(TRACE); 3], "{events:?}");

    let cancelled_by = Uuid::now_v7();
    let order_id = order["orderId"].as_str().unwrap();
    let cancel = app
        .http
        .post(app.url(&format!("/orders/{order_id}/cancel")))
        .bearer_auth(&alice)
        .json(&json!({"reason": "changed my mind"}))
        .header("X-Request-Id", cancelled_by.to_string())
        .header("traceparent", traceparent(OTHER_TRACE));
    let (status, cancelled) = respond(cancel).await;
    assert_eq!(status, StatusCode::OK, "{cancelled}");
    let events = correlated_once_there(&app, cancelled_by, "StockReleased").await;
    assert_eq!(types(&events), ["OrderCancelled", "StockReleased"]);
    assert_eq!(traces(&events), [Some(OTHER_TRACE); 2], "{events:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_valid_traceparent_events_record_no_trace() {
    let app = App::start().await;
    let admin = app.admin().await;
    let mug = app.product(&admin, "MUG-1", "12.50", 10).await;
    let alice = app.customer("alice").await;
    let cases = [
        ("no header", None),
        (
            "all-zero trace id",
            Some(traceparent("00000000000000000000000000000000")),
        ),
        ("not a traceparent", Some("a trace, please".to_owned())),
    ];
    for (name, header) in cases {
        let request_id = Uuid::now_v7();
        let mut request = app
            .order_request(&alice, &[(&mug, 1)])
            .header("X-Request-Id", request_id.to_string());
        if let Some(header) = header {
            request = request.header("traceparent", header);
        }
        let (status, order) = respond(request).await;
        assert_eq!(status, StatusCode::CREATED, "case {name}: {order}");
        let events = correlated(&app.events().await, request_id);
        assert_eq!(
            types(&events),
            ["OrderPlaced", "StockReserved", "OrderConfirmed"],
            "case {name}"
        );
        assert_eq!(traces(&events), [None; 3], "case {name}");
    }
}
