//! The generations of a projection, for admins: a blue/green rebuild, a
//! verification against the live rows (drift detection), promotion,
//! rollback and dropping a generation (`generations/`). `GET /projections`
//! shows where each generation stands.

use std::borrow::Cow;
use std::sync::Arc;

use api_common::bearer::BearerAuth;
use api_common::problem::{Problem, ProblemResponse};
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::registry::{MetaSchema, MetaSchemaRef};
use poem_openapi::types::{ParseFromParameter, ParseResult, Type};
use poem_openapi::{ApiResponse, Enum, Object, OpenApi, Tags};

use super::Projectors;
use super::operations::{Background, Busy, Claim, Ended, Kind, Operation, State};
use super::optional_body::OptionalJson;
use super::projections_api::{ProjectionName, projection_named};
use crate::generations::rebuild::{Promotion, Rebuilder};
use crate::generations::{GenerationError, Slot, swap, verify};
use crate::runner::ProjectorError;

#[derive(Tags)]
enum Tag {
    /// Generations of a projection's tables: rebuild, verify, promote,
    /// roll back.
    Generations,
}

/// What a background operation does.
#[derive(Enum)]
#[oai(rename_all = "camelCase")]
pub(super) enum OperationKind {
    Replay,
    Rebuild,
    Verify,
}

/// Where a background operation stands.
#[derive(Enum)]
#[oai(rename_all = "camelCase")]
pub(super) enum OperationPhase {
    Running,
    Done,
    Failed,
}

/// A background operation on a projection this process started.
#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub(super) struct OperationStatus {
    kind: OperationKind,
    phase: OperationPhase,
    /// When it started (running) or ended (done, failed).
    at: chrono::DateTime<chrono::Utc>,
    /// Done: the position the promoted generation stood at; absent when
    /// nothing was promoted (or the log is empty).
    #[oai(skip_serializing_if_is_none)]
    reached: Option<String>,
    /// Done without a promotion: the rows in which the next generation
    /// differs from the live one (it stays as the next generation).
    #[oai(skip_serializing_if_is_none)]
    differences: Option<u64>,
    /// Failed, and only to admins: why. The live rows are untouched.
    #[oai(skip_serializing_if_is_none)]
    pub(super) error: Option<String>,
}

impl From<Operation> for OperationStatus {
    fn from(operation: Operation) -> Self {
        let kind = match operation.kind {
            Background::Replay => OperationKind::Replay,
            Background::Rebuild => OperationKind::Rebuild,
            Background::Verify => OperationKind::Verify,
        };
        let (phase, at, reached, differences, error) = match operation.state {
            State::Running { since } => (OperationPhase::Running, since, None, None, None),
            State::Done { ended, at } => match ended {
                Ended::Promoted(reached) => (OperationPhase::Done, at, reached.map(|p| p.to_string()), None, None),
                Ended::Compared { differences } => (OperationPhase::Done, at, None, Some(differences), None),
            },
            State::Failed { error, at } => (OperationPhase::Failed, at, None, None, Some(error)),
        };
        Self {
            kind,
            phase,
            at,
            reached,
            differences,
            error,
        }
    }
}

/// Promotion's options.
#[derive(Object, Default)]
#[oai(rename_all = "camelCase")]
struct PromoteRequest {
    /// Promote a next generation whose verification found differences
    /// (a new version of the projection, or a repair of drifted rows).
    #[oai(default)]
    accept_differences: bool,
}

/// The generation now live.
#[derive(Object)]
#[oai(rename_all = "camelCase")]
struct Swapped {
    /// The log position it stands at; absent for an empty log.
    #[oai(skip_serializing_if_is_none)]
    position: Option<String>,
}

/// A generation that can be dropped: `next` or `previous`, listed in the
/// schema. Another name in the path (`live` too) is a generation that does
/// not exist: 404.
struct DroppedGeneration(String);

impl DroppedGeneration {
    const NAMES: [Slot; 2] = [Slot::Next, Slot::Previous];

    fn slot(&self) -> Option<Slot> {
        Self::NAMES.into_iter().find(|slot| slot.label() == self.0)
    }
}

impl Type for DroppedGeneration {
    const IS_REQUIRED: bool = true;
    type RawValueType = Self;
    type RawElementValueType = Self;

