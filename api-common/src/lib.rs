//! What the command API and the query API share, so that both speak the
//! same HTTP: problem details for every error, JSON bodies checked against
//! their schema, a body size limit, and bearer access tokens verified with
//! the public key alone.

pub mod bearer;
pub mod body_limit;
pub mod config;
pub mod connection;
pub mod credentials;
pub mod first_head;
pub mod health;
pub mod http_limits;
pub mod idle;
pub mod json_body;
pub mod lag;
pub mod listener;
pub mod metrics;
pub mod openapi_links;
pub mod order_schema;
pub mod problem;
pub mod process;
pub mod redact;
pub mod request_span;
pub mod rewind;
pub mod routes;
pub mod serve;
pub mod startup_wait;
pub mod trace_context;
pub mod verification_key;
pub mod verified_tokens;
pub mod verifier;
pub mod wait_cap;
