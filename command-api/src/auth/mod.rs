//! Credentials: password hashing, signed access tokens and the credential
//! versions that retire older tokens.

mod buckets;
mod hash_queue;
pub mod passwords;
pub mod throttle;
pub mod tokens;
pub mod versions;

pub use buckets::Budget;
