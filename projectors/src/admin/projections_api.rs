use api_common::bearer::BearerAuth;
use std::borrow::Cow;
use std::sync::Arc;

use api_common::problem::{Problem, ProblemResponse};
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::registry::{MetaSchema, MetaSchemaRef};
use poem_openapi::types::{ParseError, ParseFromJSON, ParseFromParameter, ParseResult, ToJSON, Type};
use poem_openapi::{ApiResponse, Enum, Object, OpenApi, SecurityScheme, Tags};

use super::Projectors;
use super::generations_api::OperationStatus;
use super::generations_view::Generations;
use super::operations::{Background, Ended, State};
use crate::generations::rebuild::Promotion;
use crate::generations::record;
use crate::projection::Projection;

#[derive(Tags)]
enum Tag {
    /// How far each projection has read the log; replays.
    Projections,
}

#[derive(Object)]
#[oai(rename_all = "camelCase")]
struct Projections {
    /// The position of the last event in the log; absent while it is empty.
    #[oai(skip_serializing_if_is_none)]
    head: Option<String>,
    projections: Vec<ProjectionStatus>,
}

#[derive(Object)]
#[oai(rename_all = "camelCase")]
struct ProjectionStatus {
    name: ProjectionName,
    /// The position of the last event it applied; absent before its first
    /// batch.
    #[oai(skip_serializing_if_is_none)]
    position: Option<String>,
    /// It has applied the log up to `head`.
    caught_up: bool,
    /// Admins only: the projector instance that runs it
    /// (`<pid>-<random>`), while its lease lasts; absent when no instance
    /// runs it, and for everyone else.
    #[oai(skip_serializing_if_is_none)]
    held_by: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    replay: Option<Replay>,
    /// Its last background operation (replay, rebuild, verification) this
    /// process started.
    #[oai(skip_serializing_if_is_none)]
    operation: Option<OperationStatus>,
    /// Its generations beside the live one, as every projector instance
    /// sees them.
    generations: Generations,
}

/// Where a replay stands.
#[derive(Enum)]
#[oai(rename_all = "camelCase")]
enum ReplayPhase {
    Running,
    Done,
    Failed,
}

/// The last replay of a projection this process started.
#[derive(Object)]
#[oai(rename_all = "camelCase")]
struct Replay {
    phase: ReplayPhase,
    /// When it started (running) or ended (done, failed).
    at: chrono::DateTime<chrono::Utc>,
    /// Done: the position the rebuilt projection reached.
    #[oai(skip_serializing_if_is_none)]
    reached: Option<String>,
    /// Failed, and only to admins: why. The old rows are untouched.
    #[oai(skip_serializing_if_is_none)]
    error: Option<String>,
}

impl From<State> for Replay {
    fn from(state: State) -> Self {
        match state {
            State::Running { since } => Self {
                phase: ReplayPhase::Running,
                at: since,
                reached: None,
                error: None,
            },
            State::Done { ended, at } => Self {
                phase: ReplayPhase::Done,
                at,
                reached: match ended {
                    Ended::Promoted(reached) => reached.map(|p| p.to_string()),
                    Ended::Compared { .. } => None,
                },
                error: None,
            },
            State::Failed { error, at } => Self {
                phase: ReplayPhase::Failed,
                at,
                reached: None,
                error: Some(error),
            },
        }
    }
}

/// A projection's name: one of the projections this build runs, listed in
/// the schema from the list the replay looks names up in. Another name in
/// the path is a resource that does not exist: 404.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ProjectionName(pub(super) String);

impl Type for ProjectionName {
    const IS_REQUIRED: bool = true;
    type RawValueType = Self;
    type RawElementValueType = Self;

    fn name() -> Cow<'static, str> {
        "ProjectionName".into()
    }

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Inline(Box::new(MetaSchema {
            enum_items: crate::all().iter().map(|p| p.name().into()).collect(),
            ..MetaSchema::new("string")
        }))
    }

    fn as_raw_value(&self) -> Option<&Self> {
        Some(self)
    }

    fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a Self> + 'a> {
        Box::new(std::iter::once(self))
    }
}

