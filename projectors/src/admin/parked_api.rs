//! The parked events, for admins: the events a projection could not read
//! after its attempts (`POISON_ATTEMPTS`), set aside so that it goes on
//! past them; listed, retried (after a fix is deployed) or skipped.

use api_common::bearer::BearerAuth;
use api_common::problem::{Problem, ProblemResponse};
use event_store::Position;
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi, Tags};

use super::Projectors;
use super::projections_api::ProjectionName;
use crate::parked::{self, Parked};
use crate::projection::Projection;
use crate::runner::ProjectorError;
use crate::unpark::{self, Retried};

#[derive(Tags)]
enum Tag {
    /// Events a projection could not read, set aside.
    Parked,
}

/// The parked events, oldest first.
#[derive(Object)]
#[oai(rename_all = "camelCase")]
struct ParkedEvents {
    parked: Vec<ParkedEvent>,
}

/// An event a projection could not read after its attempts.
#[derive(Object)]
#[oai(rename_all = "camelCase")]
struct ParkedEvent {
    /// The projection that parked it.
    subscriber: ProjectionName,
    /// Its position in the log, as `GET /projections` prints positions
    /// (`commit` or `commit/prepare`; in a path, `/` is sent as `%2F`).
    position: String,
    stream: String,
    /// Its number in its stream, from 0.
    revision: i64,
    event_id: uuid::Uuid,
    event_type: String,
    /// Why it could not be read, at the last attempt.
    error: String,
    /// The projector instance that parked it (`<pid>-<random>`).
    parked_by: String,
    /// How many times it was tried, retries included.
    attempts: i32,
    parked_at: chrono::DateTime<chrono::Utc>,
}

impl From<Parked> for ParkedEvent {
    fn from(row: Parked) -> Self {
        Self {
            position: parked::position(&row).to_string(),
            subscriber: ProjectionName(row.subscriber),
            stream: row.stream,
            revision: row.revision,
            event_id: row.event_id,
            event_type: row.event_type,
            error: row.error,
            parked_by: row.parked_by,
            attempts: row.attempts,
            parked_at: row.parked_at,
        }
    }
}

#[derive(ApiResponse)]
enum ListResponse {
    /// Every parked event, oldest first.
    #[oai(status = 200)]
    Ok(Json<ParkedEvents>),
    /// No valid access token.
    #[oai(status = 401, content_type = "application/problem+json")]
    Unauthorized(Json<Problem>),
    /// The token's user is not an admin.
    #[oai(status = 403, content_type = "application/problem+json")]
    Forbidden(Json<Problem>),
    /// Something failed on our side.
    #[oai(status = 500, content_type = "application/problem+json")]
    Internal(Json<Problem>),
    /// The views database does not answer: retry after `Retry-After`
    /// seconds.
    #[oai(status = 503, content_type = "application/problem+json")]
    Unavailable(Json<Problem>, #[oai(header = "Retry-After")] u32),
}
api_common::problem_answers!(ListResponse: Unauthorized, Forbidden; Unavailable);

#[derive(ApiResponse)]
enum RetryResponse {
    /// The event was applied; its record is gone.
    #[oai(status = 204)]
    Applied,
    /// No valid access token.
    #[oai(status = 401, content_type = "application/problem+json")]
    Unauthorized(Json<Problem>),
    /// The token's user is not an admin.
    #[oai(status = 403, content_type = "application/problem+json")]
    Forbidden(Json<Problem>),
    /// That projection parked no event at that position.
    #[oai(status = 404, content_type = "application/problem+json")]
    NotFound(Json<Problem>),
    /// The event still cannot be read (`detail` says why); its record stays,
    /// with one attempt more.
    #[oai(status = 409, content_type = "application/problem+json")]
    Conflict(Json<Problem>),
    /// Something failed on our side.
    #[oai(status = 500, content_type = "application/problem+json")]
    Internal(Json<Problem>),
    /// The event store or the views database does not answer: retry after
    /// `Retry-After` seconds.
    #[oai(status = 503, content_type = "application/problem+json")]
    Unavailable(Json<Problem>, #[oai(header = "Retry-After")] u32),
}
api_common::problem_answers!(RetryResponse: Unauthorized, Forbidden, NotFound, Conflict; Unavailable);

#[derive(ApiResponse)]
enum SkipResponse {
    /// The record is gone: the event stays unapplied for good.
    #[oai(status = 204)]
    Skipped,
    /// No valid access token.
    #[oai(status = 401, content_type = "application/problem+json")]
    Unauthorized(Json<Problem>),
    /// The token's user is not an admin.
    #[oai(status = 403, content_type = "application/problem+json")]
    Forbidden(Json<Problem>),
    /// That projection parked no event at that position.
    #[oai(status = 404, content_type = "application/problem+json")]
    NotFound(Json<Problem>),
    /// Something failed on our side.
    #[oai(status = 500, content_type = "application/problem+json")]
    Internal(Json<Problem>),
    /// The views database does not answer: retry after `Retry-After`
    /// seconds.
    #[oai(status = 503, content_type = "application/problem+json")]
    Unavailable(Json<Problem>, #[oai(header = "Retry-After")] u32),
}
api_common::problem_answers!(SkipResponse: Unauthorized, Forbidden, NotFound; Unavailable);

pub struct ParkedApi;

#[OpenApi]
impl ParkedApi {
    /// Admins: the events the projections could not read and set aside,
    /// oldest first.
    #[oai(
        path = "/projections/parked",
        method = "get",
        operation_id = "listParkedEvents",
        tag = "Tag::Parked"
    )]
    async fn list(&self, auth: BearerAuth, projectors: Data<&Projectors>) -> ListResponse {
        if !auth.is_admin() {
            return ProblemResponse::forbidden("only admins may see parked events").into();
        }
        match parked::all(&projectors.db).await {
            Ok(rows) => ListResponse::Ok(Json(ParkedEvents {
                parked: rows.into_iter().map(ParkedEvent::from).collect(),
            })),
            Err(error) => unavailable(&error).into(),
        }
    }