    fn name() -> Cow<'static, str> {
        "DroppedGeneration".into()
    }

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Inline(Box::new(MetaSchema {
            enum_items: Self::NAMES.iter().map(|slot| slot.label().into()).collect(),
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

impl ParseFromParameter for DroppedGeneration {
    fn parse_from_parameter(value: &str) -> ParseResult<Self> {
        Ok(Self(value.to_owned()))
    }
}

#[derive(ApiResponse)]
enum StartResponse {
    /// It has started; `GET /projections` shows how it goes.
    #[oai(status = 202)]
    Started(Json<OperationStatus>),
    /// No valid access token.
    #[oai(status = 401, content_type = "application/problem+json")]
    Unauthorized(Json<Problem>),
    /// The token's user is not an admin.
    #[oai(status = 403, content_type = "application/problem+json")]
    Forbidden(Json<Problem>),
    /// No projection has that name.
    #[oai(status = 404, content_type = "application/problem+json")]
    NotFound(Json<Problem>),
    /// An operation on that projection is running already in this
    /// process (`operation-running`).
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
api_common::problem_answers!(StartResponse: Unauthorized, Forbidden, NotFound, Conflict; Unavailable);

#[derive(ApiResponse)]
enum PromoteResponse {
    /// Done: the generation now live and its position.
    #[oai(status = 200)]
    Swapped(Json<Swapped>),
    /// The body is not JSON, or a field is invalid (named in `field`).
    #[oai(status = 400, content_type = "application/problem+json")]
    BadRequest(Json<Problem>),
    /// No valid access token.
    #[oai(status = 401, content_type = "application/problem+json")]
    Unauthorized(Json<Problem>),
    /// The token's user is not an admin.
    #[oai(status = 403, content_type = "application/problem+json")]
    Forbidden(Json<Problem>),
    /// No projection has that name, or it has no next generation.
    #[oai(status = 404, content_type = "application/problem+json")]
    NotFound(Json<Problem>),
    /// Refused, `type` says why: `operation-running` (another operation on
    /// it runs in this process), `not-verified` (verify it first),
    /// `generation-differs` (its verification found differences, `detail`
    /// says how many: promote accepting them, or drop it), `columns-differ`
    /// (a migration ran during the rebuild: drop it and rebuild).
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
api_common::problem_answers!(PromoteResponse: BadRequest, Unauthorized, Forbidden, NotFound, Conflict; Unavailable);

#[derive(ApiResponse)]
enum RollBackResponse {
    /// Done: the generation now live and its position.
    #[oai(status = 200)]
    Swapped(Json<Swapped>),
    /// No valid access token.
    #[oai(status = 401, content_type = "application/problem+json")]
    Unauthorized(Json<Problem>),
    /// The token's user is not an admin.
    #[oai(status = 403, content_type = "application/problem+json")]
    Forbidden(Json<Problem>),
    /// No projection has that name, or it has no previous generation.
    #[oai(status = 404, content_type = "application/problem+json")]
    NotFound(Json<Problem>),
    /// Refused, `type` says why: `operation-running` (another operation on
    /// it runs in this process), `columns-differ` (a migration ran since
    /// the previous generation was live).
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
api_common::problem_answers!(RollBackResponse: Unauthorized, Forbidden, NotFound, Conflict; Unavailable);

#[derive(ApiResponse)]
enum DropResponse {
    /// Dropped: its tables, checkpoint, parked events and record are gone.
    #[oai(status = 204)]
    Dropped,
    /// No valid access token.
    #[oai(status = 401, content_type = "application/problem+json")]
    Unauthorized(Json<Problem>),
    /// The token's user is not an admin.
    #[oai(status = 403, content_type = "application/problem+json")]
    Forbidden(Json<Problem>),
    /// No projection has that name, or it has no such generation (the
    /// live one is never dropped).
    #[oai(status = 404, content_type = "application/problem+json")]
    NotFound(Json<Problem>),
    /// An operation on that projection is running already in this
    /// process (`operation-running`).
    #[oai(status = 409, content_type = "application/problem+json")]
    Conflict(Json<Problem>),
    /// Something failed on our side.
    #[oai(status = 500, content_type = "application/problem+json")]
    Internal(Json<Problem>),
    /// The views database does not answer: retry after `Retry-After`
    /// seconds.
    #[oai(status = 503, content_type = "application/problem+json")]
    Unavailable(Json<Problem>, #[oai(header = "Retry-After")] u32),
}
api_common::problem_answers!(DropResponse: Unauthorized, Forbidden, NotFound, Conflict; Unavailable);

pub struct GenerationsApi;

#[OpenApi]
impl GenerationsApi {
    /// Admins: rebuild a projection as a next generation beside the live
    /// one, in short batches, verify it against the live rows and promote
    /// it when they are the same. One that differs stays as the next
    /// generation (phase `differs`) for an admin to look at, promote
    /// accepting the differences, or drop. A rebuild stopped midway
    /// resumes where it stopped.
    #[oai(
        path = "/projections/:name/rebuild",
        method = "post",
        operation_id = "rebuildProjection",
        tag = "Tag::Generations"
    )]
    async fn rebuild(
        &self,
        auth: BearerAuth,
        projectors: Data<&Projectors>,
        name: Path<ProjectionName>,
    ) -> StartResponse {
        let rebuilder = match rebuilder_for(&auth, &projectors, &name) {
            Ok(rebuilder) => rebuilder,
            Err(problem) => return problem.into(),
        };
        let projection = rebuilder.projection.name();
        let work = async move {
            let outcome = rebuilder.rebuild(Promotion::WhenClean).await?;
            Ok(match outcome.promoted {
                Some(reached) => Ended::Promoted(reached),
                None => Ended::Compared {
                    differences: outcome.report.differences,
                },
            })
        };
        started(projectors.operations.spawn(projection, Background::Rebuild, work))
    }

    /// Admins: compare the next generation with the live one at one log
    /// position, row by row. Without a next generation, one is rebuilt
    /// from the log first: that checks the live rows against what the log
    /// says (drift detection). The result shows in `GET /projections`
    /// (`generations.next.verification`) and in the metrics
    /// (`projection_verify_differences`); the next generation stays, to be
    /// promoted (repairing what drifted) or dropped.
    #[oai(
        path = "/projections/:name/verify",
        method = "post",
        operation_id = "verifyProjection",
        tag = "Tag::Generations"
    )]
    async fn verify(
        &self,
        auth: BearerAuth,
        projectors: Data<&Projectors>,
        name: Path<ProjectionName>,
    ) -> StartResponse {
        let rebuilder = match rebuilder_for(&auth, &projectors, &name) {
            Ok(rebuilder) => rebuilder,
            Err(problem) => return problem.into(),
        };
        let projection = rebuilder.projection.name();
        let work = async move {
            if !rebuilder.has(Slot::Next).await? {
                rebuilder.begin().await?;
            }
            let report = verify::verify(&rebuilder, Slot::Next, Slot::Live).await?;
            Ok(Ended::Compared {
                differences: report.differences,
            })
        };
        started(projectors.operations.spawn(projection, Background::Verify, work))
    }

    /// Admins: make the next generation live, at once for readers, keeping
    /// the live one as the previous generation (for a rollback). It must
    /// have been verified against the live one: clean, or with
    /// `acceptDifferences`. The body may be left out.
    #[oai(
        path = "/projections/:name/promote",
        method = "post",
        operation_id = "promoteProjection",
        tag = "Tag::Generations"
    )]
    async fn promote(
        &self,
        auth: BearerAuth,
        projectors: Data<&Projectors>,
        name: Path<ProjectionName>,
        body: OptionalJson<PromoteRequest>,
    ) -> PromoteResponse {
        let (_claim, rebuilder) = match claimed(&auth, &projectors, &name, Kind::Promote) {
            Ok(claimed) => claimed,
            Err(problem) => return problem.into(),
        };
        match swap::promote(&rebuilder, body.0.accept_differences).await {
            Ok(position) => PromoteResponse::Swapped(swapped(position)),
            Err(error) => problem_of(&error).into(),
        }
    }

    /// Admins: make the previous generation live again, at once for
    /// readers, keeping the live one as the previous generation: rolling
    /// back twice gives back what was live.
    #[oai(
        path = "/projections/:name/rollback",
        method = "post",
        operation_id = "rollBackProjection",
        tag = "Tag::Generations"
    )]
    async fn roll_back(
        &self,
        auth: BearerAuth,
        projectors: Data<&Projectors>,
        name: Path<ProjectionName>,
    ) -> RollBackResponse {
        let (_claim, rebuilder) = match claimed(&auth, &projectors, &name, Kind::RollBack) {
            Ok(claimed) => claimed,
            Err(problem) => return problem.into(),
        };
        match swap::roll_back(&rebuilder).await {
            Ok(position) => RollBackResponse::Swapped(swapped(position)),
            Err(error) => problem_of(&error).into(),
        }
    }

    /// Admins: drop the next generation (abandoning a rebuild) or the
    /// previous one (giving up the rollback): its tables, checkpoint,
    /// parked events and record. The live generation is never dropped.
    #[oai(
        path = "/projections/:name/generations/:generation",
        method = "delete",
        operation_id = "dropGeneration",
        tag = "Tag::Generations"
    )]
    async fn drop_generation(
        &self,
        auth: BearerAuth,
        projectors: Data<&Projectors>,
        name: Path<ProjectionName>,
        generation: Path<DroppedGeneration>,
    ) -> DropResponse {
        let rebuilder = match rebuilder_for(&auth, &projectors, &name) {
            Ok(rebuilder) => rebuilder,
            Err(problem) => return problem.into(),
        };
        let Some(slot) = generation.0.slot() else {
            let detail = format!(
                "no generation called {:?} can be dropped: there are next and previous",
                generation.0.0
            );
            return ProblemResponse::not_found(detail).into();
        };
        let _claim = match projectors.operations.claim(rebuilder.projection.name(), Kind::Drop) {
            Ok(claim) => claim,
            Err(busy) => return running(&busy).into(),
        };
        match swap::remove(&rebuilder, slot).await {
            Ok(true) => DropResponse::Dropped,
            Ok(false) => problem_of(&GenerationError::Missing {
                projection: rebuilder.projection.name(),
                slot,
            })
            .into(),
            Err(error) => problem_of(&error).into(),
        }
    }
}