impl ParseFromParameter for ProjectionName {
    fn parse_from_parameter(value: &str) -> ParseResult<Self> {
        Ok(Self(value.to_owned()))
    }
}

impl ParseFromJSON for ProjectionName {
    fn parse_from_json(value: Option<serde_json::Value>) -> ParseResult<Self> {
        match value {
            Some(serde_json::Value::String(name)) => Ok(Self(name)),
            other => Err(ParseError::expected_type(other.unwrap_or_default())),
        }
    }
}

impl ToJSON for ProjectionName {
    fn to_json(&self) -> Option<serde_json::Value> {
        Some(self.0.clone().into())
    }
}

#[derive(ApiResponse)]
enum ListResponse {
    /// Every projection, and the head of the log.
    #[oai(status = 200)]
    Ok(Json<Projections>),
    /// Something failed on our side.
    #[oai(status = 500, content_type = "application/problem+json")]
    Internal(Json<Problem>),
    /// The event store or the views database does not answer: retry after
    /// `Retry-After` seconds.
    #[oai(status = 503, content_type = "application/problem+json")]
    Unavailable(Json<Problem>, #[oai(header = "Retry-After")] u32),
}
api_common::problem_answers!(ListResponse: ; Unavailable);

#[derive(ApiResponse)]
enum ReplayResponse {
    /// The replay has started; `GET /projections` shows how it goes.
    #[oai(status = 202)]
    Started(Json<Replay>),
    /// No projection has that name.
    #[oai(status = 404, content_type = "application/problem+json")]
    NotFound(Json<Problem>),
    /// No valid access token.
    #[oai(status = 401, content_type = "application/problem+json")]
    Unauthorized(Json<Problem>),
    /// The token's user is not an admin.
    #[oai(status = 403, content_type = "application/problem+json")]
    Forbidden(Json<Problem>),
    /// A replay of that projection is running already.
    #[oai(status = 409, content_type = "application/problem+json")]
    Conflict(Json<Problem>),
    /// Something failed on our side.
    #[oai(status = 500, content_type = "application/problem+json")]
    Internal(Json<Problem>),
    /// The token's credential version cannot be read (the views database
    /// is unavailable): retry after `Retry-After` seconds.
    #[oai(status = 503, content_type = "application/problem+json")]
    Unavailable(Json<Problem>, #[oai(header = "Retry-After")] u32),
}
api_common::problem_answers!(ReplayResponse: Unauthorized, Forbidden, NotFound, Conflict; Unavailable);

/// Who asks for the projections: an admin sees which instance runs each
/// and why a replay failed (host, process and database details); anyone
/// else, with a token or without, sees the rest. A token that does not
/// verify counts as none: the answer is public anyway.
#[derive(SecurityScheme)]
enum Caller {
    Bearer(BearerAuth),
    #[oai(fallback)]
    Anonymous,
}

impl Caller {
    fn is_admin(&self) -> bool {
        matches!(self, Self::Bearer(auth) if auth.is_admin())
    }
}

pub struct ProjectionsApi;

#[OpenApi]
impl ProjectionsApi {
    /// Every projection's checkpoint against the head of the log, its
    /// generations beside the live one (a rebuild's phase, pace and time
    /// left; the last verification) and its last operation.
    ///
    /// Anyone may ask; only with an admin's token does the answer show
    /// which instance runs each projection (`heldBy`), why an operation
    /// failed (`replay.error`, `operation.error`) and the rows that differ
    /// (`generations.next.verification.first`).
    #[oai(
        path = "/projections",
        method = "get",
        operation_id = "listProjections",
        tag = "Tag::Projections"
    )]
    async fn list(&self, caller: Caller, projectors: Data<&Projectors>) -> ListResponse {
        match projections(&projectors).await {
            Ok(all) if caller.is_admin() => ListResponse::Ok(Json(all)),
            Ok(all) => ListResponse::Ok(Json(all.redacted())),
            Err(problem) => problem.into(),
        }
    }

