//! The pure core of Shop.
//!
//! Everything here is synchronous and free of I/O: each aggregate is a
//! [`Decider`](decider::Decider) (`decide`, `evolve`, an initial state), the
//! order saga is a pure reaction, and values are parsed once at the boundary
//! into newtypes so that deciders only ever see valid input. Time and new ids
//! arrive inside the commands.

pub mod account;
pub mod decider;
pub mod event;
pub mod ids;
pub mod money;
pub mod order;
pub mod order_saga;
mod position;
pub mod product;
pub mod quantity;
pub mod search;
pub mod text;
pub mod trace_id;
pub mod validation;

pub use position::Position;

/// The moment a command is decided at; carried by every command and event.
pub type Timestamp = chrono::DateTime<chrono::Utc>;
