//! Administrators changing users' roles: decided on the roster of
//! administrators first, where the last administrator is guarded, then on
//! the account, whose `AccountRoleChanged` retires the user's earlier
//! tokens (see [`domain::account::administrators`] for what is
//! guaranteed under concurrency).

use domain::account::administrators::{ROSTER, RosterCommand, RosterError};
use domain::account::{AccountCommand, AccountError, AccountState, Role};
use domain::ids::UserId;
use event_store::Position;

use super::{Accounts, AccountsError};
use crate::aggregates::{Causation, CommandError};

/// Why a role change was not made: the roster's refusal (or its store), or
/// the account's.
#[derive(Debug, thiserror::Error)]
pub enum RoleChangeError {
    #[error(transparent)]
    Roster(CommandError<RosterError>),
    #[error(transparent)]
    Account(#[from] AccountsError),
}

/// The account's role after the change, and the position of its last
/// event: the role change's, or the one before when nothing changed.
pub struct RoleChanged {
    pub role: Role,
    pub position: Option<Position>,
}

impl Accounts {
    /// Gives `user_id` the role `role`, as the administrator `actor` asks.
    /// Asking for the role held already appends nothing (a retry completes
    /// what a crash left half done).
    pub async fn change_role(
        &self,
        user_id: UserId,
        role: Role,
        actor: UserId,
        causation: Causation,
    ) -> Result<RoleChanged, RoleChangeError> {
        if matches!(self.accounts.load(user_id).await?.state, AccountState::Unregistered) {
            return Err(CommandError::Refused(AccountError::NotFound).into());
        }
        let now = chrono::Utc::now();
        self.roster
            .execute(ROSTER, causation, || roster_command(user_id, role, actor, now))
            .await
            .map_err(RoleChangeError::Roster)?;
        let decided = self
            .accounts
            .execute(user_id, causation, || AccountCommand::ChangeRole { role, now })
            .await?;
        Ok(RoleChanged {
            role,
            position: decided.position,
        })
    }
}

fn roster_command(user_id: UserId, role: Role, actor: UserId, now: domain::Timestamp) -> RosterCommand {
    match role {
        Role::Admin => RosterCommand::Appoint {
            user_id,
            by: Some(actor),
            now,
        },
        Role::Customer => RosterCommand::Dismiss {
            user_id,
            by: actor,
            now,
        },
    }
}
