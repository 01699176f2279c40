use api_common::bearer::BearerAuth;
use api_common::problem::ProblemResponse;
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi, Tags};

use super::Projectors;
use super::replays::ReplayState;

#[derive(Tags)]
enum Tag {
    /// How far each projection has read the log; replays.
    Projections,
}

#[derive(Object)]
#[oai(rename_all = "camelCase")]
struct Projections {
    /// The position of the last event in the log; absent while it is empty.
    head: Option<String>,
    projections: Vec<ProjectionStatus>,
}

#[derive(Object)]
#[oai(rename_all = "camelCase")]
struct ProjectionStatus {
    /// `catalog`, `users` or `orders`.
    name: String,
    /// The position of the last event it applied; absent before its first
    /// batch.
    position: Option<String>,
    /// It has applied the log up to `head`.
    caught_up: bool,
    /// The projector instance that runs it (`<pid>-<random>`), while its
    /// lease lasts; absent when no instance runs it.
    held_by: Option<String>,
    /// The last replay of it this process started.
    replay: Option<Replay>,
}

#[derive(Enum)]
#[oai(rename_all = "camelCase")]
enum ReplayPhase {
    Running,
    Done,
    Failed,
}

#[derive(Object)]
#[oai(rename_all = "camelCase")]
struct Replay {
    phase: ReplayPhase,
    /// When it started (running) or ended (done, failed).
    at: chrono::DateTime<chrono::Utc>,
    /// Done: the position the rebuilt projection reached.
    reached: Option<String>,
    /// Failed: why. The old rows are untouched.
    error: Option<String>,
}

impl From<ReplayState> for Replay {
    fn from(state: ReplayState) -> Self {
        match state {
            ReplayState::Running { since } => Self {
                phase: ReplayPhase::Running,
                at: since,
                reached: None,
                error: None,
            },
            ReplayState::Done { reached, at } => Self {
                phase: ReplayPhase::Done,
                at,
                reached: reached.map(|p| p.to_string()),
                error: None,
            },
            ReplayState::Failed { error, at } => Self {
                phase: ReplayPhase::Failed,
                at,
                reached: None,
                error: Some(error),
            },
        }
    }
}

#[derive(ApiResponse)]
enum ReplayResponse {
    /// The replay has started; `GET /projections` shows how it goes.
    #[oai(status = 202)]
    Started(Json<Replay>),
}

pub struct ProjectionsApi;

#[OpenApi]
impl ProjectionsApi {
    /// Every projection's checkpoint against the head of the log, and its
    /// last replay.
    #[oai(
        path = "/projections",
        method = "get",
        operation_id = "listProjections",
        tag = "Tag::Projections"
    )]
    async fn list(&self, projectors: Data<&Projectors>) -> Result<Json<Projections>, ProblemResponse> {
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
        let projections = crate::all()
            .iter()
            .map(|projection| {
                let name = projection.name();
                let position = checkpoints
                    .iter()
                    .find(|(projection, _)| projection == name)
                    .map(|(_, position)| *position);
                ProjectionStatus {
                    name: name.to_owned(),
                    position: position.map(|p| p.to_string()),
                    caught_up: head.is_none_or(|head| position.is_some_and(|p| p >= head)),
                    held_by: leases
                        .iter()
                        .find(|lease| lease.projection == name && lease.expires_at > chrono::Utc::now())
                        .map(|lease| lease.holder.clone()),
                    replay: projectors.replays.state(name).map(Replay::from),
                }
            })
            .collect();
        Ok(Json(Projections {
            head: head.map(|p| p.to_string()),
            projections,
        }))
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
        name: Path<String>,
    ) -> Result<ReplayResponse, ProblemResponse> {
        if !auth.is_admin() {
            return Err(ProblemResponse::forbidden("only admins may replay projections"));
        }
        let projection = crate::named(&name.0).ok_or_else(|| {
            let names: Vec<_> = crate::all().iter().map(|p| p.name()).collect();
            ProblemResponse::not_found(format!(
                "no projection called {:?}: there are {}",
                name.0,
                names.join(", ")
            ))
        })?;
        let started = projectors
            .replays
            .start(
                std::sync::Arc::clone(&projectors.store),
                projectors.db.clone(),
                projection,
            )
            .map_err(|error| ProblemResponse::conflict("replay-running", error.to_string()))?;
        Ok(ReplayResponse::Started(Json(started.into())))
    }
}
