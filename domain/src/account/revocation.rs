//! Revoking one access token: what `POST /auth/logout` does to the token
//! it is called with.
//!
//! Each revoked token gets a stream of its own, `token-{jti}`, holding one
//! [`TokenEvent::Revoked`]. Why not an event on the account's stream:
//! every event there raises the credential version, which would log the
//! user out everywhere; and a verifier would have to read the whole
//! stream to find one token id. A stream per token is looked up with one
//! indexed `last_revision` by the command API, and its event carries the
//! token's expiry, so the views keep the revocation only while the token
//! could still be presented (`revoked_tokens`).

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Timestamp;
use crate::decider::Decider;
use crate::event::DomainEvent;
use crate::ids::UserId;

/// The revocation of one access token.
pub struct AccessToken;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenCommand {
    /// The token `token_id` (its `jti`), of `user_id`, valid until
    /// `expires_at`, stops working.
    Revoke {
        token_id: Uuid,
        user_id: UserId,
        expires_at: Timestamp,
        now: Timestamp,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum TokenState {
    #[default]
    Valid,
    Revoked {
        user_id: UserId,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Token ids are random, so this is a forged or mixed-up request.
    #[error("the token belongs to another user")]
    OtherUser,
}

/// What happened to a token. Type names are stable: never rename them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum TokenEvent {
    #[serde(rename = "AccessTokenRevoked", rename_all = "camelCase")]
    Revoked {
        token_id: Uuid,
        user_id: UserId,
        /// The token's own expiry: past it the revocation can be forgotten.
        expires_at: Timestamp,
        at: Timestamp,
    },
}

impl DomainEvent for TokenEvent {
    const CATEGORY: &'static str = "token";
    const EVENT_TYPES: &'static [&'static str] = &["AccessTokenRevoked"];
}

impl Decider for AccessToken {
    type State = TokenState;
    type Command = TokenCommand;
    type Event = TokenEvent;
    type Error = TokenError;

    /// Revoking a revoked token again changes nothing (a retried logout).
    fn decide(state: &TokenState, command: TokenCommand) -> Result<Vec<TokenEvent>, TokenError> {
        let TokenCommand::Revoke {
            token_id,
            user_id,
            expires_at,
            now,
        } = command;
        match state {
            TokenState::Valid => Ok(vec![TokenEvent::Revoked {
                token_id,
                user_id,
                expires_at,
                at: now,
            }]),
            TokenState::Revoked { user_id: holder } if *holder == user_id => Ok(vec![]),
            TokenState::Revoked { .. } => Err(TokenError::OtherUser),
        }
    }

    fn evolve(_state: TokenState, event: &TokenEvent) -> TokenState {
        let TokenEvent::Revoked { user_id, .. } = event;
        TokenState::Revoked { user_id: *user_id }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::assert_round_trips;

    fn revoke(user: u128) -> TokenCommand {
        let now = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        TokenCommand::Revoke {
            token_id: Uuid::from_u128(7),
            user_id: UserId::from_uuid(Uuid::from_u128(user)),
            expires_at: now + chrono::Duration::hours(1),
            now,
        }
    }

    #[test]
    fn a_valid_token_is_revoked_once() {
        let events = AccessToken::decide(&TokenState::Valid, revoke(1)).unwrap();
        assert!(matches!(&events[..], [TokenEvent::Revoked { .. }]));
        let state = AccessToken::fold(&events);
        assert_eq!(AccessToken::decide(&state, revoke(1)), Ok(vec![]), "again: nothing new");
        assert_round_trips(&events);
    }

    #[test]
    fn refuses_to_revoke_another_users_token() {
        let state = AccessToken::fold(&AccessToken::decide(&TokenState::Valid, revoke(1)).unwrap());
        assert_eq!(AccessToken::decide(&state, revoke(2)), Err(TokenError::OtherUser));
    }
}