/// A rebuilder of the projection `name` names, if an admin asks and it
/// exists.
fn rebuilder_for(
    auth: &BearerAuth,
    projectors: &Projectors,
    name: &ProjectionName,
) -> Result<Rebuilder, ProblemResponse> {
    if !auth.is_admin() {
        return Err(ProblemResponse::forbidden(
            "only admins may rebuild, verify, promote, roll back or drop generations of projections",
        ));
    }
    Ok(projectors.operations.rebuilder(
        Arc::clone(&projectors.store),
        projectors.db.clone(),
        projection_named(name)?,
        projectors.instance.id(),
    ))
}

/// [`rebuilder_for`], with the projection claimed for an operation of
/// `kind` until the claim is dropped, unless another one runs.
fn claimed(
    auth: &BearerAuth,
    projectors: &Projectors,
    name: &ProjectionName,
    kind: Kind,
) -> Result<(Claim, Rebuilder), ProblemResponse> {
    let rebuilder = rebuilder_for(auth, projectors, name)?;
    let claim = projectors
        .operations
        .claim(rebuilder.projection.name(), kind)
        .map_err(|busy| running(&busy))?;
    Ok((claim, rebuilder))
}

fn running(busy: &Busy) -> ProblemResponse {
    ProblemResponse::conflict("operation-running", busy.to_string())
}

