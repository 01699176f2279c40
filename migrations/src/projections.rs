//! The projections' names: the keys of their checkpoints and leases, the
//! `projection` label of their metrics, and what the query API waits for.

/// Products with their available stock (`products`).
pub const CATALOG: &str = "catalog";
/// User profiles (`users`).
pub const USERS: &str = "users";
/// Orders with their lines (`orders`, `order_lines`).
pub const ORDERS: &str = "orders";
