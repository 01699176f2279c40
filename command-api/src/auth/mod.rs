//! Credentials: password hashing and signed access tokens.

pub mod passwords;
pub mod tokens;
