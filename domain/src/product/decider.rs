use imbl::OrdMap;
use serde::{Deserialize, Serialize};

use super::answered::RecentlyAnswered;
use super::{ProductEvent, ProductName, Sku};
use crate::Timestamp;
use crate::decider::Decider;
use crate::ids::{OrderId, ProductId};
use crate::money::Price;
use crate::quantity::{Quantity, RestockQuantity, StockLevel};

/// The product aggregate.
pub struct Product;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProductCommand {
    /// The id must be `ProductId::for_sku(&sku)`.
    Create {
        product_id: ProductId,
        sku: Sku,
        name: ProductName,
        price: Price,
        initial_stock: StockLevel,
        now: Timestamp,
    },
    Rename {
        name: ProductName,
        now: Timestamp,
    },
    Reprice {
        price: Price,
        now: Timestamp,
    },
    Restock {
        quantity: RestockQuantity,
        now: Timestamp,
    },
    /// Holds stock for an order. Idempotent per order: a second request for
    /// an order that holds, or was refused or released recently, decides
    /// nothing new (see [`ActiveProduct`] for one that asks much later).
    Reserve {
        order_id: OrderId,
        quantity: Quantity,
        now: Timestamp,
    },
    /// Gives an order's reservation back. Idempotent: without a reservation
    /// it decides nothing.
    Release {
        order_id: OrderId,
        now: Timestamp,
    },
}

/// A product's state, also its snapshot (serde): loading a hot product reads
/// the latest snapshot and the events after it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum ProductState {
    #[default]
    NotCreated,
    Active(ActiveProduct),
}

/// An existing product. What it remembers of orders is bounded by what can
/// still matter, not by how many orders ever asked it:
///
/// - `held`: the orders holding stock now. Each holds at least one unit, so
///   there are never more of them than units an admin put in stock, and a
///   release removes its entry.
/// - `recently_answered`: the last [`RECENTLY_ANSWERED`](super::RECENTLY_ANSWERED)
///   orders refused or released.
///
/// Why forgetting an ended order can cause neither a double release nor a
/// lasting double reservation:
///
/// - A release gives back exactly what `held` says, and the same event
///   removes the entry. A second release of the order (a replayed saga, a
///   second runner), however late, finds nothing held and decides nothing.
///   No units come back twice.
/// - An order holds at most once: a reserve while it holds decides nothing,
///   and holdings are never forgotten.
/// - A reserve for an order refused or released so long ago that the window
///   forgot it is decided afresh and may hold stock again. Only a saga that
///   asks again after answering sends it (its `OrderPlaced` replayed from an
///   older checkpoint). If the order has ended (rejected, cancelled), the
///   saga releases a reservation that arrives for an order that is no longer
///   pending ([`crate::order_saga`]). If it is still pending, the earlier
///   refusal is in the log after its `OrderPlaced`, so the replayed saga sees
///   it, rejects the order and releases what it holds. Either way the units
///   come back and the order keeps one outcome; a confirmed order holds its
///   units in `held`, so it is never asked twice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActiveProduct {
    pub product_id: ProductId,
    pub sku: Sku,
    pub name: ProductName,
    pub price: Price,
    pub available: StockLevel,
    /// Units held for each order that holds some. A persistent map: the
    /// command side copies a product's state for every batch of commands it
    /// decides on it, and a product may hold for thousands of orders, so a
    /// copy shares this map's nodes instead of cloning them (the snapshot
    /// format is the same as a `BTreeMap`'s).
    pub held: OrdMap<OrderId, Quantity>,
    /// Orders answered last: a retry within the window is answered by what
    /// was decided then.
    pub recently_answered: RecentlyAnswered,
}

impl ActiveProduct {
    /// How many orders this product remembers, held or answered.
    pub fn remembered_orders(&self) -> usize {
        self.held.len() + self.recently_answered.len()
    }

    /// Units this product holds for `order_id`.
    pub fn held_for(&self, order_id: OrderId) -> Option<Quantity> {
        self.held.get(&order_id).copied()
    }

