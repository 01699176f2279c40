//! The saga's payment window and per-customer limit (#12), on the embedded
//! store: a confirmed order not paid in time is cancelled and its stock
//! released once, also across a restart and with two sagas at once; a
//! customer with `MAX_UNSETTLED_ORDERS` orders waiting has the next refused,
//! and that count survives a restart. The command API runs no saga of its
//! own and answers every order `202` at once: the tests run the sagas.

// In tests an unwrap is an assertion with a backtrace.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeDelta, Utc};
use command_api::aggregates::{Aggregates, Causation};
use command_api::saga::{OrderSaga, SagaError, SagaOptions};
use domain::event::DomainEvent;
use domain::order::{Order, OrderCommand, OrderEvent, OrderState, OrderStatus, PaymentReference, ReservedLine};
use domain::product::{Product, ProductCommand, ProductEvent};
use event_store::EventStore;
use reqwest::StatusCode;
use test_support::{App, FaultyStore, order_stream_name, wait_for};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// A running saga: cancel the token to stop it.
struct Running {
    shutdown: CancellationToken,
    task: JoinHandle<Result<(), SagaError>>,
}

impl Running {
    /// Stops it and waits until it has saved its checkpoint.
    async fn stop(self) {
        self.shutdown.cancel();
        self.task.await.unwrap().unwrap();
    }
}

/// A saga over `store` with this payment window and limit, saving its
/// checkpoint after every batch.
fn start_saga(store: Arc<dyn EventStore>, window: TimeDelta, max_unsettled: u32) -> Running {
    let saga = OrderSaga::new(
        Arc::clone(&store),
        Arc::new(Aggregates::new(Arc::clone(&store))),
        Arc::new(Aggregates::new(store)),
        SagaOptions {
            checkpoint_every: Duration::ZERO,
            payment_window: window,
            max_unsettled,
            ..SagaOptions::default()
        },
    );
    let shutdown = CancellationToken::new();
    let task = tokio::spawn({
        let shutdown = shutdown.clone();
        async move { saga.run(shutdown).await }
    });
    Running { shutdown, task }
}

const LONG: TimeDelta = TimeDelta::hours(1);

async fn app_without_saga() -> App {
    let mut config = App::config();
    config.run_saga = false;
    config.max_order_waiters = 0;
    App::start_with(config).await
}

/// Places `items` for `token` and returns the order's id. The app's
/// requests do not wait for the saga (`app_without_saga`), but the saga the
/// test runs may have decided before the answer is written: confirmed or
/// rejected answers name the order too. (A refusal for the limit names no
/// order: place those while no saga runs.)
async fn place(app: &App, token: &str, items: &[(&str, i64)]) -> String {
    let (status, body) = app.order(token, items).await;
    let answered = [StatusCode::ACCEPTED, StatusCode::CREATED, StatusCode::CONFLICT];
    assert!(answered.contains(&status), "{status}: {body}");
    let order_id = body["orderId"].as_str();
    order_id
        .unwrap_or_else(|| panic!("{status} names no order: {body}"))
        .to_owned()
}

/// Waits until the order is decided, and says how.
async fn decided(app: &App, order_id: &str) -> OrderStatus {
    wait_for(&format!("a decision on order {order_id}"), || async move {
        match app.order_status(order_id).await {
            OrderStatus::Pending => Err("it is pending".to_owned()),
            found => Ok(found),
        }
    })
    .await
}

/// Waits until the saga expired the order: cancelled, for that reason.
async fn wait_until_expired(app: &App, order_id: &str) {
    app.wait_for_status(order_id, OrderStatus::Cancelled).await;
    let OrderState::Cancelled { reason, payment, .. } = app.order_state(order_id).await else {
        unreachable!("cancelled")
    };
    assert_eq!(reason, domain::order::payment_window_expired());
    assert_eq!(payment, None);
}

/// When the order's payment is due, as its confirmation recorded.
async fn due(app: &App, order_id: &str) -> chrono::DateTime<Utc> {
    let state = app.order_state(order_id).await;
    state
        .confirmed()
        .unwrap()
        .payment_due
        .expect("the confirmation records the due time")
}

async fn wait_until_past(due: chrono::DateTime<Utc>) {
    wait_for(&format!("the clock passing {due}"), || async move {
        if Utc::now() > due {
            Ok(())
        } else {
            Err(format!("it is {}", Utc::now()))
        }
    })
    .await;
}

