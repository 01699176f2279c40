//! The order saga across crashes and with two runners at once.

// In tests an unwrap is an assertion with a backtrace.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use command_api::aggregates::Aggregates;
use command_api::saga::{OrderSaga, SagaOptions, Stopped};
use reqwest::StatusCode;
use tokio_util::sync::CancellationToken;

fn saga(app: &support::App, crash_after_commands: Option<usize>) -> OrderSaga {
    let store = Arc::clone(&app.store);
    OrderSaga::new(
        Arc::clone(&store),
        Arc::new(Aggregates::new(Arc::clone(&store))),
        Arc::new(Aggregates::new(store)),
        SagaOptions {
            crash_after_commands,
            checkpoint_every: Duration::ZERO,
            ..SagaOptions::default()
        },
    )
}

/// An app whose own saga does not run, so tests drive sagas by hand.
async fn app_without_saga() -> support::App {
    let mut config = support::config();
    config.run_saga = false;
    config.order_wait = Duration::from_millis(100);
    support::start_with(config).await
}

/// How often each event type names each (product, order) pair.
async fn reservation_counts(app: &support::App) -> HashMap<(String, String), usize> {
    let mut counts = HashMap::new();
    for event in app.events().await {
        if event.event_type.starts_with("Stock") {
            let data: serde_json::Value = serde_json::from_slice(&event.data).unwrap();
            let key = (
                event.event_type.clone(),
                format!("{}/{}", data["productId"], data["orderId"]),
            );
            *counts.entry(key).or_default() += 1;
        }
    }
    counts
}

async fn order_status(app: &support::App, order_id: &str) -> String {
    let stream = event_store::StreamName::new(format!("order-{order_id}")).unwrap();
    let last = app.store.read_last(&stream).await.unwrap().unwrap();
    last.event_type
}

async fn wait_for_status(app: &support::App, order_id: &str, wanted: &str) {
    support::wait_for(
        &format!("order {order_id} reaching {wanted}"),
        async || match order_status(app, order_id).await {
            status if status == wanted => Ok(()),
            status => Err(format!("its last event is {status}")),
        },
    )
    .await;
}

/// Waits for the order's last event to be its final one: confirmed or
/// rejected.
async fn wait_until_decided(app: &support::App, order_id: &str) {
    support::wait_for(
        &format!("a decision on order {order_id}"),
        async || match order_status(app, order_id).await {
            status if status == "OrderConfirmed" || status == "OrderRejected" => Ok(()),
            status => Err(format!("its last event is {status}")),
        },
    )
    .await;
}

