//! The order saga's parked events, for administrators: the events it could
//! not handle after `POISON_ATTEMPTS` tries, each holding its order back
//! until it is retried (after a fix is deployed) or skipped.

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi, Tags};
use uuid::Uuid;

use super::problems;
use crate::saga::admin::{ParkedAdmin, ParkedError};
use crate::saga::parked::ParkedEvent;
use api_common::bearer::BearerAuth;
use api_common::problem::ProblemResponse;
use event_store::Position;

#[derive(Tags)]
enum Tag {
    /// The order saga's parked events (admins only).
    Saga,
}

/// An event the saga parked.
#[derive(Object)]
#[oai(rename_all = "camelCase")]
struct Parked {
    /// `saga`.
    subscriber: String,
    /// The event's position in the log (the token to retry or skip it).
    position: String,
    stream: String,
    /// Its number in its stream.
    revision: u64,
    event_type: String,
    /// The order held back until it is retried or skipped, when known.
    order_id: Option<Uuid>,
    /// Why it failed, the last time it was tried.
    error: String,
    /// The process that parked it (host:pid).
    parked_by: String,
    /// How many times it was tried.
    attempts: u32,
    parked_at: chrono::DateTime<chrono::Utc>,
}

impl From<ParkedEvent> for Parked {
    fn from(parked: ParkedEvent) -> Self {
        Self {
            subscriber: parked.subscriber,
            position: parked.position.to_string(),
            stream: parked.stream,
            revision: parked.revision,
            event_type: parked.event_type,
            order_id: parked.order_id.map(|id| id.as_uuid()),
            error: parked.error,
            parked_by: parked.instance,
            attempts: parked.attempts,
            parked_at: parked.parked_at,
        }
    }
}

#[derive(Object)]
struct ParkedList {
    /// Oldest first.
    parked: Vec<Parked>,
}

#[derive(ApiResponse)]
enum ListResponse {
    /// The parked events.
    #[oai(status = 200)]
    Ok(Json<ParkedList>),
}

#[derive(ApiResponse)]
enum ResolveResponse {
    /// Resolved: the record is gone, and the order it held back goes on.
    #[oai(status = 204)]
    Resolved,
}

problems! {
    /// The errors of `GET /saga/parked`.
    ListProblem {
        401 Unauthorized => "No valid access token.",
        403 Forbidden => "Only administrators see parked events.",
        500 Internal => "Something failed on our side.",
    }
    503 => "The event store is unavailable: retry after the number of seconds in `Retry-After`."
}

problems! {
    /// The errors of `POST /saga/parked/{position}/retry`.
    RetryProblem {
        401 Unauthorized => "No valid access token.",
        403 Forbidden => "Only administrators retry parked events.",
        404 NotFound => "No event is parked at this position (or it is no position at all).",
        409 Conflict => "The event still fails with the code deployed now: the error is in `detail`; the record stays, with one more attempt.",
        500 Internal => "Something failed on our side.",
    }
    503 => "The event store is unavailable: retry after the number of seconds in `Retry-After`."
}

problems! {
    /// The errors of `POST /saga/parked/{position}/skip`.
    SkipProblem {
        401 Unauthorized => "No valid access token.",
        403 Forbidden => "Only administrators skip parked events.",
        404 NotFound => "No event is parked at this position (or it is no position at all).",
        500 Internal => "Something failed on our side.",
    }
    503 => "The event store is unavailable: retry after the number of seconds in `Retry-After`."
}

impl From<ParkedError> for ProblemResponse {
    fn from(error: ParkedError) -> Self {
        match error {
            ParkedError::NotParked(position) => Self::not_found(format!("no event is parked at {position}")),
            ParkedError::StillFails(parked) => Self::conflict(
                "parked-event-fails",
                format!(
                    "the event at {} still fails (attempt {}): {}",
                    parked.position, parked.attempts, parked.error
                ),
            ),
            ParkedError::Unavailable(_) => {
                Self::unavailable("store-unavailable", "the event store is unavailable; retry", 1)
            }
            ParkedError::Internal(_) => Self::internal_from(&error),
        }
    }
}

fn admin(auth: &BearerAuth) -> Result<(), ProblemResponse> {
    if auth.is_admin() {
        Ok(())
    } else {
        Err(ProblemResponse::forbidden("only administrators manage parked events"))
    }
}

/// The position `raw` names. A path segment that is no position names no
/// parked event: 404, as the projectors' parked API answers (a 400 would
/// refuse a path its schema allows).
fn position(raw: &str) -> Result<Position, ProblemResponse> {
    raw.parse()
        .map_err(|_| ProblemResponse::not_found(format!("no event is parked at {raw:?}: it is no position")))
}

pub struct SagaParkedApi;

#[OpenApi]
impl SagaParkedApi {
    /// List the order saga's parked events.
    ///
    /// Events the saga could not handle after `POISON_ATTEMPTS` tries (one
    /// it cannot decode, such as a newer schema version, or whose commands
    /// are refused for good), oldest first. Each holds back the order it
    /// concerns until it is retried or skipped; every other order goes on.
    #[oai(
        path = "/saga/parked",
        method = "get",
        operation_id = "listParkedSagaEvents",
        tag = "Tag::Saga"
    )]
    async fn list(&self, parked: Data<&Arc<ParkedAdmin>>, auth: BearerAuth) -> Result<ListResponse, ListProblem> {
        admin(&auth)?;
        let items = parked.list().await.map_err(ProblemResponse::from)?;
        Ok(ListResponse::Ok(Json(ParkedList {
            parked: items.into_iter().map(Parked::from).collect(),
        })))
    }

    /// Retry a parked event with the code deployed now.
    ///
    /// The event (and its order's stream) is read again: when it reads, the
    /// record goes and the saga picks its order up again; when it still
    /// fails, 409 with the error, and the record stays with one more attempt.
    #[oai(
        path = "/saga/parked/:position/retry",
        method = "post",
        operation_id = "retryParkedSagaEvent",
        tag = "Tag::Saga"
    )]
    async fn retry(
        &self,
        parked: Data<&Arc<ParkedAdmin>>,
        auth: BearerAuth,
        position: Path<String>,
    ) -> Result<ResolveResponse, RetryProblem> {
        admin(&auth)?;
        let position = self::position(&position.0)?;
        parked
            .retry(position, auth.0.sub)
            .await
            .map_err(ProblemResponse::from)?;
        Ok(ResolveResponse::Resolved)
    }

    /// Skip a parked event for good.
    ///
    /// The record goes, the saga never handles the event, and the order it
    /// held back goes on from its other events. Logged at warn with who
    /// skipped what.
    #[oai(
        path = "/saga/parked/:position/skip",
        method = "post",
        operation_id = "skipParkedSagaEvent",
        tag = "Tag::Saga"
    )]
    async fn skip(
        &self,
        parked: Data<&Arc<ParkedAdmin>>,
        auth: BearerAuth,
        position: Path<String>,
    ) -> Result<ResolveResponse, SkipProblem> {
        admin(&auth)?;
        let position = self::position(&position.0)?;
        parked.skip(position, auth.0.sub).await.map_err(ProblemResponse::from)?;
        Ok(ResolveResponse::Resolved)
    }
}
