//! The order lifecycle as the query API shows it, over real HTTP with
//! SQLite views and with Postgres views: the payment's reference and times,
//! closing, cancelling unpaid and paid orders, expiry and refusal, in the
//! detail and the history; and the admins' list of every order, filtered,
//! newest first, paged without gaps or repeats while orders keep coming.
//! Orders are placed and confirmed through the command API and its saga;
//! what has no HTTP operation here is decided by the order's decider and
//! appended to the log, as the command side does.

// In tests an unwrap is an assertion with a backtrace.
#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::sync::Arc;

use command_api::aggregates::{Aggregates, Causation};
use domain::decider::Decider;
use domain::event::DomainEvent;
use domain::ids::{OrderId, ProductId, UserId};
use domain::money::Money;
use domain::order::{
    Customer, Order, OrderCommand, OrderLines, OrderState, PaymentReference, PlaceOrder, PlacedOrder, Refusal,
    ShippingAddress,
};
use domain::text::Reason;
use event_store::ExpectedRevision;
use reqwest::StatusCode;
use serde_json::Value;
use test_support::system::{Settings, System};
use test_support::{PATIENCE, order_body, tokens};

async fn start(views_url: &str) -> System {
    test_support::system::start_with(
        views_url,
        Settings {
            signing_key: tokens::server_key(),
            order_wait: Some(PATIENCE),
            read_wait: PATIENCE,
        },
    )
    .await
}

macro_rules! on_both_databases {
    ($($case:ident),* $(,)?) => {
        mod on_sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let (url, _keep) = test_support::sqlite_views();
                    super::$case(&url).await;
                }
            )*
        }
        mod on_postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let url = test_support::postgres::fresh_database().await;
                    super::$case(&url).await;
                }
            )*
        }
    };
}

on_both_databases!(
    each_stage_of_the_lifecycle_shows_its_own_fields,
    admins_list_every_order_filtered_newest_first_without_gaps_or_repeats,
    only_admins_list_every_order_and_bad_filters_are_named,
);

/// A confirmed order of one `product` by `token`; its id.
async fn confirmed_order(system: &System, token: &str, product: &str) -> String {
    let (status, order) = system
        .command("/orders", Some(token), order_body(&[(product, 1)]))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    assert_eq!(order["status"], "confirmed", "{order}");
    order["orderId"].as_str().unwrap().to_owned()
}

/// Decides `command` on the order as the command side does, appending what
/// it decides; the position to read it back at.
async fn decide(system: &System, order_id: &str, command: OrderCommand) -> String {
    let orders = Aggregates::<Order>::new(Arc::clone(&system.app.store));
    let causation = Causation::request(uuid::Uuid::new_v4(), None);
    let decided = orders.execute(order_id, causation, || command.clone()).await.unwrap();
    assert!(!decided.events.is_empty(), "{command:?} decided nothing");
    decided.position.unwrap().to_string()
}

/// The confirmed order's state as the log tells it.
async fn confirmed_state(system: &System, order_id: &str) -> domain::order::ConfirmedOrder {
    match system.app.order_state(order_id).await {
        OrderState::Confirmed(order) => order,
        other => panic!("order {order_id} is not confirmed: {other:?}"),
    }
}

async fn settle(system: &System, order_id: &str, reference: &str) -> String {
    let total: Money = confirmed_state(system, order_id).await.total;
    let command = OrderCommand::Settle {
        reference: PaymentReference::parse(reference).unwrap(),
        amount: total,
        now: chrono::Utc::now(),
    };
    decide(system, order_id, command).await
}

