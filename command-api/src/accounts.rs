//! Registration, login, and the configured administrator; a user's own
//! credentials (`credentials.rs`) and administrators' role changes
//! (`roles.rs`).

mod credentials;
mod roles;

pub use credentials::PasswordChanged;
pub use roles::{RoleChangeError, RoleChanged};

use std::net::IpAddr;
use std::sync::Arc;

use domain::account::administrators::{Administrators, ROSTER, RosterCommand};
use domain::account::revocation::AccessToken as RevokedToken;
use domain::account::{Account, AccountCommand, AccountError, AccountState, DisplayName, Password, Role, Username};
use domain::ids::UserId;
use event_store::{EventStore, Position};

use crate::aggregates::{Aggregates, Causation, CommandError};
use crate::auth::passwords::{HashingError, Passwords};
use crate::auth::throttle::{Throttle, Throttled};
use crate::auth::tokens::Tokens;
use crate::auth::versions::StoreVersions;

/// What the account commands fail with; a taken username is the
/// aggregate's refusal.
pub type AccountsError = CommandError<AccountError>;

/// What a login, a registration or a password change fails with: refused
/// before its password was hashed, or failed as a command.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Too many attempts from this client or for this username.
    #[error("too many attempts: retry in {:?}", .0.0)]
    Throttled(Throttled),
    /// The password hashing queue is full.
    #[error(transparent)]
    Busy(HashingError),
    #[error(transparent)]
    Command(#[from] AccountsError),
}

impl From<Throttled> for AuthError {
    fn from(throttled: Throttled) -> Self {
        Self::Throttled(throttled)
    }
}

impl From<HashingError> for AuthError {
    fn from(error: HashingError) -> Self {
        match error {
            HashingError::Busy(_) => Self::Busy(error),
            HashingError::Failed(_) => Self::Command(AccountsError::internal(error)),
        }
    }
}

impl From<domain::validation::InvalidField> for AuthError {
    fn from(invalid: domain::validation::InvalidField) -> Self {
        Self::Command(invalid.into())
    }
}

/// Another aggregate's command error as an account command's: its refusal,
/// which the caller does not expect, becomes internal; the rest keep their
/// kind.
fn unexpected_refusal<E: std::error::Error + Send + Sync + 'static>(error: CommandError<E>) -> AccountsError {
    match error {
        CommandError::Refused(refusal) => AccountsError::internal(refusal),
        CommandError::Invalid(field) => CommandError::Invalid(field),
        CommandError::Contention(stream) => CommandError::Contention(stream),
        CommandError::Unavailable(error) => CommandError::Unavailable(error),
        CommandError::Internal(error) => CommandError::Internal(error),
    }
}

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
    /// Tokens logged out one by one.
    revoked: Aggregates<RevokedToken>,
    /// Who may change roles, and the last administrator's guard.
    roster: Aggregates<Administrators>,
    passwords: Passwords,
    tokens: Arc<Tokens>,
    versions: StoreVersions,
    /// Budgets of attempts per username and per client address.
    throttle: Throttle,
}

impl Accounts {
    pub fn new(
        store: &Arc<dyn EventStore>,
        passwords: Passwords,
        tokens: Arc<Tokens>,
        versions: StoreVersions,
        throttle: Throttle,
    ) -> Self {
        Self {
            accounts: Aggregates::new(Arc::clone(store)),
            revoked: Aggregates::new(Arc::clone(store)),
            roster: Aggregates::new(Arc::clone(store)),
            passwords,
            tokens,
            versions,
            throttle,
        }
    }

    /// Registers a customer, charging `client`'s registration budget just
    /// before the password is hashed.
    pub async fn register(
        &self,
        username: &str,
        password: &str,
        display_name: &str,
        causation: Causation,
        client: IpAddr,
    ) -> Result<Registered, AuthError> {
        let username = Username::parse(username)?;
        let password = Password::parse(password)?;
        let display_name = DisplayName::parse(display_name)?;
        let user_id = UserId::for_username(&username);
        // Refuse a taken name before spending a hash on it; the append
        // below still decides races.
        if matches!(self.accounts.load(user_id).await?.state, AccountState::Registered(_)) {
            return Err(CommandError::Refused(AccountError::UsernameTaken).into());
        }
        let registration = self.throttle.register(client)?;
        let password_hash = match self.passwords.hash(password).await {
            Ok(hash) => hash,
            Err(error) => {
                registration.refund();
                return Err(error.into());
            }
        };
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
    ///
    /// The token carries the account's credential version read *before*
    /// the account: a password change racing the login can only make the
    /// token older than the account (refused), never let a token checked
    /// against the old password look current.
    ///
    /// The attempt is charged to the username's and `client`'s budgets
    /// before anything is read or hashed; refused, it costs no hash.
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        client: IpAddr,
    ) -> Result<Option<AccessToken>, AuthError> {
        let username = Username::parse(username).ok();
        let attempt = self.throttle.login(username.as_ref(), client)?;
        let checked = match self.check_password(username.as_ref(), password).await {
            Ok(checked) => checked,
            Err(error) => {
                attempt.refund();
                return Err(error);
            }
        };
        let Some((account, version)) = checked else {
            attempt.failed();
            return Ok(None);
        };
        attempt.succeeded();
        Ok(Some(self.issue(&account, version)?))
    }