fn started(spawned: Result<Operation, Busy>) -> StartResponse {
    match spawned {
        Ok(operation) => StartResponse::Started(Json(operation.into())),
        Err(busy) => running(&busy).into(),
    }
}

fn swapped(position: Option<event_store::Position>) -> Json<Swapped> {
    Json(Swapped {
        position: position.map(|p| p.to_string()),
    })
}

/// Whether `error` is the store or the views database not answering (worth
/// a retry), not a fault.
fn is_outage(error: &ProjectorError) -> bool {
    match error {
        ProjectorError::Store(error) => matches!(error, event_store::StoreError::Unavailable { .. }),
        ProjectorError::Database(error) | ProjectorError::Write { source: error, .. } => views::is_unavailable(error),
        _ => false,
    }
}

/// The answer to a refused or failed operation on generations.
fn problem_of(error: &GenerationError) -> ProblemResponse {
    match error {
        GenerationError::Missing { .. } => ProblemResponse::not_found(error.to_string()),
        GenerationError::NotVerified(_) => ProblemResponse::conflict("not-verified", error.to_string()),
        GenerationError::Differs { .. } => ProblemResponse::conflict("generation-differs", error.to_string()),
        GenerationError::ColumnsDiffer { .. } => ProblemResponse::conflict("columns-differ", error.to_string()),
        GenerationError::Projector(cause) if is_outage(cause) => {
            tracing::warn!(error = %cause, "generations unavailable");
            ProblemResponse::unavailable(
                "unavailable",
                "the event store or the views database does not answer",
                1,
            )
        }
        GenerationError::Projector(cause) => ProblemResponse::internal(cause),
    }
}
