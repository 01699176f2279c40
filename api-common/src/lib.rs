//! What the command API and the query API share, so that both speak the
//! same HTTP: problem details for every error, JSON bodies checked against
//! their schema, a body size limit, and bearer access tokens verified with
//! the public key alone.

pub mod bearer;
pub mod body_limit;
pub mod config;
pub mod health;
pub mod json_body;
pub mod listener;
pub mod metrics;
pub mod order_schema;
pub mod problem;
pub mod process;
pub mod routes;
pub mod serve;
pub mod verifier;
