//! Credentials: password hashing, signed access tokens and the credential
//! versions that retire older tokens.

pub mod passwords;
pub mod tokens;
pub mod versions;
