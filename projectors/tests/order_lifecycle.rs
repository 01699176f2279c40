//! The order lifecycle through the real orders projection, on SQLite and on
//! Postgres: settled, closed, cancelled unpaid, cancelled after payment
//! (whose refund comes in the same append), expired and refused orders end
//! with the rows the pure fold gives, whether a batch holds one event or all
//! of them.

// In tests an unwrap is an assertion with a backtrace.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use domain::decider::Decider;
use domain::event::DomainEvent;
use domain::ids::{OrderId, ProductId, UserId};
use domain::money::Price;
use domain::order::{
    Customer, Order, OrderCommand, OrderEvent, OrderLines, PaymentReference, PlaceOrder, PlacedOrder, Refusal,
    ReservedLine, ShippingAddress,
};
use domain::product::{ProductName, Sku};
use domain::quantity::Quantity;
use domain::text::Reason;
use event_store::{EventStore, ExpectedRevision};
use sea_orm::{DatabaseConnection, EntityTrait, QueryOrder};
use views::tables::orders;

async fn sqlite() -> (DatabaseConnection, Option<tempfile::TempDir>) {
    let (url, folder) = test_support::sqlite_views();
    (
        projectors::database::connect_and_migrate(&url, 4).await.unwrap(),
        Some(folder),
    )
}

