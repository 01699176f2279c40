//! A user's own credentials: changing the password, logging out.
//!
//! Both retire tokens through what every verifier checks already: a
//! password change or a logout everywhere is an event on the account's
//! stream, so it raises the credential version and every earlier token is
//! refused; a single logout revokes the token's id (`jti`) in a stream of
//! its own ([`domain::account::revocation`]), which the views copy into
//! `revoked_tokens`. The command API refuses at once; the query API and
//! the projectors' admin API within the users projection's lag plus
//! [`api_common::credentials::VERSION_CACHE_TTL`].

use std::net::IpAddr;

use api_common::verifier::Claims;
use domain::account::revocation::TokenCommand;
use domain::account::{
    AccountCommand, AccountError, AccountState, Password, PasswordCheck, RegisteredAccount, check_password_change,
};
use domain::ids::UserId;
use domain::validation::InvalidField;
use event_store::Position;

use super::{AccessToken, Accounts, AccountsError, AuthError, unexpected_refusal};
use crate::aggregates::{Causation, CommandError};
use crate::auth::throttle::LoginAttempt;

/// A changed password: where its event is, and a token carrying the new
/// credential version (every earlier one is refused).
pub struct PasswordChanged {
    pub position: Position,
    pub token: AccessToken,
}

impl Accounts {
    /// Changes `user_id`'s password from `current` to `new`.
    ///
    /// Throttled as a login of the account's username from `client`, from
    /// the same budgets: a wrong current password is a failed login, so
    /// this operation is no second way to guess passwords. A change the
    /// decider would refuse is refused before the new password is hashed.
    pub async fn change_password(
        &self,
        user_id: UserId,
        current: &str,
        new: &str,
        causation: Causation,
        client: IpAddr,
    ) -> Result<PasswordChanged, AuthError> {
        let new = Password::parse(new).map_err(|invalid| InvalidField::new("newPassword", invalid.problem))?;
        let AccountState::Registered(account) = self.accounts.load(user_id).await?.state else {
            return Err(CommandError::Refused(AccountError::NotFound).into());
        };
        let attempt = self.throttle.login(Some(&account.username), client)?;
        let check = match self.check(&account, current, &new).await {
            Ok(check) => check,
            Err(error) => {
                attempt.refund();
                return Err(error);
            }
        };
        judge(attempt, check_password_change(&account, &check))?;
        let password_hash = self.passwords.hash(new).await?;
        let now = chrono::Utc::now();
        let decided = self
            .accounts
            .execute(user_id, causation, || AccountCommand::ChangeOwnPassword {
                check: check.clone(),
                password_hash: password_hash.clone(),
                now,
            })
            .await?;
        let position = decided
            .position
            .ok_or_else(|| AccountsError::internal("a password change appended nothing"))?;
        let (account, version) = self.load_with_version(user_id).await?;
        let account = account.ok_or_else(|| AccountsError::internal("a changed account is gone"))?;
        Ok(PasswordChanged {
            position,
            token: self.issue(&account, version)?,
        })
    }

    /// The current password checked against `account`'s hash.
    async fn check(
        &self,
        account: &RegisteredAccount,
        current: &str,
        new: &Password,
    ) -> Result<PasswordCheck, AuthError> {
        let hash = account.password_hash.clone();
        let current_verified = self.passwords.verify(current.to_owned(), Some(hash.clone())).await?;
        Ok(PasswordCheck {
            checked_against: hash,
            current_verified,
            same_as_current: current == new.expose(),
        })
    }

    /// Logs out the token `claims` are of, or, `everywhere`, every token of
    /// its user: the position of the event that does it.
    pub async fn log_out(
        &self,
        claims: &Claims,
        everywhere: bool,
        causation: Causation,
    ) -> Result<Option<Position>, AccountsError> {
        let user_id = UserId::from_uuid(claims.sub);
        let now = chrono::Utc::now();
        if everywhere {
            let decided = self
                .accounts
                .execute(user_id, causation, || AccountCommand::LogOutEverywhere { now })
                .await?;
            return Ok(decided.position);
        }
        let expires_at = chrono::DateTime::from_timestamp(claims.exp, 0)
            .ok_or_else(|| AccountsError::internal("a verified token's expiry is no time"))?;
        let decided = self
            .revoked
            .execute(claims.jti, causation, || TokenCommand::Revoke {
                token_id: claims.jti,
                user_id,
                expires_at,
                now,
            })
            .await
            .map_err(unexpected_refusal)?;
        Ok(decided.position)
    }
}

/// Charges `attempt` as the decider's `verdict` says: a wrong current
/// password is a failed guess; a verified one resets the username's budget;
/// a check made against a hash replaced meanwhile judged nothing.
fn judge(attempt: LoginAttempt<'_>, verdict: Result<(), AccountError>) -> Result<(), AuthError> {
    match &verdict {
        Err(AccountError::WrongPassword) => attempt.failed(),
        Err(AccountError::PasswordChangedMeanwhile) => attempt.refund(),
        _ => attempt.succeeded(),
    }
    verdict.map_err(|refusal| AuthError::Command(CommandError::Refused(refusal)))
}