/// A refused order of `customer` placed `now`: placed and refused in one
/// append, as the saga's refusal comes before any reservation; its id and
/// the position it ends at.
async fn refused_order(system: &System, customer: UserId, now: domain::Timestamp) -> (String, String) {
    let order_id = OrderId::from_uuid(uuid::Uuid::now_v7());
    let order = PlacedOrder {
        order_id,
        customer_id: customer,
        lines: OrderLines::parse(&[(ProductId::from_uuid(uuid::Uuid::new_v4()), 1)]).unwrap(),
        customer: Customer::parse(Some("Ann"), None, "0812345678").unwrap(),
        shipping: ShippingAddress::parse("1 Main St", "Bangkok", "Bangkok", "TH", "10110").unwrap(),
    };
    let placed = Order::decide(&OrderState::NotPlaced, OrderCommand::Place(PlaceOrder { order, now })).unwrap();
    let refusal = OrderCommand::Refuse {
        refusal: Refusal::TooManyUnsettledOrders { limit: 5 },
        now,
    };
    let refused = Order::decide(&Order::fold(&placed), refusal).unwrap();
    let events = placed
        .iter()
        .chain(&refused)
        .map(|event| {
            let encoded = event.encode().unwrap();
            test_support::new_event(&encoded.event_type, encoded.schema_version, encoded.data)
        })
        .collect();
    let stream = test_support::order_stream_name(&order_id.to_string());
    let appended = system
        .app
        .store
        .append(&stream, ExpectedRevision::NoStream, events)
        .await
        .unwrap();
    (order_id.to_string(), appended.position.to_string())
}

/// `GET /orders/{id}` at `position` by `token`.
async fn detail(system: &System, token: &str, order_id: &str, position: &str) -> Value {
    let (status, detail) = system
        .query(&format!("/orders/{order_id}?minPosition={position}"), Some(token))
        .await;
    assert_eq!(status, StatusCode::OK, "{detail}");
    detail
}

/// Which lifecycle fields `order` has.
fn fields_of(order: &Value) -> Vec<&str> {
    ["paymentReference", "settledAt", "closedAt", "expiresAt", "refusal"]
        .into_iter()
        .filter(|field| order.get(*field).is_some_and(|value| !value.is_null()))
        .collect()
}

fn stands(order: &Value) -> (&str, &str) {
    (
        order["status"].as_str().unwrap(),
        order["paymentStatus"].as_str().unwrap(),
    )
}