async fn postgres() -> (DatabaseConnection, Option<tempfile::TempDir>) {
    let url = test_support::postgres::fresh_database().await;
    (projectors::database::connect_and_migrate(&url, 4).await.unwrap(), None)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_lifecycle_event_lands_in_the_view_on_sqlite() {
    let (one, _a) = sqlite().await;
    let (all, _b) = sqlite().await;
    lifecycle_rows_are_the_folds_whatever_the_batches(one, all).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_lifecycle_event_lands_in_the_view_on_postgres() {
    let (one, _) = postgres().await;
    let (all, _) = postgres().await;
    lifecycle_rows_are_the_folds_whatever_the_batches(one, all).await;
}

/// Decides `commands` one after another on a new order's state, and
/// appends each decision as the command side would, one append each; the
/// events.
async fn run(store: &Arc<dyn EventStore>, commands: Vec<OrderCommand>) -> Vec<OrderEvent> {
    let mut events: Vec<OrderEvent> = Vec::new();
    let mut revision = None;
    for command in commands {
        let decided = Order::decide(&Order::fold(&events), command).unwrap();
        let order_id = decided[0].order_id();
        let encoded = decided.iter().map(|event| {
            let encoded = event.encode().unwrap();
            test_support::new_event(&encoded.event_type, encoded.schema_version, encoded.data)
        });
        let stream = test_support::order_stream_name(&order_id.to_string());
        let outcome = store
            .append(&stream, ExpectedRevision::after(revision), encoded.collect())
            .await
            .unwrap();
        revision = Some(outcome.revision);
        events.extend(decided);
    }
    events
}

struct Shop {
    customer: UserId,
    product: ProductId,
    at: domain::Timestamp,
}

impl Shop {
    fn place(&self) -> OrderCommand {
        let order = PlacedOrder {
            order_id: OrderId::from_uuid(uuid::Uuid::now_v7()),
            customer_id: self.customer,
            lines: OrderLines::parse(&[(self.product, 2)]).unwrap(),
            customer: Customer::parse(Some("Ann"), None, "0812345678").unwrap(),
            shipping: ShippingAddress::parse("1 Main St", "Bangkok", "Bangkok", "TH", "10110").unwrap(),
        };
        OrderCommand::Place(PlaceOrder { order, now: self.at })
    }

    fn confirm(&self) -> OrderCommand {
        OrderCommand::Confirm {
            lines: vec![ReservedLine {
                product_id: self.product,
                sku: Sku::parse("LAMP-1").unwrap(),
                name: ProductName::parse("Lamp").unwrap(),
                quantity: Quantity::parse_field("quantity", 2).unwrap(),
                unit_price: Price::from_minor_units(1_250).unwrap(),
            }],
            now: self.at + chrono::TimeDelta::seconds(1),
            payment_due: self.at + chrono::TimeDelta::minutes(30),
        }
    }

    fn settle(&self, reference: &str) -> OrderCommand {
        OrderCommand::Settle {
            reference: PaymentReference::parse(reference).unwrap(),
            amount: Price::from_minor_units(2_500).unwrap().money(),
            now: self.at + chrono::TimeDelta::seconds(2),
        }
    }

    fn cancel(&self) -> OrderCommand {
        OrderCommand::Cancel {
            requested_by: self.customer,
            reason: Reason::parse("changed my mind").unwrap(),
            now: self.at + chrono::TimeDelta::seconds(3),
        }
    }
}

async fn lifecycle_rows_are_the_folds_whatever_the_batches(one: DatabaseConnection, all: DatabaseConnection) {
    let folder = tempfile::tempdir().unwrap();
    let store = test_support::embedded_store(folder.path());
    let shop = Shop {
        customer: UserId::from_uuid(uuid::Uuid::now_v7()),
        product: ProductId::for_sku(&Sku::parse("LAMP-1").unwrap()),
        at: chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
    };
    let close = OrderCommand::Close {
        now: shop.at + chrono::TimeDelta::seconds(4),
    };
    let expire = OrderCommand::Expire {
        now: shop.at + chrono::TimeDelta::minutes(31),
        window: chrono::TimeDelta::minutes(30),
    };
    let refuse = OrderCommand::Refuse {
        refusal: Refusal::TooManyUnsettledOrders { limit: 5 },
        now: shop.at,
    };
    let logs = [
        ("waiting", vec![shop.place(), shop.confirm()]),
        ("settled", vec![shop.place(), shop.confirm(), shop.settle("pi_s")]),
        ("closed", vec![shop.place(), shop.confirm(), shop.settle("pi_c"), close]),
        ("cancelled unpaid", vec![shop.place(), shop.confirm(), shop.cancel()]),
        (
            "refunded",
            vec![shop.place(), shop.confirm(), shop.settle("pi_r"), shop.cancel()],
        ),
        ("expired", vec![shop.place(), shop.confirm(), expire]),
        ("refused", vec![shop.place(), refuse]),
    ];
    let mut expected = Vec::new();
    for (name, commands) in logs {
        let events = run(&store, commands).await;
        let folded = events.iter().fold(None, projectors::orders::evolve).unwrap().header;
        expected.push((name, folded));
    }
    let orders = projectors::named("orders").unwrap();
    projectors::generations::rebuild::replay(&store, &one, &orders, 1)
        .await
        .unwrap();
    projectors::generations::rebuild::replay(&store, &all, &orders, 500)
        .await
        .unwrap();
    let by_id = || orders::Entity::find().order_by_asc(orders::Column::OrderId);
    let one_at_a_time = by_id().all(&one).await.unwrap();
    assert_eq!(
        one_at_a_time,
        by_id().all(&all).await.unwrap(),
        "the same rows whatever the batches"
    );
    for (name, folded) in &expected {
        let row = one_at_a_time
            .iter()
            .find(|row| row.order_id == folded.order_id)
            .unwrap();
        assert_eq!(row, folded, "{name}");
    }
    let stands: Vec<(&str, &str, &str)> = expected
        .iter()
        .map(|(name, row)| (*name, row.status.as_str(), row.payment_status.as_str()))
        .collect();
    assert_eq!(
        stands,
        [
            ("waiting", "confirmed", "arranged"),
            ("settled", "confirmed", "settled"),
            ("closed", "closed", "settled"),
            ("cancelled unpaid", "cancelled", "cancelled"),
            ("refunded", "cancelled", "refunded"),
            ("expired", "cancelled", "cancelled"),
            ("refused", "rejected", "void"),
        ]
    );
    let refunded = &expected[4].1;
    assert_eq!(refunded.payment_reference.as_deref(), Some("pi_r"));
    assert!(expected[0].1.expires_at.is_some());
    assert!(expected[1..].iter().all(|(_, row)| row.expires_at.is_none()));
    assert!(expected[6].1.refusal.is_some());
}
