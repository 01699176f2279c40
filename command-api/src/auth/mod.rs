//! Credentials: password hashing and signed access tokens.

pub mod bearer;
pub mod passwords;
pub mod tokens;
