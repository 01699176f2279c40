//! The views as sea-orm entities, for the projectors that write them and
//! the query API that reads them.

pub mod checkpoints;
pub mod order_lines;
pub mod orders;
pub mod parked_events;
pub mod products;
pub mod projection_generations;
pub mod projection_leases;
pub mod revoked_tokens;
pub mod users;
