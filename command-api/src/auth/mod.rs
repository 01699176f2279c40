//! Credentials: password hashing, signed access tokens and the credential
//! versions that retire older tokens.

pub mod argon2id;
mod buckets;
pub mod passwords;
pub mod throttle;
pub mod tokens;
pub mod versions;

pub use buckets::Budget;