/// Pays the order's total, as a payment provider would.
async fn settle(app: &App, order_id: &str) {
    let orders = Aggregates::<Order>::new(Arc::clone(&app.store));
    let total = app.order_state(order_id).await.confirmed().unwrap().total;
    let causation = Causation::request(Uuid::now_v7(), None);
    let reference = PaymentReference::parse(&format!("pi_{}", Uuid::now_v7().simple())).unwrap();
    let settle = || OrderCommand::Settle {
        reference: reference.clone(),
        amount: total,
        now: Utc::now(),
    };
    orders.execute(order_id, causation, settle).await.unwrap();
}

/// Does the saga's work for a pending order by hand: reserves every line
/// and confirms the order with its payment due at `due`. The saga that
/// reads it later decides nothing again (a product answers an order once,
/// an order is confirmed once).
async fn confirm_by_hand(app: &App, order_id: &str, due: chrono::DateTime<Utc>) {
    let products = Aggregates::<Product>::new(Arc::clone(&app.store));
    let orders = Aggregates::<Order>::new(Arc::clone(&app.store));
    let placed = app.order_state(order_id).await.placed().unwrap().clone();
    let causation = Causation::request(Uuid::now_v7(), None);
    let mut lines = Vec::new();
    for line in placed.lines.as_slice() {
        let reserve = || ProductCommand::Reserve {
            order_id: placed.order_id,
            quantity: line.quantity,
            now: Utc::now(),
        };
        let decided = products.execute(line.product_id, causation, reserve).await.unwrap();
        let [
            ProductEvent::StockReserved {
                product_id,
                quantity,
                unit_price,
                sku,
                name,
                ..
            },
        ] = &decided.events[..]
        else {
            panic!("reserved: {:?}", decided.events)
        };
        lines.push(ReservedLine {
            product_id: *product_id,
            sku: sku.clone(),
            name: name.clone(),
            quantity: *quantity,
            unit_price: *unit_price,
        });
    }
    let confirm = || OrderCommand::Confirm {
        lines: lines.clone(),
        now: Utc::now(),
        payment_due: due,
    };
    orders.execute(order_id, causation, confirm).await.unwrap();
}

/// How many times each order event type and product answer appears per
/// order: keyed by (event type, order id).
async fn counts(app: &App) -> HashMap<(String, String), usize> {
    let mut counts = HashMap::new();
    for recorded in app.events().await {
        let data = (
            &recorded.event_type,
            recorded.metadata.schema_version,
            &recorded.data[..],
        );
        let order_id = if OrderEvent::id_in_stream(&recorded.stream).is_some() {
            OrderEvent::decode(data.0, data.1, data.2).unwrap().order_id()
        } else if ProductEvent::id_in_stream(&recorded.stream).is_some() {
            match ProductEvent::decode(data.0, data.1, data.2).unwrap() {
                ProductEvent::StockReserved { order_id, .. } | ProductEvent::StockReleased { order_id, .. } => order_id,
                _ => continue,
            }
        } else {
            continue;
        };
        *counts
            .entry((recorded.event_type.clone(), order_id.to_string()))
            .or_default() += 1;
    }
    counts
}

