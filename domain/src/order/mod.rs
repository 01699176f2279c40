//! Orders: placed by a customer; confirmed with a price snapshot, rejected
//! with a reason per product, or refused as a whole by the order saga; paid
//! (settled), then closed; cancelled by their owner, or by the saga when
//! the payment window passes. See [`Order`] for every transition.
//!
//! The stream is `order-{OrderId}`.

pub mod contact;
mod decider;
mod events;
mod lines;
mod payment;
mod status;

pub use contact::{Customer, ShippingAddress};
pub use decider::{
    ConfirmedOrder, Order, OrderCommand, OrderError, OrderState, Payment, PlaceOrder, PlacedOrder,
    payment_window_expired,
};
pub use events::{LineFailure, OrderEvent, PricedLine, RejectionReason, ReservedLine};
pub use lines::{OrderLine, OrderLines};
pub use payment::{PaymentReference, Refusal};
pub use status::{OrderStatus, PaymentStatus, UnknownStatus};
