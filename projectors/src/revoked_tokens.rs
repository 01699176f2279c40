//! The users projection's second table: access tokens logged out one by one
//! (`revoked_tokens`), which the query API and the admin API check each
//! token's id against.
//!
//! A row is only needed while its token could still be presented, so each
//! batch forgets the rows whose token expired more than [`KEPT_PAST_EXPIRY`]
//! before the latest event time of the batch. That cutoff comes from the
//! log, not the clock, so a rebuild from the log leaves the same rows as
//! the live projection (unless the command API's clocks disagree by more
//! than the margin).

use chrono::TimeDelta;
use domain::Timestamp;
use domain::account::revocation::TokenEvent;
use sea_orm::sea_query::{Alias, Expr};
use sea_orm::{DbErr, EntityTrait, ExprTrait, QueryFilter, QueryTrait};
use views::tables::revoked_tokens;

use crate::generations::Writer;
use crate::rows;

/// How long a row outlives its token: beyond the verifiers' 30 s leeway
/// and any plausible clock skew between command API replicas.
pub const KEPT_PAST_EXPIRY: TimeDelta = TimeDelta::hours(1);

/// The rows the revocations in `events` make.
pub fn rows_of(events: &[TokenEvent]) -> Vec<revoked_tokens::Model> {
    let row = |event: &TokenEvent| {
        let TokenEvent::Revoked {
            token_id,
            user_id,
            expires_at,
            ..
        } = event;
        revoked_tokens::Model {
            token_id: *token_id,
            user_id: user_id.as_uuid(),
            expires_at: *expires_at,
        }
    };
    events.iter().map(row).collect()
}

/// Writes the revocations of a batch and forgets the rows of tokens that
/// expired [`KEPT_PAST_EXPIRY`] before `latest`, the batch's latest event
/// time (none: nothing is forgotten).
pub async fn write(writer: &Writer<'_>, events: &[TokenEvent], latest: Option<Timestamp>) -> Result<(), DbErr> {
    rows::upsert::<revoked_tokens::Entity>(writer, rows_of(events)).await?;
    let Some(latest) = latest else {
        return Ok(());
    };
    let mut forget =
        revoked_tokens::Entity::delete_many().filter(Expr::col(Alias::new("expires_at")).lt(latest - KEPT_PAST_EXPIRY));
    QueryTrait::query(&mut forget).from_table(Alias::new(writer.table("revoked_tokens")));
    forget.exec(writer.transaction).await?;
    Ok(())
}
