//! Accounts: registration, credentials and roles.
//!
//! The stream of an account is `account-{UserId}`, and the id is derived from
//! the username, so registering a taken username is refused by the event
//! store's "no stream" expectation as well as by [`Account`]'s decide.

pub mod administrators;
mod decider;
mod events;
pub mod revocation;
mod values;

pub use decider::{
    Account, AccountCommand, AccountError, AccountState, PasswordCheck, RegisteredAccount, check_password_change,
};
pub use events::AccountEvent;
pub use values::{DisplayName, Password, PasswordHash, Role, Username};