    /// Whether a reserve for `order_id` was decided already (and is still
    /// known): it holds, or it was refused or released recently.
    fn answered(&self, order_id: OrderId) -> bool {
        self.held.contains_key(&order_id) || self.recently_answered.contains(order_id)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProductError {
    #[error("no such product")]
    NotFound,
    #[error("a product with this SKU exists")]
    DuplicateSku,
    #[error("the product id does not belong to the SKU")]
    IdMismatch,
    #[error("restocking {quantity} units would pass the maximum stock of {max}")]
    StockOverflow { quantity: u32, max: u32 },
}

impl Decider for Product {
    type State = ProductState;
    type Command = ProductCommand;
    type Event = ProductEvent;
    type Error = ProductError;

    fn decide(state: &ProductState, command: ProductCommand) -> Result<Vec<ProductEvent>, ProductError> {
        use ProductCommand as C;
        use ProductState::{Active, NotCreated};
        match (state, command) {
            (
                NotCreated,
                C::Create {
                    product_id,
                    sku,
                    name,
                    price,
                    initial_stock,
                    now,
                },
            ) => create(product_id, sku, name, price, initial_stock, now),
            (Active(_), C::Create { .. }) => Err(ProductError::DuplicateSku),
            (NotCreated, _) => Err(ProductError::NotFound),
            (Active(product), C::Rename { name, now }) => Ok(rename(product, name, now)),
            (Active(product), C::Reprice { price, now }) => Ok(reprice(product, price, now)),
            (Active(product), C::Restock { quantity, now }) => restock(product, quantity, now),
            (
                Active(product),
                C::Reserve {
                    order_id,
                    quantity,
                    now,
                },
            ) => Ok(reserve(product, order_id, quantity, now)),
            (Active(product), C::Release { order_id, now }) => release(product, order_id, now),
        }
    }

    fn evolve(state: ProductState, event: &ProductEvent) -> ProductState {
        match (state, event) {
            (
                ProductState::NotCreated,
                ProductEvent::Created {
                    product_id,
                    sku,
                    name,
                    price,
                    available,
                    ..
                },
            ) => ProductState::Active(ActiveProduct {
                product_id: *product_id,
                sku: sku.clone(),
                name: name.clone(),
                price: *price,
                available: *available,
                held: OrdMap::new(),
                recently_answered: RecentlyAnswered::default(),
            }),
            (ProductState::Active(product), event) => ProductState::Active(evolve_active(product, event)),
            (state, _) => state,
        }
    }
}

fn create(
    product_id: ProductId,
    sku: Sku,
    name: ProductName,
    price: Price,
    available: StockLevel,
    now: Timestamp,
) -> Result<Vec<ProductEvent>, ProductError> {
    if product_id != ProductId::for_sku(&sku) {
        return Err(ProductError::IdMismatch);
    }
    Ok(vec![ProductEvent::Created {
        product_id,
        sku,
        name,
        price,
        available,
        at: now,
    }])
}

fn rename(product: &ActiveProduct, name: ProductName, now: Timestamp) -> Vec<ProductEvent> {
    if name == product.name {
        return vec![];
    }
    vec![ProductEvent::Renamed {
        product_id: product.product_id,
        name,
        at: now,
    }]
}

fn reprice(product: &ActiveProduct, price: Price, now: Timestamp) -> Vec<ProductEvent> {
    if price == product.price {
        return vec![];
    }
    vec![ProductEvent::Repriced {
        product_id: product.product_id,
        price,
        at: now,
    }]
}

fn restock(
    product: &ActiveProduct,
    quantity: RestockQuantity,
    now: Timestamp,
) -> Result<Vec<ProductEvent>, ProductError> {
    let available = add_stock(product.available, quantity.get())?;
    Ok(vec![ProductEvent::Restocked {
        product_id: product.product_id,
        quantity: quantity.get(),
        available,
        at: now,
    }])
}

/// Holds stock for an order, or records the refusal; an order that asked
/// before is answered by what was decided then.
fn reserve(product: &ActiveProduct, order_id: OrderId, quantity: Quantity, now: Timestamp) -> Vec<ProductEvent> {
    if product.answered(order_id) {
        return vec![];
    }
    let event = match product.available.checked_sub(quantity.get()) {
        Some(available) => ProductEvent::StockReserved {
            product_id: product.product_id,
            order_id,
            quantity,
            unit_price: product.price,
            sku: product.sku.clone(),
            name: product.name.clone(),
            available,
            at: now,
        },
        None => ProductEvent::StockReservationRefused {
            product_id: product.product_id,
            order_id,
            requested: quantity,
            available: product.available,
            at: now,
        },
    };
    vec![event]
}

fn release(product: &ActiveProduct, order_id: OrderId, now: Timestamp) -> Result<Vec<ProductEvent>, ProductError> {
    let Some(quantity) = product.held_for(order_id) else {
        return Ok(vec![]);
    };
    // A reservation was taken out of `available`, and `available` plus
    // everything reserved never passes the maximum: this cannot fail on a
    // consistent stream, but a corrupt one gets an error, not a panic.
    let available = add_stock(product.available, quantity.get())?;
    Ok(vec![ProductEvent::StockReleased {
        product_id: product.product_id,
        order_id,
        quantity,
        available,
        at: now,
    }])
}

fn add_stock(available: StockLevel, units: u32) -> Result<StockLevel, ProductError> {
    available.checked_add(units).ok_or(ProductError::StockOverflow {
        quantity: units,
        max: StockLevel::MAX,
    })
}

fn evolve_active(mut product: ActiveProduct, event: &ProductEvent) -> ActiveProduct {
    match event {
        ProductEvent::Created { .. } => {}
        ProductEvent::Renamed { name, .. } => product.name = name.clone(),
        ProductEvent::Repriced { price, .. } => product.price = *price,
        ProductEvent::Restocked { available, .. } => product.available = *available,
        ProductEvent::StockReserved {
            order_id,
            quantity,
            available,
            ..
        } => {
            product.held.insert(*order_id, *quantity);
            product.available = *available;
        }
        ProductEvent::StockReservationRefused { order_id, .. } => {
            product.recently_answered.record(*order_id);
        }
        ProductEvent::StockReleased {
            order_id, available, ..
        } => {
            product.held.remove(order_id);
            product.recently_answered.record(*order_id);
            product.available = *available;
        }
    }
    product
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::assert_round_trips;
    use crate::product::RECENTLY_ANSWERED;

    fn now() -> Timestamp {
        chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap()
    }

    fn sku() -> Sku {
        Sku::parse("MUG-1").unwrap()
    }

    fn create(stock: i64) -> ProductCommand {
        ProductCommand::Create {
            product_id: ProductId::for_sku(&sku()),
            sku: sku(),
            name: ProductName::parse("Mug").unwrap(),
            price: Price::from_minor_units(1_250).unwrap(),
            initial_stock: StockLevel::parse_field("stock", stock).unwrap(),
            now: now(),
        }
    }

    fn order(n: u128) -> OrderId {
        OrderId::from_uuid(uuid::Uuid::from_u128(n))
    }

    fn restock(units: i64) -> RestockQuantity {
        RestockQuantity::parse_field("quantity", units).unwrap()
    }

    fn quantity(units: i64) -> Quantity {
        Quantity::parse_field("quantity", units).unwrap()
    }

    /// Given `history`, decides `command` and returns only the new events.
    fn given_when(history: &[ProductEvent], command: ProductCommand) -> Result<Vec<ProductEvent>, ProductError> {
        Product::decide(&Product::fold(history), command)
    }

    fn created(stock: i64) -> Vec<ProductEvent> {
        given_when(&[], create(stock)).unwrap()
    }

    fn with(mut history: Vec<ProductEvent>, command: ProductCommand) -> Vec<ProductEvent> {
        let new = given_when(&history, command).unwrap();
        history.extend(new);
        history
    }

    fn active(history: &[ProductEvent]) -> ActiveProduct {
        match Product::fold(history) {
            ProductState::Active(product) => product,
            ProductState::NotCreated => panic!("product not created"),
        }
    }

    #[test]
    fn creates_a_product_with_its_initial_stock() {
        let product = active(&created(10));
        assert_eq!(product.available.get(), 10);
        assert_eq!(product.price.money().minor_units(), 1_250);
    }

    #[test]
    fn refuses_a_duplicate_sku() {
        assert_eq!(given_when(&created(1), create(5)), Err(ProductError::DuplicateSku));
    }

    #[test]
    fn refuses_an_id_that_does_not_belong_to_the_sku() {
        let ProductCommand::Create {
            sku,
            name,
            price,
            initial_stock,
            now,
            ..
        } = create(1)
        else {
            unreachable!()
        };
        let command = ProductCommand::Create {
            product_id: ProductId::from_uuid(uuid::Uuid::nil()),
            sku,
            name,
            price,
            initial_stock,
            now,
        };
        assert_eq!(given_when(&[], command), Err(ProductError::IdMismatch));
    }

    #[test]
    fn refuses_every_command_on_a_missing_product() {
        let commands = [
            ProductCommand::Rename {
                name: ProductName::parse("x").unwrap(),
                now: now(),
            },
            ProductCommand::Reprice {
                price: Price::from_minor_units(1).unwrap(),
                now: now(),
            },
            ProductCommand::Restock {
                quantity: restock(1),
                now: now(),
            },
            ProductCommand::Reserve {
                order_id: order(1),
                quantity: quantity(1),
                now: now(),
            },
            ProductCommand::Release {
                order_id: order(1),
                now: now(),
            },
        ];
        for command in commands {
            assert_eq!(
                given_when(&[], command.clone()),
                Err(ProductError::NotFound),
                "case {command:?}"
            );
        }
    }

    #[test]
    fn renames_and_reprices_and_ignores_no_op_changes() {
        let history = with(
            created(1),
            ProductCommand::Rename {
                name: ProductName::parse("Big mug").unwrap(),
                now: now(),
            },
        );
        let history = with(
            history,
            ProductCommand::Reprice {
                price: Price::from_minor_units(999).unwrap(),
                now: now(),
            },
        );
        let product = active(&history);
        assert_eq!(product.name.as_str(), "Big mug");
        assert_eq!(product.price.money().minor_units(), 999);
        let same_name = ProductCommand::Rename {
            name: ProductName::parse("Big mug").unwrap(),
            now: now(),
        };
        assert_eq!(given_when(&history, same_name), Ok(vec![]));
        let same_price = ProductCommand::Reprice {
            price: Price::from_minor_units(999).unwrap(),
            now: now(),
        };
        assert_eq!(given_when(&history, same_price), Ok(vec![]));
    }

    #[test]
    fn restock_adds_units_and_refuses_overflow() {
        let history = with(
            created(3),
            ProductCommand::Restock {
                quantity: restock(4),
                now: now(),
            },
        );
        assert_eq!(active(&history).available.get(), 7);
        assert_eq!(
            given_when(
                &history,
                ProductCommand::Restock {
                    quantity: restock(i64::from(StockLevel::MAX)),
                    now: now()
                }
            ),
            Err(ProductError::StockOverflow {
                quantity: StockLevel::MAX,
                max: StockLevel::MAX
            })
        );
    }

    #[test]
    fn reserve_takes_stock_with_a_price_snapshot() {
        let history = with(
            created(10),
            ProductCommand::Reserve {
                order_id: order(1),
                quantity: quantity(4),
                now: now(),
            },
        );
        let Some(ProductEvent::StockReserved {
            unit_price, available, ..
        }) = history.last()
        else {
            panic!("expected a reservation, got {history:?}")
        };
        assert_eq!(unit_price.money().minor_units(), 1_250);
        assert_eq!(available.get(), 6);
    }

    #[test]
    fn reserve_is_idempotent_per_order() {
        let reserve = ProductCommand::Reserve {
            order_id: order(1),
            quantity: quantity(4),
            now: now(),
        };
        let history = with(created(10), reserve.clone());
        assert_eq!(given_when(&history, reserve), Ok(vec![]));
        assert_eq!(active(&history).available.get(), 6);
    }

    #[test]
    fn reserve_refuses_more_than_is_available_and_records_the_refusal() {
        let reserve = ProductCommand::Reserve {
            order_id: order(1),
            quantity: quantity(11),
            now: now(),
        };
        let history = with(created(10), reserve.clone());
        assert!(matches!(
            history.last(),
            Some(ProductEvent::StockReservationRefused { available, requested, .. })
                if available.get() == 10 && requested.get() == 11
        ));
        assert_eq!(active(&history).available.get(), 10);
        // A retry after a restock is still refused: the order saw a refusal.
        let history = with(
            history,
            ProductCommand::Restock {
                quantity: restock(5),
                now: now(),
            },
        );
        assert_eq!(given_when(&history, reserve), Ok(vec![]));
    }

    #[test]
    fn commands_decided_together_decide_what_they_decide_one_by_one() {
        let reserve = |n, units| ProductCommand::Reserve {
            order_id: order(n),
            quantity: quantity(units),
            now: now(),
        };
        let commands = vec![
            reserve(1, 2),
            create(3),     // refused: the product exists
            reserve(2, 2), // refused for stock: 1 unit left
            reserve(1, 2), // a retry: nothing new
            ProductCommand::Release {
                order_id: order(1),
                now: now(),
            },
            reserve(3, 3),
        ];
        let (together, state) = Product::decide_each(Product::fold(&created(3)), commands.clone());
        let mut history = created(3);
        let mut one_by_one = Vec::new();
        for command in commands {
            let outcome = given_when(&history, command);
            history.extend(outcome.clone().unwrap_or_default());
            one_by_one.push(outcome);
        }
        assert_eq!(together, one_by_one);
        assert_eq!(state, Product::fold(&history));
        assert_eq!(together[1], Err(ProductError::DuplicateSku));
        assert!(matches!(
            together[2].as_deref(),
            Ok([ProductEvent::StockReservationRefused { .. }])
        ));
        assert_eq!(together[3], Ok(vec![]));
        assert_eq!(active(&history).held_for(order(3)), Some(quantity(3)));
    }

    #[test]
    fn reserve_may_take_the_last_unit_but_never_goes_below_zero() {
        let history = with(
            created(2),
            ProductCommand::Reserve {
                order_id: order(1),
                quantity: quantity(2),
                now: now(),
            },
        );
        assert_eq!(active(&history).available.get(), 0);
        let history = with(
            history,
            ProductCommand::Reserve {
                order_id: order(2),
                quantity: quantity(1),
                now: now(),
            },
        );
        assert!(matches!(
            history.last(),
            Some(ProductEvent::StockReservationRefused { .. })
        ));
        assert_eq!(active(&history).available.get(), 0);
    }

    #[test]
    fn release_returns_the_reserved_units_once() {
        let history = with(
            created(10),
            ProductCommand::Reserve {
                order_id: order(1),
                quantity: quantity(4),
                now: now(),
            },
        );
        let release = ProductCommand::Release {
            order_id: order(1),
            now: now(),
        };
        let history = with(history, release.clone());
        assert_eq!(active(&history).available.get(), 10);
        assert_eq!(active(&history).held_for(order(1)), None);
        assert_eq!(given_when(&history, release), Ok(vec![]));
    }

    #[test]
    fn a_released_order_cannot_reserve_again() {
        let reserve = ProductCommand::Reserve {
            order_id: order(1),
            quantity: quantity(4),
            now: now(),
        };
        let history = with(created(10), reserve.clone());
        let history = with(
            history,
            ProductCommand::Release {
                order_id: order(1),
                now: now(),
            },
        );
        assert_eq!(given_when(&history, reserve), Ok(vec![]));
        assert_eq!(active(&history).available.get(), 10);
    }

    #[test]
    fn release_without_a_reservation_decides_nothing() {
        let release = ProductCommand::Release {
            order_id: order(9),
            now: now(),
        };
        assert_eq!(given_when(&created(10), release), Ok(vec![]));
    }

    /// Reserves one unit for order `n` and, unless `keep`, releases it.
    fn order_passes(history: Vec<ProductEvent>, n: u128, keep: bool) -> Vec<ProductEvent> {
        let history = with(
            history,
            ProductCommand::Reserve {
                order_id: order(n),
                quantity: quantity(1),
                now: now(),
            },
        );
        if keep {
            return history;
        }
        with(
            history,
            ProductCommand::Release {
                order_id: order(n),
                now: now(),
            },
        )
    }

    #[test]
    fn a_product_remembers_a_bounded_number_of_ended_orders() {
        let mut state = Product::fold(&created(5));
        for n in 0..5_000 {
            for command in [
                ProductCommand::Reserve {
                    order_id: order(n),
                    quantity: quantity(1),
                    now: now(),
                },
                ProductCommand::Release {
                    order_id: order(n),
                    now: now(),
                },
                ProductCommand::Reserve {
                    order_id: order(1_000_000 + n),
                    quantity: quantity(1000),
                    now: now(),
                },
            ] {
                let events = Product::decide(&state, command).unwrap();
                assert_eq!(events.len(), 1);
                state = events.iter().fold(state, Product::evolve);
            }
        }
        let ProductState::Active(product) = state else {
            panic!("product not created")
        };
        assert_eq!(product.available.get(), 5);
        assert!(
            product.remembered_orders() <= RECENTLY_ANSWERED,
            "remembers {} orders after 10,000 ended ones",
            product.remembered_orders()
        );
    }

    #[test]
    fn a_held_reservation_outlives_any_number_of_other_orders() {
        let mut history = order_passes(created(10), 1, true);
        for n in 2..(RECENTLY_ANSWERED as u128 + 100) {
            history = order_passes(history, n, false);
        }
        assert_eq!(active(&history).held_for(order(1)), Some(quantity(1)));
        let history = with(
            history,
            ProductCommand::Release {
                order_id: order(1),
                now: now(),
            },
        );
        assert_eq!(active(&history).available.get(), 10);
        // Released long ago, it is no longer held: a late release again
        // decides nothing, whatever the product still remembers.
        let mut history = history;
        for n in 100_000..(100_000 + RECENTLY_ANSWERED as u128 + 10) {
            history = order_passes(history, n, false);
        }
        let late = ProductCommand::Release {
            order_id: order(1),
            now: now(),
        };
        assert_eq!(given_when(&history, late), Ok(vec![]));
    }

    #[test]
    fn the_state_round_trips_through_a_snapshot() {
        let history = order_passes(order_passes(created(10), 1, true), 2, false);
        let history = with(
            history,
            ProductCommand::Reserve {
                order_id: order(3),
                quantity: quantity(1000),
                now: now(),
            },
        );
        let state = Product::fold(&history);
        let encoded = serde_json::to_vec(&state).unwrap();
        let decoded: ProductState = serde_json::from_slice(&encoded).unwrap();
        assert_eq!(decoded, state);
        let ProductState::Active(product) = &decoded else {
            panic!("product not created")
        };
        for retry in [order(2), order(3)] {
            let again = ProductCommand::Reserve {
                order_id: retry,
                quantity: quantity(1),
                now: now(),
            };
            assert_eq!(Product::decide(&decoded, again), Ok(vec![]), "order {retry:?}");
        }
        assert_eq!(product.held_for(order(1)), Some(quantity(1)));
    }

    #[test]
    fn events_round_trip_through_the_store_encoding() {
        let history = with(
            created(10),
            ProductCommand::Restock {
                quantity: restock(1),
                now: now(),
            },
        );
        let history = with(
            history,
            ProductCommand::Rename {
                name: ProductName::parse("Cup").unwrap(),
                now: now(),
            },
        );
        let history = with(
            history,
            ProductCommand::Reprice {
                price: Price::from_minor_units(5).unwrap(),
                now: now(),
            },
        );
        let history = with(
            history,
            ProductCommand::Reserve {
                order_id: order(1),
                quantity: quantity(3),
                now: now(),
            },
        );
        let history = with(
            history,
            ProductCommand::Reserve {
                order_id: order(2),
                quantity: quantity(1000),
                now: now(),
            },
        );
        let history = with(
            history,
            ProductCommand::Release {
                order_id: order(1),
                now: now(),
            },
        );
        assert_round_trips(&history);
    }

    /// `held` is kept as a snapshot in the shape a `BTreeMap` had (a JSON
    /// object keyed by order id), so snapshots written before it became a
    /// persistent map still load, and the snapshot version stays.
    #[test]
    fn held_orders_keep_the_snapshot_shape_of_a_btree_map() {
        let mut history = created(100);
        for n in [3, 1, 2] {
            history = with(
                history,
                ProductCommand::Reserve {
                    order_id: order(n),
                    quantity: quantity(n as i64),
                    now: now(),
                },
            );
        }
        let product = active(&history);
        let as_btree_map: std::collections::BTreeMap<OrderId, Quantity> = product
            .held
            .iter()
            .map(|(order_id, quantity)| (*order_id, *quantity))
            .collect();
        assert_eq!(as_btree_map.len(), 3);

        let written = serde_json::to_value(&product.held).unwrap();
        assert_eq!(written, serde_json::to_value(&as_btree_map).unwrap());
        assert!(written.is_object(), "{written}");

        let state = ProductState::Active(product.clone());
        let mut old_snapshot = serde_json::to_value(&state).unwrap();
        old_snapshot["Active"]["held"] = serde_json::to_value(&as_btree_map).unwrap();
        let loaded: ProductState = serde_json::from_value(old_snapshot).unwrap();
        assert_eq!(loaded, state);
    }
}
