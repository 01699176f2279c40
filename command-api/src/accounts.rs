//! Registration, login, and the configured administrator.

use std::sync::Arc;

use domain::account::{Account, AccountCommand, AccountError, AccountState, DisplayName, Password, Role, Username};
use domain::ids::UserId;
use event_store::Position;

use crate::aggregates::{Aggregates, Causation, CommandError};
use crate::auth::passwords::Passwords;
use crate::auth::tokens::Tokens;

/// What the account commands fail with; a taken username is the
/// aggregate's refusal.
pub type AccountsError = CommandError<AccountError>;

pub struct Registered {
    pub user_id: UserId,
    pub position: Position,
}

pub struct AccessToken {
    pub token: String,
    pub expires_in_seconds: u64,
}

pub struct Accounts {
    accounts: Aggregates<Account>,
    passwords: Passwords,
    tokens: Arc<Tokens>,
}

impl Accounts {
    pub fn new(accounts: Aggregates<Account>, passwords: Passwords, tokens: Arc<Tokens>) -> Self {
        Self {
            accounts,
            passwords,
            tokens,
        }
    }

    pub async fn register(
        &self,
        username: &str,
        password: &str,
        display_name: &str,
        causation: Causation,
    ) -> Result<Registered, AccountsError> {
        let username = Username::parse(username)?;
        let password = Password::parse(password)?;
        let display_name = DisplayName::parse(display_name)?;
        let user_id = UserId::for_username(&username);
        // Refuse a taken name before spending a hash on it; the append
        // below still decides races.
        if matches!(self.accounts.load(user_id).await?.state, AccountState::Registered(_)) {
            return Err(CommandError::Refused(AccountError::UsernameTaken));
        }
        let password_hash = self.hash(password).await?;
        let now = chrono::Utc::now();
        let decided = self
            .accounts
            .execute(user_id, causation, || AccountCommand::Register {
                user_id,
                username: username.clone(),
                display_name: display_name.clone(),
                password_hash: password_hash.clone(),
                role: Role::Customer,
                now,
            })
            .await?;
        let position = decided
            .position
            .ok_or_else(|| AccountsError::internal("registration appended nothing"))?;
        Ok(Registered { user_id, position })
    }

    /// A token for the account `username` with `password`; `None` when
    /// they do not match an account (the same answer, in the same time, for
    /// an unknown user and a wrong password).
    pub async fn login(&self, username: &str, password: &str) -> Result<Option<AccessToken>, AccountsError> {
        let account = match Username::parse(username) {
            Ok(username) => match self.accounts.load(UserId::for_username(&username)).await?.state {
                AccountState::Registered(account) => Some(account),
                AccountState::Unregistered => None,
            },
            Err(_) => None,
        };
        let hash = account.as_ref().map(|a| a.password_hash.clone());
        let verified = self
            .passwords
            .verify(password.to_owned(), hash)
            .await
            .map_err(AccountsError::internal)?;
        let Some(account) = account.filter(|_| verified) else {
            return Ok(None);
        };
        let token = self
            .tokens
            .issue(account.user_id.as_uuid(), account.role, chrono::Utc::now())
            .map_err(AccountsError::internal)?;
        Ok(Some(AccessToken {
            token,
            expires_in_seconds: self.tokens.lifetime().as_secs(),
        }))
    }

    /// Makes sure `username` exists as an administrator who logs in with
    /// `password`: registers it, or promotes it and resets its password.
    pub async fn ensure_admin(
        &self,
        username: &str,
        password: &str,
        causation: Causation,
    ) -> Result<(), AccountsError> {
        let username = Username::parse(username)?;
        let password = Password::parse(password)?;
        let user_id = UserId::for_username(&username);
        let now = chrono::Utc::now();
        let existing = match self.accounts.load(user_id).await?.state {
            AccountState::Registered(account) => account,
            AccountState::Unregistered => {
                let display_name = DisplayName::parse(username.as_str())?;
                let password_hash = self.hash(password).await?;
                self.accounts
                    .execute(user_id, causation, || AccountCommand::Register {
                        user_id,
                        username: username.clone(),
                        display_name: display_name.clone(),
                        password_hash: password_hash.clone(),
                        role: Role::Admin,
                        now,
                    })
                    .await?;
                return Ok(());
            }
        };
        let matches = self
            .passwords
            .verify(password.expose().to_owned(), Some(existing.password_hash.clone()))
            .await
            .map_err(AccountsError::internal)?;
        if !matches {
            let password_hash = self.hash(password).await?;
            self.accounts
                .execute(user_id, causation, || AccountCommand::ChangePassword {
                    password_hash: password_hash.clone(),
                    now,
                })
                .await?;
        }
        self.accounts
            .execute(user_id, causation, || AccountCommand::ChangeRole {
                role: Role::Admin,
                now,
            })
            .await?;
        Ok(())
    }

    async fn hash(&self, password: Password) -> Result<domain::account::PasswordHash, AccountsError> {
        self.passwords.hash(password).await.map_err(AccountsError::internal)
    }
}
