//! User profiles: who registered, under which name and role, and the
//! account's credential version (its stream's event count), which the query
//! API and the admin API check tokens against; and the tokens logged out
//! one by one (`revoked_tokens.rs`). Password hashes are never copied here.

use async_trait::async_trait;
use domain::Timestamp;
use domain::account::revocation::TokenEvent;
use domain::account::{AccountEvent, Role};
use event_store::RecordedEvent;
use views::tables::users;

use crate::generations::Writer;
use crate::projection::{ApplyError, Key, Projection, Table, decode_all};
use crate::{revoked_tokens, rows};

pub struct Users;

pub fn role_name(role: Role) -> &'static str {
    match role {
        Role::Customer => "customer",
        Role::Admin => "admin",
    }
}

/// The user's row after `event`, the `version`th event of its account's
/// stream; `None` while the account is not registered.
pub fn evolve(row: Option<users::Model>, event: &AccountEvent, version: i64) -> Option<users::Model> {
    let row = match event {
        AccountEvent::Registered {
            user_id,
            username,
            display_name,
            role,
            at,
            ..
        } => Some(users::Model {
            user_id: user_id.as_uuid(),
            username: username.to_string(),
            display_name: display_name.to_string(),
            role: role_name(*role).to_owned(),
            registered_at: *at,
            credential_version: version,
        }),
        AccountEvent::RoleChanged { role, .. } => row.map(|row| users::Model {
            role: role_name(*role).to_owned(),
            ..row
        }),
        AccountEvent::PasswordChanged { .. } | AccountEvent::LoggedOutEverywhere { .. } => row,
    };
    row.map(|row| users::Model {
        credential_version: version,
        ..row
    })
}

fn user_id(event: &AccountEvent) -> uuid::Uuid {
    match event {
        AccountEvent::Registered { user_id, .. }
        | AccountEvent::PasswordChanged { user_id, .. }
        | AccountEvent::RoleChanged { user_id, .. }
        | AccountEvent::LoggedOutEverywhere { user_id, .. } => user_id.as_uuid(),
    }
}

fn account_event_at(event: &AccountEvent) -> Timestamp {
    match event {
        AccountEvent::Registered { at, .. }
        | AccountEvent::PasswordChanged { at, .. }
        | AccountEvent::RoleChanged { at, .. }
        | AccountEvent::LoggedOutEverywhere { at, .. } => *at,
    }
}

/// The latest time of the batch's account and token events.
fn latest(accounts: &[(AccountEvent, i64)], tokens: &[TokenEvent]) -> Option<Timestamp> {
    let token_times = tokens.iter().map(|TokenEvent::Revoked { at, .. }| *at);
    accounts
        .iter()
        .map(|(event, _)| account_event_at(event))
        .chain(token_times)
        .max()
}

/// The batch's account events, decoded, each with the number of events its
/// stream holds up to it (its revision + 1): the credential version.
fn versioned(events: &[RecordedEvent]) -> Result<Vec<(AccountEvent, i64)>, ApplyError> {
    let mut versioned = Vec::new();
    for recorded in events {
        let version = i64::try_from(recorded.revision.saturating_add(1)).unwrap_or(i64::MAX);
        for event in decode_all::<AccountEvent>(std::slice::from_ref(recorded))? {
            versioned.push((event, version));
        }
    }
    Ok(versioned)
}

/// The tables it owns.
const TABLES: &[Table] = &[
    Table {
        name: "users",
        key: &[Key::uuid("user_id")],
    },
    Table {
        name: "revoked_tokens",
        key: &[Key::uuid("token_id")],
    },
];

#[async_trait]
impl Projection for Users {
    fn name(&self) -> &'static str {
        views::projections::USERS
    }

    fn tables(&self) -> &'static [Table] {
        TABLES
    }

    async fn apply(&self, writer: &Writer<'_>, recorded: &[RecordedEvent]) -> Result<(), ApplyError> {
        let events = versioned(recorded)?;
        let revocations = decode_all::<TokenEvent>(recorded)?;
        let ids = events.iter().map(|(event, _)| user_id(event));
        let mut users = rows::load::<users::Entity, _>(writer, users::Column::UserId, ids, |row| row.user_id).await?;
        for (event, version) in &events {
            let id = user_id(event);
            if let Some(row) = evolve(users.remove(&id), event, *version) {
                users.insert(id, row);
            }
        }
        rows::upsert::<users::Entity>(writer, users.into_values()).await?;
        revoked_tokens::write(writer, &revocations, latest(&events, &revocations)).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use domain::account::{DisplayName, PasswordHash, Username};
    use domain::ids::UserId;

    use super::*;

    #[test]
    fn a_role_change_keeps_the_rest_of_the_profile() {
        let username = Username::parse("alice").unwrap();
        let user_id = UserId::for_username(&username);
        let at = chrono::Utc::now();
        let registered = AccountEvent::Registered {
            user_id,
            username,
            display_name: DisplayName::parse("Alice").unwrap(),
            password_hash: PasswordHash::from_phc("$argon2id$secret".to_owned()),
            role: Role::Customer,
            at,
        };
        let promoted = AccountEvent::RoleChanged {
            user_id,
            role: Role::Admin,
            at: at + chrono::Duration::seconds(1),
        };
        let row = evolve(evolve(None, &registered, 1), &promoted, 2).unwrap();
        assert_eq!(
            (
                row.username.as_str(),
                row.display_name.as_str(),
                row.role.as_str(),
                row.registered_at
            ),
            ("alice", "Alice", "admin", at)
        );
        assert_eq!(row.credential_version, 2);
        assert!(!format!("{row:?}").contains("argon2"), "no password hash in the view");
    }

    #[test]
    fn logging_out_everywhere_raises_the_credential_version_alone() {
        let username = Username::parse("bob").unwrap();
        let user_id = UserId::for_username(&username);
        let at = chrono::Utc::now();
        let registered = AccountEvent::Registered {
            user_id,
            username,
            display_name: DisplayName::parse("Bob").unwrap(),
            password_hash: PasswordHash::from_phc("$argon2id$secret".to_owned()),
            role: Role::Customer,
            at,
        };
        let before = evolve(None, &registered, 1).unwrap();
        let after = evolve(
            Some(before.clone()),
            &AccountEvent::LoggedOutEverywhere { user_id, at },
            2,
        )
        .unwrap();
        assert_eq!(
            after,
            users::Model {
                credential_version: 2,
                ..before
            }
        );
    }

    #[test]
    fn the_latest_time_of_a_batch_is_its_account_and_token_events_latest() {
        let user_id = UserId::for_username(&Username::parse("bob").unwrap());
        let early = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let late = early + chrono::Duration::minutes(5);
        let logout = AccountEvent::LoggedOutEverywhere { user_id, at: early };
        let revoked = TokenEvent::Revoked {
            token_id: uuid::Uuid::new_v4(),
            user_id,
            expires_at: late + chrono::Duration::hours(1),
            at: late,
        };
        assert_eq!(latest(&[(logout.clone(), 1)], &[revoked]), Some(late));
        assert_eq!(latest(&[(logout, 1)], &[]), Some(early));
        assert_eq!(latest(&[], &[]), None);
    }
}
