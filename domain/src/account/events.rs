use serde::{Deserialize, Serialize};

use super::{DisplayName, PasswordHash, Role, Username};
use crate::Timestamp;
use crate::event::DomainEvent;
use crate::ids::UserId;

/// What happened to an account. Type names are stable: never rename them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum AccountEvent {
    #[serde(rename = "AccountRegistered", rename_all = "camelCase")]
    Registered {
        user_id: UserId,
        username: Username,
        display_name: DisplayName,
        password_hash: PasswordHash,
        role: Role,
        at: Timestamp,
    },
    #[serde(rename = "AccountPasswordChanged", rename_all = "camelCase")]
    PasswordChanged {
        user_id: UserId,
        password_hash: PasswordHash,
        at: Timestamp,
    },
    #[serde(rename = "AccountRoleChanged", rename_all = "camelCase")]
    RoleChanged { user_id: UserId, role: Role, at: Timestamp },
    /// The user logged out everywhere: like every event of the stream it
    /// raises the credential version, so every token issued before it is
    /// refused.
    #[serde(rename = "AccountLoggedOutEverywhere", rename_all = "camelCase")]
    LoggedOutEverywhere { user_id: UserId, at: Timestamp },
}

impl DomainEvent for AccountEvent {
    const CATEGORY: &'static str = "account";
    const EVENT_TYPES: &'static [&'static str] = &[
        "AccountRegistered",
        "AccountPasswordChanged",
        "AccountRoleChanged",
        "AccountLoggedOutEverywhere",
    ];
}