    /// Admins: apply a parked event again, with the code now deployed. On
    /// success its record goes; if it still cannot be read, 409 and the
    /// record stays. It is applied on top of the rows as they are now; for
    /// an event whose effect later events overwrite, replay the projection
    /// instead.
    #[oai(
        path = "/projections/parked/:subscriber/:position/retry",
        method = "post",
        operation_id = "retryParkedEvent",
        tag = "Tag::Parked"
    )]
    async fn retry(
        &self,
        auth: BearerAuth,
        projectors: Data<&Projectors>,
        subscriber: Path<ProjectionName>,
        position: Path<String>,
    ) -> RetryResponse {
        let (projection, position) = match target(&auth, &subscriber.0, &position.0, "retry") {
            Ok(target) => target,
            Err(problem) => return problem.into(),
        };
        match unpark::retry(projectors.store.as_ref(), &projectors.db, projection.as_ref(), position).await {
            Ok(Retried::Applied) => RetryResponse::Applied,
            Ok(Retried::Failed(error)) => ProblemResponse::conflict("still-unreadable", error).into(),
            Ok(Retried::NotFound) => not_parked(projection.name(), position).into(),
            Err(error @ (ProjectorError::Store(_) | ProjectorError::Database(_) | ProjectorError::Write { .. })) => {
                unavailable(&error).into()
            }
            Err(error) => ProblemResponse::internal(error).into(),
        }
    }

    /// Admins: drop a parked event for good: the projection never applies
    /// it. Logged at warn with who skipped what.
    #[oai(
        path = "/projections/parked/:subscriber/:position/skip",
        method = "post",
        operation_id = "skipParkedEvent",
        tag = "Tag::Parked"
    )]
    async fn skip(
        &self,
        auth: BearerAuth,
        projectors: Data<&Projectors>,
        subscriber: Path<ProjectionName>,
        position: Path<String>,
    ) -> SkipResponse {
        let (projection, position) = match target(&auth, &subscriber.0, &position.0, "skip") {
            Ok(target) => target,
            Err(problem) => return problem.into(),
        };
        match unpark::skip(&projectors.db, projection.name(), position).await {
            Ok(Some(row)) => {
                tracing::warn!(
                    admin = %auth.user_id(),
                    projection = row.subscriber,
                    %position,
                    stream = row.stream,
                    event_type = row.event_type,
                    "parked event skipped for good"
                );
                SkipResponse::Skipped
            }
            Ok(None) => not_parked(projection.name(), position).into(),
            Err(error) => unavailable(&error).into(),
        }
    }
}

/// The projection and position a request names, if an admin asks and both
/// exist; a name or a position that is none is a resource that does not
/// exist: 404.
fn target(
    auth: &BearerAuth,
    subscriber: &ProjectionName,
    position: &str,
    what: &str,
) -> Result<(std::sync::Arc<dyn Projection>, Position), ProblemResponse> {
    if !auth.is_admin() {
        return Err(ProblemResponse::forbidden(format!(
            "only admins may {what} parked events"
        )));
    }
    let Some(projection) = crate::named(&subscriber.0) else {
        let names: Vec<_> = crate::all().iter().map(|p| p.name()).collect();
        let detail = format!(
            "no projection called {:?}: there are {}",
            subscriber.0,
            names.join(", ")
        );
        return Err(ProblemResponse::not_found(detail));
    };
    let Ok(position) = position.parse::<Position>() else {
        return Err(ProblemResponse::not_found(format!(
            "{position:?} is not a position: no event is parked there"
        )));
    };
    Ok((projection, position))
}

fn not_parked(projection: &str, position: Position) -> ProblemResponse {
    ProblemResponse::not_found(format!("{projection} parked no event at position {position}"))
}

fn unavailable(error: &dyn std::fmt::Display) -> ProblemResponse {
    tracing::warn!(%error, "parked events unavailable");
    ProblemResponse::unavailable(
        "unavailable",
        "the event store or the views database does not answer",
        1,
    )
}
