//! Catalog and inventory: one aggregate per product, holding its stock and
//! the reservations orders have on it.
//!
//! The stream is `product-{ProductId}`, with the id derived from the SKU, so a
//! duplicate SKU is refused atomically by the store as well as by decide.

mod answered;
mod decider;
mod events;
mod values;

pub use answered::{RECENTLY_ANSWERED, RecentlyAnswered};
pub use decider::{ActiveProduct, Product, ProductCommand, ProductError, ProductState};
pub use events::ProductEvent;
pub use values::{ProductName, Sku};