    /// A token for `account` at credential `version`, which must have been
    /// read before the account (see [`Accounts::login`]).
    fn issue(&self, account: &domain::account::RegisteredAccount, version: u64) -> Result<AccessToken, AccountsError> {
        let token = self
            .tokens
            .issue(account.user_id.as_uuid(), account.role, version, chrono::Utc::now())
            .map_err(AccountsError::internal)?;
        Ok(AccessToken {
            token,
            expires_in_seconds: self.tokens.lifetime().as_secs(),
        })
    }

    /// The account `username` names and its credential version when
    /// `password` is its password; `None` otherwise (an unknown user is
    /// checked against a dummy hash, in the same time).
    async fn check_password(
        &self,
        username: Option<&Username>,
        password: &str,
    ) -> Result<Option<(domain::account::RegisteredAccount, u64)>, AuthError> {
        let (account, version) = match username {
            Some(username) => self.load_with_version(UserId::for_username(username)).await?,
            None => (None, 0),
        };
        let hash = account.as_ref().map(|a| a.password_hash.clone());
        let verified = self.passwords.verify(password.to_owned(), hash).await?;
        Ok(account.filter(|_| verified).map(|account| (account, version)))
    }

    /// Makes sure `username` exists as an administrator who logs in with
    /// `password`: registers it, or promotes it and resets its password;
    /// and that the roster of administrators counts it (appointed first,
    /// see [`domain::account::administrators`]).
    ///
    /// Replicas starting together all do this at once. The account's id is
    /// the username's, so they race for one stream: a replica whose
    /// registration loses finds the account another registered, and goes
    /// on as with any existing account (its password matches when the
    /// replicas share their configuration, and nothing more is appended).
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
        self.roster
            .execute(ROSTER, causation, || RosterCommand::Appoint { user_id, by: None, now })
            .await
            .map_err(unexpected_refusal)?;
        let existing = match self.accounts.load(user_id).await?.state {
            AccountState::Registered(account) => account,
            AccountState::Unregistered => match self.register_admin(&username, password.clone(), causation).await? {
                Some(registered_by_another) => registered_by_another,
                None => return Ok(()),
            },
        };
        self.promote(existing, password, causation).await
    }

    /// Registers `username` as an administrator; the account another
    /// writer registered first under that name if it lost the race, else
    /// `None`.
    async fn register_admin(
        &self,
        username: &Username,
        password: Password,
        causation: Causation,
    ) -> Result<Option<domain::account::RegisteredAccount>, AccountsError> {
        let user_id = UserId::for_username(username);
        let display_name = DisplayName::parse(username.as_str())?;
        let password_hash = self.hash(password).await?;
        let now = chrono::Utc::now();
        let registered = self
            .accounts
            .execute(user_id, causation, || AccountCommand::Register {
                user_id,
                username: username.clone(),
                display_name: display_name.clone(),
                password_hash: password_hash.clone(),
                role: Role::Admin,
                now,
            })
            .await;
        match registered {
            Ok(_) => Ok(None),
            Err(CommandError::Refused(AccountError::UsernameTaken)) => match self.accounts.load(user_id).await?.state {
                AccountState::Registered(account) => Ok(Some(account)),
                AccountState::Unregistered => Err(AccountsError::internal("a taken username has no account")),
            },
            Err(error) => Err(error),
        }
    }

    /// Makes the registered `account` an administrator who logs in with
    /// `password`, appending only what changes.
    async fn promote(
        &self,
        account: domain::account::RegisteredAccount,
        password: Password,
        causation: Causation,
    ) -> Result<(), AccountsError> {
        let user_id = account.user_id;
        let now = chrono::Utc::now();
        let matches = self
            .passwords
            .verify(password.expose().to_owned(), Some(account.password_hash.clone()))
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

    /// The account, if registered, and its credential version, read first.
    async fn load_with_version(
        &self,
        user_id: UserId,
    ) -> Result<(Option<domain::account::RegisteredAccount>, u64), AccountsError> {
        let version = self.versions.of(user_id).await.map_err(AccountsError::internal)?;
        let account = match self.accounts.load(user_id).await?.state {
            AccountState::Registered(account) => Some(account),
            AccountState::Unregistered => None,
        };
        Ok((account, version.unwrap_or(0)))
    }

    async fn hash(&self, password: Password) -> Result<domain::account::PasswordHash, AccountsError> {
        self.passwords.hash(password).await.map_err(AccountsError::internal)
    }
}