async fn each_stage_of_the_lifecycle_shows_its_own_fields(views_url: &str) {
    let system = start(views_url).await;
    let admin = system.app.admin().await;
    let mug = system.app.product(&admin, "MUG-1", "12.50", 50).await;
    let (alice, _) = system.customer("alice").await;
    // Each order leaves the confirmed-unpaid stage before the next is
    // placed, under the limit of unsettled orders per customer.
    let waiting = &confirmed_order(&system, &alice, &mug).await;
    let alice_id = confirmed_state(&system, waiting).await.placed.customer_id;
    let due = confirmed_state(&system, waiting).await.payment_due.unwrap();
    let position = system.app.head().await.to_string();
    let shown = detail(&system, &alice, waiting, &position).await;
    assert_eq!(
        (stands(&shown), fields_of(&shown)),
        (("confirmed", "arranged"), vec!["expiresAt"])
    );
    let expires_at: domain::Timestamp = shown["expiresAt"].as_str().unwrap().parse().unwrap();
    // Postgres keeps microseconds.
    assert!(
        (due - expires_at).abs() < chrono::TimeDelta::microseconds(1),
        "{expires_at} for {due}"
    );

    let settled = &confirmed_order(&system, &alice, &mug).await;
    let at = settle(&system, settled, "pi_settled").await;
    let shown = detail(&system, &alice, settled, &at).await;
    assert_eq!(
        (stands(&shown), fields_of(&shown)),
        (("confirmed", "settled"), vec!["paymentReference", "settledAt"])
    );
    assert_eq!(shown["paymentReference"], "pi_settled");

    let closed = &confirmed_order(&system, &alice, &mug).await;
    settle(&system, closed, "pi_closed").await;
    let at = decide(
        &system,
        closed,
        OrderCommand::Close {
            now: chrono::Utc::now(),
        },
    )
    .await;
    let shown = detail(&system, &admin, closed, &at).await;
    assert_eq!(
        (stands(&shown), fields_of(&shown)),
        (("closed", "settled"), vec!["paymentReference", "settledAt", "closedAt"])
    );

    let unpaid = &confirmed_order(&system, &alice, &mug).await;
    let (status, cancelled) = system
        .command(
            &format!("/orders/{unpaid}/cancel"),
            Some(&alice),
            serde_json::json!({"reason": "too blue"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{cancelled}");
    let shown = detail(&system, &alice, unpaid, cancelled["position"].as_str().unwrap()).await;
    assert_eq!(
        (stands(&shown), fields_of(&shown)),
        (("cancelled", "cancelled"), vec![])
    );

    let refunded = &confirmed_order(&system, &alice, &mug).await;
    settle(&system, refunded, "pi_refunded").await;
    let cancel = OrderCommand::Cancel {
        requested_by: alice_id,
        reason: Reason::parse("changed my mind").unwrap(),
        now: chrono::Utc::now(),
    };
    let at = decide(&system, refunded, cancel).await;
    let shown = detail(&system, &alice, refunded, &at).await;
    assert_eq!(
        (stands(&shown), fields_of(&shown)),
        (("cancelled", "refunded"), vec!["paymentReference", "settledAt"])
    );

    let expired = &confirmed_order(&system, &alice, &mug).await;
    let due = confirmed_state(&system, expired).await.payment_due.unwrap();
    let expire = OrderCommand::Expire {
        now: due + chrono::TimeDelta::seconds(1),
        window: chrono::TimeDelta::minutes(30),
    };
    let at = decide(&system, expired, expire).await;
    let shown = detail(&system, &alice, expired, &at).await;
    assert_eq!(
        (stands(&shown), fields_of(&shown)),
        (("cancelled", "cancelled"), vec![])
    );
    assert_eq!(shown["cancelReason"], "payment window expired");

    let (refused, at) = refused_order(&system, alice_id, chrono::Utc::now()).await;
    let shown = detail(&system, &alice, &refused, &at).await;
    assert_eq!(
        (stands(&shown), fields_of(&shown)),
        (("rejected", "void"), vec!["refusal"])
    );
    assert_eq!(shown["refusal"]["code"], "tooManyUnsettledOrders");
    assert_eq!(shown["refusal"]["limit"], 5);
    assert!(shown.get("failures").is_none(), "{shown}");

    let (status, history) = system
        .query(&format!("/me/orders?minPosition={at}"), Some(&alice))
        .await;
    assert_eq!(status, StatusCode::OK, "{history}");
    let history = history["items"].as_array().unwrap();
    assert_eq!(history.len(), 7);
    let by_id = |id: &str| history.iter().find(|item| item["orderId"] == id).unwrap();
    assert!(by_id(closed)["closedAt"].is_string());
    assert_eq!(by_id(refunded)["paymentReference"], "pi_refunded");
    assert_eq!(fields_of(by_id(waiting)), vec!["expiresAt"]);
    assert_eq!(by_id(&refused)["refusal"]["code"], "tooManyUnsettledOrders");
}

/// Every page of `GET /orders?{filters}` by `token`, `limit` a page, until
/// the last; `between` runs after each page but the last. The orders, in
/// the order the pages gave them.
async fn every_page<F, Fut>(system: &System, token: &str, filters: &str, limit: u32, mut between: F) -> Vec<Value>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut seen = Vec::new();
    let mut path = format!("/orders?limit={limit}&{filters}");
    loop {
        let (status, page) = system.query(&path, Some(token)).await;
        assert_eq!(status, StatusCode::OK, "{path}: {page}");
        seen.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["nextCursor"].as_str() {
            Some(cursor) => path = format!("/orders?limit={limit}&{filters}&cursor={cursor}"),
            None => return seen,
        }
        between().await;
    }
}

fn ids(orders: &[Value]) -> Vec<String> {
    orders
        .iter()
        .map(|o| o["orderId"].as_str().unwrap().to_owned())
        .collect()
}

async fn admins_list_every_order_filtered_newest_first_without_gaps_or_repeats(views_url: &str) {
    let system = start(views_url).await;
    let admin = system.app.admin().await;
    let mug = system.app.product(&admin, "MUG-1", "12.50", 100).await;
    let (alice, _) = system.customer("alice").await;
    let (bob, _) = system.customer("bob").await;
    let mut placed = Vec::new();
    for n in 0..7 {
        placed.push(confirmed_order(&system, if n % 2 == 0 { &alice } else { &bob }, &mug).await);
    }
    settle(&system, &placed[1], "pi_one").await;
    settle(&system, &placed[4], "pi_four").await;
    let (status, cancelled) = system
        .command(
            &format!("/orders/{}/cancel", placed[2]),
            Some(&alice),
            serde_json::json!({"reason": "no"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{cancelled}");
    let head = system.app.head().await.to_string();

    let all = every_page(&system, &admin, &format!("minPosition={head}"), 3, || async {}).await;
    let mut newest_first = placed.clone();
    newest_first.reverse();
    assert_eq!(ids(&all), newest_first, "every customer's orders, newest first");
    let keys: Vec<(String, String)> = all
        .iter()
        .map(|o| {
            (
                o["placedAt"].as_str().unwrap().to_owned(),
                o["orderId"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(keys.windows(2).all(|pair| pair[0] >= pair[1]), "{keys:?}");
    let customers: HashSet<&str> = all.iter().map(|o| o["customerId"].as_str().unwrap()).collect();
    assert_eq!(customers.len(), 2);

    let settled = every_page(&system, &admin, "paymentStatus=settled", 1, || async {}).await;
    assert_eq!(ids(&settled), [placed[4].clone(), placed[1].clone()]);
    let cancelled = every_page(&system, &admin, "status=cancelled", 5, || async {}).await;
    assert_eq!(ids(&cancelled), [placed[2].clone()]);
    let both = every_page(
        &system,
        &admin,
        "status=confirmed&paymentStatus=arranged",
        2,
        || async {},
    )
    .await;
    assert_eq!(
        ids(&both),
        [&placed[6], &placed[5], &placed[3], &placed[0]].map(String::clone)
    );
    let none = every_page(&system, &admin, "status=closed", 2, || async {}).await;
    assert!(none.is_empty());

    // Orders placed while an operator pages are newer than every page: they
    // show on none of the pages still to come, and no order moves.
    let (system, alice, mug) = (&system, &alice, &mug);
    let arrived = std::cell::RefCell::new(Vec::new());
    let paged = every_page(system, &admin, "", 2, || async {
        let id = confirmed_order(system, alice, mug).await;
        arrived.borrow_mut().push(id);
    })
    .await;
    assert_eq!(ids(&paged), newest_first, "no gaps, no repeats");
    assert_eq!(arrived.borrow().len(), 3, "an order arrived between each two pages");

    // Orders placed at the same instant come by id, highest first, and
    // page through a cursor between them.
    let customer = UserId::from_uuid(uuid::Uuid::new_v4());
    let instant = chrono::Utc::now();
    let mut twins = Vec::new();
    for _ in 0..3 {
        twins.push(refused_order(system, customer, instant).await);
    }
    let head = &twins[2].1;
    let rejected = every_page(
        system,
        &admin,
        &format!("status=rejected&minPosition={head}"),
        1,
        || async {},
    )
    .await;
    let mut by_id: Vec<String> = twins.into_iter().map(|(id, _)| id).collect();
    by_id.sort();
    by_id.reverse();
    assert_eq!(ids(&rejected), by_id);
}

async fn only_admins_list_every_order_and_bad_filters_are_named(views_url: &str) {
    let system = start(views_url).await;
    let admin = system.app.admin().await;
    let (alice, _) = system.customer("alice").await;
    let (status, body) = system.query("/orders", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, body) = system.query("/orders", Some(&alice)).await;
    assert_eq!(
        (status, body["type"].as_str()),
        (StatusCode::FORBIDDEN, Some("/problems/forbidden")),
        "{body}"
    );
    for (query, field) in [
        ("status=shipped", "status"),
        ("paymentStatus=paid", "paymentStatus"),
        ("cursor=yesterday", "cursor"),
        ("limit=0", "limit"),
        ("limit=101", "limit"),
    ] {
        let (status, body) = system.query(&format!("/orders?{query}"), Some(&admin)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert_eq!(body["field"], field, "{query}: {body}");
    }
    let (status, body) = system
        .query("/orders?status=closed&paymentStatus=settled", Some(&admin))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["items"], serde_json::json!([]));
}
