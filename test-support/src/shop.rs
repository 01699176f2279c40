//! Business through a real command API and its saga, to produce a realistic
//! event log through real requests.

use std::collections::HashSet;
use std::time::Duration;

use domain::order::OrderEvent;
use domain::product::ProductEvent;
use event_store::RecordedEvent;
use projectors::projection::decode_all;
use reqwest::StatusCode;
use serde_json::json;

use crate::{App, order_body, wait_for};

pub struct Shop {
    pub app: App,
    /// An admin's access token.
    pub admin: String,
}

impl Shop {
    /// The command API signing with [`crate::tokens::server_key`], and its
    /// admin logged in.
    pub async fn start() -> Self {
        let mut config = App::config();
        config.signing_key = crate::tokens::server_key();
        // The saga saves its progress only when it stops: saved while it
        // runs, its checkpoint would land in the log whenever a second had
        // passed, after the head a test compares with.
        config.saga.checkpoint_every = Duration::MAX;
        let app = App::start_with(config).await;
        let admin = app.admin().await;
        Self { app, admin }
    }

    /// One round of business: products, customers, confirmed, rejected and
    /// cancelled orders, a restock and a rename. Returns once the saga has
    /// finished with every order, so the log stays as it is until the next
    /// request.
    pub async fn trade(&self, round: usize) {
        let app = &self.app;
        let mut products = Vec::new();
        for n in 0..3 {
            let (status, created) = app
                .post(
                    "/products",
                    Some(&self.admin),
                    &json!({"sku": format!("R{round}-{n}"), "name": format!("Thing {round}.{n}"), "price": format!("{}.50", n + 1), "stock": 5}),
                )
                .await;
            assert_eq!(status, StatusCode::CREATED, "{created}");
            products.push(created["productId"].as_str().unwrap().to_owned());
        }
        for customer in 0..2 {
            let token = app.customer(&format!("r{round}c{customer}")).await;
            let order = |lines: &[(usize, i64)]| {
                let items: Vec<(&str, i64)> = lines.iter().map(|(p, q)| (products[*p].as_str(), *q)).collect();
                order_body(&items)
            };
            let (_, confirmed) = app.post("/orders", Some(&token), &order(&[(0, 1), (1, 2)])).await;
            assert_eq!(confirmed["status"], "confirmed", "{confirmed}");
            let (_, rejected) = app.post("/orders", Some(&token), &order(&[(2, 50)])).await;
            assert_eq!(rejected["status"], "rejected", "{rejected}");
            let (_, to_cancel) = app.post("/orders", Some(&token), &order(&[(2, 1)])).await;
            assert_eq!(to_cancel["status"], "confirmed", "{to_cancel}");
            let id = to_cancel["orderId"].as_str().unwrap();
            let (_, cancelled) = app
                .post(
                    &format!("/orders/{id}/cancel"),
                    Some(&token),
                    &json!({"reason": "changed my mind"}),
                )
                .await;
            assert_eq!(cancelled["status"], "cancelled", "{cancelled}");
        }
        let restock = format!("/products/{}/restock", products[0]);
        let (status, restocked) = app.post(&restock, Some(&self.admin), &json!({"quantity": 3})).await;
        assert_eq!(status, StatusCode::OK, "{restocked}");
        let rename = format!("/products/{}/name", products[1]);
        let (status, renamed) = app.put(&rename, Some(&self.admin), &json!({"name": "Renamed"})).await;
        assert_eq!(status, StatusCode::OK, "{renamed}");
        self.saga_done().await;
    }

    /// Waits until the saga has nothing left to do: every order placed is
    /// confirmed or rejected, and the stock reserved for every order
    /// rejected or cancelled is released.
    pub async fn saga_done(&self) {
        wait_for("the saga finishing", || async move {
            let unfinished = unfinished(&self.app.events().await);
            if unfinished.is_empty() {
                Ok(())
            } else {
                Err(format!("{unfinished:?}"))
            }
        })
        .await;
    }
}

/// What the saga has still to do, by the log.
fn unfinished(log: &[RecordedEvent]) -> Vec<String> {
    let (mut placed, mut decided, mut ended) = (HashSet::new(), HashSet::new(), HashSet::new());
    for event in decode_all::<OrderEvent>(log).unwrap() {
        let order = event.order_id();
        match event {
            OrderEvent::Placed { .. } => placed.insert(order),
            OrderEvent::Confirmed { .. } => decided.insert(order),
            OrderEvent::Rejected { .. } | OrderEvent::Refused { .. } => decided.insert(order) && ended.insert(order),
            OrderEvent::Cancelled { .. } => ended.insert(order),
            OrderEvent::PaymentSettled { .. } | OrderEvent::PaymentRefunded { .. } | OrderEvent::Closed { .. } => false,
        };
    }
    let (mut reserved, mut released) = (HashSet::new(), HashSet::new());
    for event in decode_all::<ProductEvent>(log).unwrap() {
        match event {
            ProductEvent::StockReserved {
                order_id, product_id, ..
            } => reserved.insert((order_id, product_id)),
            ProductEvent::StockReleased {
                order_id, product_id, ..
            } => released.insert((order_id, product_id)),
            _ => false,
        };
    }
    let undecided = placed
        .difference(&decided)
        .map(|order| format!("order {order} undecided"));
    let unreleased = reserved
        .iter()
        .filter(|(order, _)| ended.contains(order))
        .filter(|reservation| !released.contains(reservation))
        .map(|(order, product)| format!("stock of product {product} still held for order {order}"));
    undecided.chain(unreleased).collect()
}