    /// Admins: rebuild a projection from the start of the log. Its old rows
    /// keep serving reads until the rebuilt ones replace them at once.
    #[oai(
        path = "/projections/:name/replay",
        method = "post",
        operation_id = "replayProjection",
        tag = "Tag::Projections"
    )]
    async fn replay(
        &self,
        auth: BearerAuth,
        projectors: Data<&Projectors>,
        name: Path<ProjectionName>,
    ) -> ReplayResponse {
        if !auth.is_admin() {
            return ProblemResponse::forbidden("only admins may replay projections").into();
        }
        let projection = match projection_named(&name) {
            Ok(projection) => projection,
            Err(problem) => return problem.into(),
        };
        let name = projection.name();
        let rebuilder = projectors.operations.rebuilder(
            Arc::clone(&projectors.store),
            projectors.db.clone(),
            projection,
            projectors.instance.id(),
        );
        let work = async move {
            let outcome = rebuilder.rebuild(Promotion::AcceptingDifferences).await?;
            Ok(Ended::Promoted(outcome.promoted.flatten()))
        };
        match projectors.operations.spawn(name, Background::Replay, work) {
            Ok(started) => ReplayResponse::Started(Json(started.state.into())),
            Err(error) => ProblemResponse::conflict("replay-running", error.to_string()).into(),
        }
    }
}

/// The projection `name` names; another name is a resource that does not
/// exist: 404.
pub(super) fn projection_named(name: &ProjectionName) -> Result<Arc<dyn Projection>, ProblemResponse> {
    crate::named(&name.0).ok_or_else(|| {
        let names: Vec<_> = crate::all().iter().map(|p| p.name()).collect();
        ProblemResponse::not_found(format!(
            "no projection called {:?}: there are {}",
            name.0,
            names.join(", ")
        ))
    })
}

impl Projections {
    /// Without what only admins see: the instances, the operations' errors
    /// and the rows of the verifications' differences.
    fn redacted(mut self) -> Self {
        for projection in &mut self.projections {
            projection.held_by = None;
            if let Some(replay) = &mut projection.replay {
                replay.error = None;
            }
            if let Some(operation) = &mut projection.operation {
                operation.error = None;
            }
            projection.generations.redacted();
        }
        self
    }
}

/// Every projection's checkpoint, lease and last replay, against the head.
async fn projections(projectors: &Projectors) -> Result<Projections, ProblemResponse> {
    let unavailable = |what: &str, error: &dyn std::fmt::Display| {
        tracing::warn!(%error, "{what} unavailable");
        ProblemResponse::unavailable("unavailable", format!("the {what} does not answer"), 1)
    };
    let head = projectors
        .store
        .head()
        .await
        .map_err(|e| unavailable("event store", &e))?;
    let checkpoints = views::checkpoint::all(&projectors.db)
        .await
        .map_err(|e| unavailable("views database", &e))?;
    let leases = crate::lease::all(&projectors.db)
        .await
        .map_err(|e| unavailable("views database", &e))?;
    let generations = record::all(&projectors.db)
        .await
        .map_err(|e| unavailable("views database", &e))?;
    let checkpoint = |key: &str| checkpoints.iter().find(|(name, _)| name == key).map(|(_, at)| *at);
    let projections = crate::all()
        .iter()
        .map(|projection| {
            let name = projection.name();
            let position = checkpoint(name);
            ProjectionStatus {
                name: ProjectionName(name.to_owned()),
                position: position.map(|p| p.to_string()),
                caught_up: head.is_none_or(|head| position.is_some_and(|p| p >= head)),
                held_by: leases
                    .iter()
                    .find(|lease| lease.projection == name && lease.expires_at > chrono::Utc::now())
                    .map(|lease| lease.holder.clone()),
                replay: projectors.operations.last_replay(name).map(Replay::from),
                operation: projectors.operations.last(name).map(OperationStatus::from),
                generations: Generations::of(name, &generations, checkpoint, head),
            }
        })
        .collect();
    Ok(Projections {
        head: head.map(|p| p.to_string()),
        projections,
    })
}