fn count(counts: &HashMap<(String, String), usize>, event_type: &str, order_id: &str) -> usize {
    counts
        .get(&(event_type.to_owned(), order_id.to_owned()))
        .copied()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unpaid_order_expires_and_its_stock_comes_back_once() {
    let app = app_without_saga().await;
    let admin = app.admin().await;
    let buyer = app.customer("buyer").await;
    let mug = app.product(&admin, "MUG-1", "12.50", 10).await;
    let pen = app.product(&admin, "PEN-1", "2.00", 10).await;
    let saga = start_saga(Arc::clone(&app.store), TimeDelta::seconds(1), 5);
    let order_id = place(&app, &buyer, &[(&mug, 2), (&pen, 3)]).await;

    wait_until_expired(&app, &order_id).await;
    app.assert_stock_balances().await;
    saga.stop().await;
    assert_eq!((app.available(&mug).await, app.available(&pen).await), (10, 10));
    let counts = counts(&app).await;
    assert_eq!(count(&counts, "OrderCancelled", &order_id), 1);
    assert_eq!(count(&counts, "StockReleased", &order_id), 2, "one per line");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_paid_before_the_saga_finds_it_due_never_expires() {
    let app = app_without_saga().await;
    let admin = app.admin().await;
    let buyer = app.customer("buyer").await;
    let mug = app.product(&admin, "MUG-1", "12.50", 10).await;
    // Confirmed due at once and paid at once, before any saga runs: the
    // payment is in the log before a saga could find the order due.
    let paid = place(&app, &buyer, &[(&mug, 1)]).await;
    confirm_by_hand(&app, &paid, Utc::now()).await;
    settle(&app, &paid).await;

    let saga = start_saga(Arc::clone(&app.store), TimeDelta::seconds(1), 5);
    let unpaid = place(&app, &buyer, &[(&mug, 2)]).await;
    wait_until_expired(&app, &unpaid).await;
    assert!(due(&app, &unpaid).await > due(&app, &paid).await);
    app.assert_stock_balances().await;
    saga.stop().await;
    let state = app.order_state(&paid).await;
    assert!(matches!(state, OrderState::Settled { .. }), "{state:?}");
    assert_eq!(app.available(&mug).await, 9, "the paid order keeps its stock");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deadline_survives_a_restart() {
    let app = app_without_saga().await;
    let admin = app.admin().await;
    let buyer = app.customer("buyer").await;
    let mug = app.product(&admin, "MUG-1", "12.50", 10).await;
    let order_id = place(&app, &buyer, &[(&mug, 4)]).await;
    confirm_by_hand(&app, &order_id, Utc::now() + TimeDelta::seconds(2)).await;
    let confirmed_at = app.head().await;

    // The first saga reads the confirmation but can never cancel the order:
    // stopped in time, or dead at its expiry (a crash) once it is due.
    let first = Arc::new(FaultyStore::new(Arc::clone(&app.store)));
    first.fail_appends_to(order_stream_name(&order_id));
    let saga = start_saga(first.clone(), TimeDelta::seconds(2), 5);
    wait_for("the first saga's checkpoint past the confirmation", || async {
        match handled(&app).await {
            Some(handled) if handled >= confirmed_at => Ok(()),
            other => Err(format!("handled up to {other:?}")),
        }
    })
    .await;
    saga.shutdown.cancel();
    let stopped = saga.task.await.unwrap();
    assert!(matches!(stopped, Ok(()) | Err(SagaError::Command(_))), "{stopped:?}");
    wait_until_past(due(&app, &order_id).await).await;
    assert_eq!(
        app.order_status(&order_id).await,
        OrderStatus::Confirmed,
        "no saga cancelled it"
    );

    let saga = start_saga(Arc::clone(&app.store), TimeDelta::seconds(2), 5);
    wait_until_expired(&app, &order_id).await;
    app.assert_stock_balances().await;
    saga.stop().await;
    assert_eq!(app.available(&mug).await, 10);
    let counts = counts(&app).await;
    assert_eq!(count(&counts, "OrderCancelled", &order_id), 1);
    assert_eq!(count(&counts, "StockReleased", &order_id), 1);
}

/// Up to where the saga's last checkpoint says every command was executed.
async fn handled(app: &App) -> Option<event_store::Position> {
    let stream = event_store::StreamName::new(command_api::saga::CHECKPOINT_STREAM).unwrap();
    let checkpoint = app.store.read_last(&stream).await.unwrap()?;
    let data: serde_json::Value = serde_json::from_slice(&checkpoint.data).unwrap();
    data["handled"].as_str().map(|handled| handled.parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_saga_executes_no_command_it_executed_before() {
    let app = app_without_saga().await;
    let admin = app.admin().await;
    let buyer = app.customer("buyer").await;
    let mug = app.product(&admin, "MUG-1", "12.50", 100).await;
    let saga = start_saga(Arc::clone(&app.store), LONG, 5);
    let mut earlier = Vec::new();
    for quantity in 1..=3 {
        earlier.push(place(&app, &buyer, &[(&mug, quantity)]).await);
    }
    for order_id in &earlier {
        app.wait_for_status(order_id, OrderStatus::Confirmed).await;
    }
    saga.stop().await;

    // The three unpaid orders pin where it resumes: before the first one.
    let store = Arc::new(FaultyStore::new(Arc::clone(&app.store)));
    let saga = start_saga(store.clone(), LONG, 5);
    let pen = app.product(&admin, "PEN-1", "2.00", 10).await;
    let later = place(&app, &app.customer("other").await, &[(&pen, 1)]).await;
    app.wait_for_status(&later, OrderStatus::Confirmed).await;
    saga.stop().await;

    let own = |stream: &str| stream.starts_with("checkpoint-") || stream.starts_with("saga-");
    let read: Vec<_> = store.streams_read().into_iter().filter(|s| !own(s)).collect();
    let mug_stream = test_support::product_stream_name(&mug).to_string();
    for order_id in &earlier {
        let order_stream = test_support::order_stream_name(order_id).to_string();
        assert!(!read.contains(&order_stream), "{order_stream} read again: {read:?}");
    }
    assert!(!read.contains(&mug_stream), "the mug read again: {read:?}");
    assert!(!read.is_empty(), "the later order was decided: {read:?}");
}

/// A product found missing is recorded in no event: a restart that
/// executes nothing up to its checkpoint asks again for the lines its
/// orders still wait for, so the order is decided.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_saga_still_hears_of_a_missing_product_it_found_before_its_checkpoint() {
    let app = app_without_saga().await;
    let admin = app.admin().await;
    let buyer = app.customer("buyer").await;
    let pen = app.product(&admin, "PEN-1", "2.00", 10).await;
    let ghost = Uuid::new_v4().to_string();
    let order_id = place(&app, &buyer, &[(&ghost, 1), (&pen, 3)]).await;

    // It finds the ghost missing and reserves the pen, saves its
    // checkpoint past the placement, then dies rejecting the order.
    let first = Arc::new(FaultyStore::new(Arc::clone(&app.store)));
    first.fail_appends_to(order_stream_name(&order_id));
    let stopped = start_saga(first.clone(), LONG, 5).task.await.unwrap();
    assert!(matches!(stopped, Err(SagaError::Command(_))), "{stopped:?}");
    assert!(first.failed_appends() > 0);
    assert_eq!(app.available(&pen).await, 7);
    let placed_at = app.order_stream(&order_id).await[0].position;
    assert!(handled(&app).await.is_some_and(|handled| handled >= placed_at));

    let saga = start_saga(Arc::clone(&app.store), LONG, 5);
    app.wait_for_status(&order_id, OrderStatus::Rejected).await;
    app.assert_stock_balances().await;
    saga.stop().await;
    assert_eq!(app.available(&pen).await, 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sagas_at_once_expire_each_order_once() {
    let app = app_without_saga().await;
    let admin = app.admin().await;
    let mug = app.product(&admin, "MUG-1", "12.50", 100).await;
    let pen = app.product(&admin, "PEN-1", "2.00", 100).await;
    let sagas: Vec<_> = (0..2)
        .map(|_| start_saga(Arc::clone(&app.store), TimeDelta::seconds(1), 5))
        .collect();
    let mut orders = Vec::new();
    for n in 0..3 {
        let token = app.customer(&format!("buyer{n}")).await;
        for quantity in 1..=3 {
            orders.push(place(&app, &token, &[(&mug, quantity), (&pen, n + 1)]).await);
        }
    }
    for order_id in &orders {
        wait_until_expired(&app, order_id).await;
    }
    app.assert_stock_balances().await;
    for saga in sagas {
        saga.stop().await;
    }
    assert_eq!((app.available(&mug).await, app.available(&pen).await), (100, 100));
    let counts = counts(&app).await;
    for order_id in &orders {
        assert_eq!(count(&counts, "OrderCancelled", order_id), 1, "{order_id}");
        assert_eq!(count(&counts, "StockReleased", order_id), 2, "{order_id}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_past_the_limit_is_refused_until_an_order_is_paid_also_after_a_restart() {
    let app = app_without_saga().await;
    let admin = app.admin().await;
    let buyer = app.customer("buyer").await;
    let mug = app.product(&admin, "MUG-1", "12.50", 100).await;
    // Placed before the saga runs, so every request is answered 202 with
    // the order's id, whatever the saga then decides.
    let items = [(mug.as_str(), 1)];
    let placing = (0..10).map(|_| place(&app, &buyer, &items));
    let orders = futures::future::join_all(placing).await;
    let saga = start_saga(Arc::clone(&app.store), LONG, 5);
    let (mut confirmed, mut refused) = (Vec::new(), Vec::new());
    for order_id in orders {
        match decided(&app, &order_id).await {
            OrderStatus::Confirmed => confirmed.push(order_id),
            _ => refused.push(order_id),
        }
    }
    assert_eq!((confirmed.len(), refused.len()), (5, 5));
    let counts = counts(&app).await;
    for order_id in &refused {
        let state = app.order_state(order_id).await;
        assert!(matches!(state, OrderState::Refused { .. }), "{state:?}");
        assert_eq!(
            count(&counts, "StockReserved", order_id),
            0,
            "{order_id} reserved nothing"
        );
    }
    assert_eq!(app.available(&mug).await, 95);

    settle(&app, &confirmed[0]).await;
    let next = place(&app, &buyer, &[(&mug, 1)]).await;
    assert_eq!(
        decided(&app, &next).await,
        OrderStatus::Confirmed,
        "a paid order frees a place"
    );
    saga.stop().await;

    let over = place(&app, &buyer, &[(&mug, 1)]).await;
    let saga = start_saga(Arc::clone(&app.store), LONG, 5);
    assert_eq!(decided(&app, &over).await, OrderStatus::Rejected, "the count survived");
    let state = app.order_state(&over).await;
    assert!(matches!(state, OrderState::Refused { .. }), "{state:?}");
    saga.stop().await;
    assert_eq!(app.available(&mug).await, 94);
}

/// An order of one `product_id` confirmed by an older build, `ago` before
/// now, with no due time recorded, and that build's saga checkpoint past
/// it, without the `handled` position newer builds record.
async fn confirmed_by_an_older_build(app: &App, product_id: &str, ago: TimeDelta) -> String {
    use domain::order::{Customer, OrderLines, PlaceOrder, PlacedOrder, PricedLine, ShippingAddress};
    let order_id = domain::ids::OrderId::from_uuid(Uuid::now_v7());
    let product_id: domain::ids::ProductId = product_id.parse().unwrap();
    let at = Utc::now() - ago;
    let causation = Causation::request(Uuid::now_v7(), None);
    let placed = PlacedOrder {
        order_id,
        customer_id: domain::ids::UserId::from_uuid(Uuid::now_v7()),
        lines: OrderLines::parse(&[(product_id, 1)]).unwrap(),
        customer: Customer::parse(None, None, "0812345678").unwrap(),
        shipping: ShippingAddress::parse("1 Main St", "Bangkok", "Bangkok", "Thailand", "10110").unwrap(),
    };
    let orders = Aggregates::<Order>::new(Arc::clone(&app.store));
    let place = || {
        OrderCommand::Place(PlaceOrder {
            order: placed.clone(),
            now: at,
        })
    };
    orders.execute(order_id, causation, place).await.unwrap();
    let products = Aggregates::<Product>::new(Arc::clone(&app.store));
    let reserve = || ProductCommand::Reserve {
        order_id,
        quantity: placed.lines.as_slice()[0].quantity,
        now: at,
    };
    let reserved = products.execute(product_id, causation, reserve).await.unwrap();
    let [
        ProductEvent::StockReserved {
            sku,
            name,
            quantity,
            unit_price,
            ..
        },
    ] = &reserved.events[..]
    else {
        panic!("reserved: {:?}", reserved.events)
    };
    let line = PricedLine {
        product_id,
        sku: sku.clone(),
        name: name.clone(),
        quantity: *quantity,
        unit_price: *unit_price,
        line_total: unit_price.money(),
    };
    let confirmed = OrderEvent::Confirmed {
        order_id,
        customer_id: placed.customer_id,
        lines: vec![line],
        total: unit_price.money(),
        at,
        payment_due: None,
    }
    .encode()
    .unwrap();
    let confirmed = test_support::new_event(&confirmed.event_type, confirmed.schema_version, confirmed.data);
    let stream = order_stream_name(&order_id.to_string());
    app.store
        .append(&stream, event_store::ExpectedRevision::after(Some(0)), vec![confirmed])
        .await
        .unwrap();
    let checkpoint = format!(r#"{{"after":"{}"}}"#, app.head().await);
    let checkpoint = test_support::new_event("SagaCheckpointed", 1, checkpoint.into_bytes());
    let checkpoints = event_store::StreamName::new(command_api::saga::CHECKPOINT_STREAM).unwrap();
    app.store
        .append(&checkpoints, event_store::ExpectedRevision::Any, vec![checkpoint])
        .await
        .unwrap();
    order_id.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_confirmed_by_an_older_build_expires_a_window_after_its_confirmation() {
    let app = app_without_saga().await;
    let admin = app.admin().await;
    let pen = app.product(&admin, "PEN-1", "5.00", 10).await;
    let overdue = confirmed_by_an_older_build(&app, &pen, TimeDelta::hours(2)).await;
    let within = confirmed_by_an_older_build(&app, &pen, TimeDelta::minutes(10)).await;
    assert_eq!(app.available(&pen).await, 8);

    let saga = start_saga(Arc::clone(&app.store), LONG, 5);
    wait_until_expired(&app, &overdue).await;
    wait_for("the overdue order's stock back", || {
        let (app, pen) = (&app, pen.as_str());
        async move {
            match app.available(pen).await {
                9 => Ok(()),
                n => Err(format!("{n} available")),
            }
        }
    })
    .await;
    saga.stop().await;
    assert_eq!(
        app.order_status(&within).await,
        OrderStatus::Confirmed,
        "confirmed 10 minutes ago with a window of an hour: not due"
    );
    let counts = counts(&app).await;
    assert_eq!(count(&counts, "OrderCancelled", &overdue), 1);
    assert_eq!(count(&counts, "StockReserved", &overdue), 1, "nothing executed again");
}
