//! Races: overselling, one username claimed at once by many, one order sent
//! twice at once.

// In tests an unwrap is an assertion with a backtrace.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::json;
use test_support::App;

/// A small deterministic generator, so a failing basket can be replayed.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % below
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_buyers_never_oversell_and_stock_balances_in_the_log() {
    const BUYERS: usize = 64;
    const ORDERS_EACH: usize = 3;
    // All buyers register and log in at once from one address: room for
    // them in the password hashing queue and in the address's budgets.
    let mut config = App::config();
    config.hash_queue = BUYERS;
    config.throttle.login_per_address.burst = 2 * BUYERS as u32;
    config.throttle.register_per_address.burst = 2 * BUYERS as u32;
    let app = Arc::new(App::start_with(config).await);
    let admin = app.admin().await;
    let mut products = Vec::new();
    for n in 0..10 {
        products.push(app.product(&admin, &format!("SKU-{n}"), "10.00", 100).await);
    }
    let tokens: Vec<String> = futures::future::join_all((0..BUYERS).map(|n| {
        let app = Arc::clone(&app);
        async move { app.customer(&format!("buyer{n}")).await }
    }))
    .await;

    let buyers = tokens.into_iter().enumerate().map(|(n, token)| {
        let app = Arc::clone(&app);
        let products = products.clone();
        tokio::spawn(async move {
            let mut random = Lcg(n as u64 + 1);
            let mut confirmed: HashMap<String, u64> = HashMap::new();
            for _ in 0..ORDERS_EACH {
                let lines = 1 + random.next(3) as usize;
                let basket: Vec<(String, i64)> = (0..lines)
                    .map(|_| (products[random.next(10) as usize].clone(), 1 + random.next(20) as i64))
                    .collect();
                let items: Vec<(&str, i64)> = basket.iter().map(|(id, q)| (id.as_str(), *q)).collect();
                let (status, body) = app.order(&token, &items).await;
                match status {
                    StatusCode::CREATED => {
                        for line in body["lines"].as_array().unwrap() {
                            *confirmed
                                .entry(line["productId"].as_str().unwrap().to_owned())
                                .or_default() += line["quantity"].as_u64().unwrap();
                        }
                    }
                    StatusCode::CONFLICT => assert_eq!(body["status"], "rejected", "{body}"),
                    other => panic!("unexpected {other}: {body}"),
                }
            }
            confirmed
        })
    });
    let mut confirmed_units: HashMap<String, u64> = HashMap::new();
    for buyer in futures::future::join_all(buyers).await {
        for (product, units) in buyer.unwrap() {
            *confirmed_units.entry(product).or_default() += units;
        }
    }
    assert!(!confirmed_units.is_empty(), "some orders were confirmed");
    // Rejected orders give their reservations back just after the answer.
    app.assert_stock_balances().await;
    for product in &products {
        let units = confirmed_units.get(product).copied().unwrap_or(0);
        assert!(units <= 100, "product {product}: {units} units confirmed of 100");
        assert_eq!(
            u64::from(app.available(product).await),
            100 - units,
            "product {product}: stock is what confirmed orders left"
        );
    }
    app.assert_stock_balances().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_concurrent_registrations_of_one_username_give_exactly_one_account() {
    let app = Arc::new(App::start().await);
    let attempts = (0..20).map(|n| {
        let app = Arc::clone(&app);
        tokio::spawn(async move {
            let username = if n % 2 == 0 { "dave" } else { "DAVE" };
            app.post(
                "/auth/register",
                None,
                &json!({"username": username, "password": format!("password-{n:03}"), "displayName": "Dave"}),
            )
            .await
        })
    });
    let results: Vec<_> = futures::future::join_all(attempts)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    let created = results.iter().filter(|(s, _)| *s == StatusCode::CREATED).count();
    assert_eq!(created, 1, "{results:?}");
    for (status, body) in results.iter().filter(|(s, _)| *s != StatusCode::CREATED) {
        assert_eq!(*status, StatusCode::CONFLICT, "{body}");
        assert_eq!(body["type"], "/problems/username-taken");
    }
    let accounts = app
        .events()
        .await
        .into_iter()
        .filter(|e| e.event_type == "AccountRegistered" && !e.data.windows(5).any(|w| w == b"admin"))
        .count();
    assert_eq!(accounts, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_order_sent_twice_at_once_with_one_key_is_one_order() {
    let app = Arc::new(App::start().await);
    let admin = app.admin().await;
    let erin = app.customer("erin").await;
    let mug = app.product(&admin, "MUG-1", "12.50", 10).await;
    let order = |quantity: i64| app.order_with_key(&erin, "order-42", &[(&mug, quantity)]);
    let send = || tokio::spawn(order(2));
    let (first, second) = tokio::join!(send(), send());
    let ((s1, b1), (s2, b2)) = (first.unwrap(), second.unwrap());
    assert_eq!(s1, StatusCode::CREATED, "{b1}");
    assert_eq!(s2, StatusCode::CREATED, "{b2}");
    assert_eq!(b1["orderId"], b2["orderId"]);
    assert_eq!(b1["total"], b2["total"]);
    let placed = app
        .events()
        .await
        .into_iter()
        .filter(|e| e.event_type == "OrderPlaced")
        .count();
    assert_eq!(placed, 1);
    assert_eq!(app.available(&mug).await, 8);

    let (status, replay) = order(2).await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "a later retry gets the same answer: {replay}"
    );
    assert_eq!(replay["orderId"], b1["orderId"]);

    let (status, problem) = order(3).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(problem["field"], "Idempotency-Key");
    assert_eq!(app.available(&mug).await, 8);
}
