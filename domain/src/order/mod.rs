//! Orders: placed by a customer, confirmed with a price snapshot or rejected
//! with a reason per product by the order saga, and cancelled by their owner.
//!
//! The stream is `order-{OrderId}`.

pub mod contact;
mod decider;
mod events;
mod lines;
mod status;

pub use contact::{Customer, ShippingAddress};
pub use decider::{Order, OrderCommand, OrderError, OrderState, PlaceOrder, PlacedOrder};
pub use events::{LineFailure, OrderEvent, PricedLine, RejectionReason, ReservedLine};
pub use lines::{OrderLine, OrderLines};
pub use status::{OrderStatus, PaymentStatus, UnknownStatus};
