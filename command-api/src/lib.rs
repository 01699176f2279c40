//! The command side of Shop: HTTP commands (poem-openapi) that validate,
//! decide with the pure domain and append to the event store, plus the
//! order saga that reserves and releases stock.
//!
//! - `http/`: the API, one struct per resource; each turns the services'
//!   errors into problem details once;
//! - `accounts.rs`, `catalog.rs`, `orders.rs`, `settlement.rs`: the
//!   application services;
//! - `webhook.rs`: the payment provider's signed requests;
//! - `aggregates.rs`: load, decide, append, with optimistic concurrency, and
//!   `CommandError`, the one error of the services, which keeps its causes;
//! - `saga/`: the order saga's runner and its checkpoint;
//! - `auth/`: argon2id passwords and EdDSA access tokens;
//! - `startup.rs`, `config.rs`: wiring and configuration.

pub mod accounts;
pub mod aggregates;
pub mod auth;
pub mod catalog;
pub mod config;
pub mod http;
pub mod order_outcomes;
pub mod orders;
pub mod saga;
pub mod settlement;
pub mod startup;
pub mod webhook;