/// Waits until the saga's checkpoint is at or past the last event of the
/// order's stream: the saga has read its own confirmation back and counts
/// the order finished. Before that, a stop saves a checkpoint before the
/// order, and a restart rightly replays it.
async fn wait_for_checkpoint_past(app: &support::App, order_id: &str) {
    let order = event_store::StreamName::new(format!("order-{order_id}")).unwrap();
    let last = app.store.read_last(&order).await.unwrap().unwrap().position;
    let checkpoints = event_store::StreamName::new("checkpoint-order-saga").unwrap();
    support::wait_for(
        &format!("the saga's checkpoint passing order {order_id}'s last event at {last}"),
        async || {
            let saved = match app.store.read_last(&checkpoints).await.unwrap() {
                Some(checkpoint) => serde_json::from_slice::<serde_json::Value>(&checkpoint.data).unwrap()["after"]
                    .as_str()
                    .map(|after| after.parse::<event_store::Position>().unwrap()),
                None => None,
            };
            match saved {
                Some(after) if after >= last => Ok(()),
                other => Err(format!("it is at {other:?}")),
            }
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saga_that_crashed_between_two_reservations_confirms_after_restart() {
    let app = app_without_saga().await;
    let admin = app.admin().await;
    let alice = app.customer("alice").await;
    let mug = app.product(&admin, "MUG-1", "12.50", 10).await;
    let pen = app.product(&admin, "PEN-1", "2.00", 10).await;
    let (status, pending) = app.order(&alice, &[(&mug, 2), (&pen, 3)]).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{pending}");
    let order_id = pending["orderId"].as_str().unwrap().to_owned();

    let stopped = saga(&app, Some(1)).run(CancellationToken::new()).await.unwrap();
    assert_eq!(stopped, Stopped::Crashed);
    let reserved: usize = reservation_counts(&app)
        .await
        .iter()
        .filter(|((kind, _), _)| kind == "StockReserved")
        .map(|(_, n)| n)
        .sum();
    assert_eq!(reserved, 1, "the crash came between the two reservations");
    assert_eq!(order_status(&app, &order_id).await, "OrderPlaced");

    let shutdown = CancellationToken::new();
    let restarted = saga(&app, None);
    let running = {
        let shutdown = shutdown.clone();
        tokio::spawn(async move { restarted.run(shutdown).await })
    };
    wait_for_status(&app, &order_id, "OrderConfirmed").await;
    shutdown.cancel();
    assert_eq!(running.await.unwrap().unwrap(), Stopped::Shutdown);

    assert_eq!(support::available(&app, &mug).await, 8);
    assert_eq!(support::available(&app, &pen).await, 7);
    assert!(
        reservation_counts(&app).await.values().all(|n| *n == 1),
        "nothing applied twice"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saga_that_crashed_mid_order_rejects_after_restart_and_releases_what_it_held() {
    let app = app_without_saga().await;
    let admin = app.admin().await;
    let bob = app.customer("bob").await;
    let mug = app.product(&admin, "MUG-1", "12.50", 10).await;
    let rare = app.product(&admin, "RARE-1", "99.00", 1).await;
    let (status, pending) = app.order(&bob, &[(&mug, 2), (&rare, 5)]).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{pending}");
    let order_id = pending["orderId"].as_str().unwrap().to_owned();

    assert_eq!(
        saga(&app, Some(1)).run(CancellationToken::new()).await.unwrap(),
        Stopped::Crashed
    );
    assert_eq!(
        support::available(&app, &mug).await,
        8,
        "the first line was reserved before the crash"
    );

    let shutdown = CancellationToken::new();
    let restarted = saga(&app, None);
    let running = {
        let shutdown = shutdown.clone();
        tokio::spawn(async move { restarted.run(shutdown).await })
    };
    wait_for_status(&app, &order_id, "OrderRejected").await;
    support::assert_stock_balances(&app).await;
    shutdown.cancel();
    running.await.unwrap().unwrap();
    assert_eq!(support::available(&app, &mug).await, 10, "released after the rejection");
    assert_eq!(support::available(&app, &rare).await, 1);
    assert!(
        reservation_counts(&app).await.values().all(|n| *n == 1),
        "nothing applied twice"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_saga_resumes_from_its_checkpoint_not_from_the_start() {
    let app = app_without_saga().await;
    let admin = app.admin().await;
    let carol = app.customer("carol").await;
    let mug = app.product(&admin, "MUG-1", "12.50", 10).await;
    let (_, first) = app.order(&carol, &[(&mug, 1)]).await;
    let first_id = first["orderId"].as_str().unwrap().to_owned();

    let shutdown = CancellationToken::new();
    let runner = saga(&app, None);
    let running = {
        let shutdown = shutdown.clone();
        tokio::spawn(async move { runner.run(shutdown).await })
    };
    wait_for_status(&app, &first_id, "OrderConfirmed").await;
    wait_for_checkpoint_past(&app, &first_id).await;
    shutdown.cancel();
    running.await.unwrap().unwrap();

    let (_, second) = app.order(&carol, &[(&mug, 2)]).await;
    let second_id = second["orderId"].as_str().unwrap().to_owned();
    // A runner that may execute only the second order's two commands
    // (reserve, confirm) finishes it: it did not replay the first order.
    let shutdown = CancellationToken::new();
    let runner = saga(&app, Some(2));
    let running = {
        let shutdown = shutdown.clone();
        tokio::spawn(async move { runner.run(shutdown).await })
    };
    wait_for_status(&app, &second_id, "OrderConfirmed").await;
    shutdown.cancel();
    running.await.unwrap().unwrap();
    assert_eq!(support::available(&app, &mug).await, 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sagas_at_once_apply_everything_once() {
    let app = Arc::new(app_without_saga().await);
    let admin = app.admin().await;
    let mut products = Vec::new();
    for n in 0..3 {
        products.push(app.product(&admin, &format!("SKU-{n}"), "5.00", 20).await);
    }
    let shutdown = CancellationToken::new();
    let runners: Vec<_> = (0..2)
        .map(|_| {
            let runner = saga(&app, None);
            let shutdown = shutdown.clone();
            tokio::spawn(async move { runner.run(shutdown).await })
        })
        .collect();
    let buyers = (0..8).map(|n| {
        let app = Arc::clone(&app);
        let products = products.clone();
        tokio::spawn(async move {
            let token = app.customer(&format!("buyer{n}")).await;
            let mut ids = Vec::new();
            for k in 0..3 {
                let items = [
                    (products[(n + k) % 3].as_str(), 3),
                    (products[(n + k + 1) % 3].as_str(), 2),
                ];
                let (_, body) = app.order(&token, &items).await;
                ids.push(body["orderId"].as_str().unwrap().to_owned());
            }
            ids
        })
    });
    let mut orders = Vec::new();
    for buyer in futures::future::join_all(buyers).await {
        orders.extend(buyer.unwrap());
    }
    for order_id in &orders {
        wait_until_decided(&app, order_id).await;
    }
    support::assert_stock_balances(&app).await;
    shutdown.cancel();
    for runner in runners {
        runner.await.unwrap().unwrap();
    }
    let counts = reservation_counts(&app).await;
    assert!(
        counts.values().all(|n| *n == 1),
        "an order is answered once per product: {counts:?}"
    );
    for order_id in &orders {
        let status = order_status(&app, order_id).await;
        assert!(
            status == "OrderConfirmed" || status == "OrderRejected",
            "{order_id} is {status}"
        );
    }
}
