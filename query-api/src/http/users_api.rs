use api_common::bearer::BearerAuth;
use api_common::problem::{Problem, ProblemResponse};
use poem::web::Data;
use poem_openapi::param::{Header, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi, Tags};
use sea_orm::EntityTrait;
use uuid::Uuid;
use views::tables::users;

use super::paging::MinPosition;
use super::{Views, reflected};

#[derive(Tags)]
enum Tag {
    /// Your profile.
    Me,
}

#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub(super) struct Profile {
    user_id: Uuid,
    username: String,
    display_name: String,
    role: Role,
    registered_at: chrono::DateTime<chrono::Utc>,
}

impl TryFrom<users::Model> for Profile {
    type Error = ProblemResponse;

    fn try_from(row: users::Model) -> Result<Self, ProblemResponse> {
        Ok(Self {
            role: Role::of(&row)?,
            user_id: row.user_id,
            username: row.username,
            display_name: row.display_name,
            registered_at: row.registered_at,
        })
    }
}

/// What the user may do: customers order, admins also run the catalog.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename_all = "camelCase")]
pub(super) enum Role {
    Customer,
    Admin,
}

impl Role {
    /// The role as the users view spells it.
    pub(super) fn stored(self) -> &'static str {
        match self {
            Self::Customer => "customer",
            Self::Admin => "admin",
        }
    }

    /// The role as the users view stores it (the domain's serde form).
    fn of(row: &users::Model) -> Result<Self, ProblemResponse> {
        let role: domain::account::Role = serde_json::from_value(row.role.clone().into()).map_err(|error| {
            ProblemResponse::internal(format!("user {} in the view: unreadable role: {error}", row.user_id))
        })?;
        Ok(match role {
            domain::account::Role::Customer => Self::Customer,
            domain::account::Role::Admin => Self::Admin,
        })
    }
}

#[derive(ApiResponse)]
enum ProfileResponse {
    /// Your profile.
    #[oai(status = 200)]
    Ok(Json<Profile>, #[oai(header = "X-Position")] String),
    /// A parameter is invalid (named in `field`).
    #[oai(status = 400, content_type = "application/problem+json")]
    BadRequest(Json<Problem>),
    /// No valid access token.
    #[oai(status = 401, content_type = "application/problem+json")]
    Unauthorized(Json<Problem>),
    /// No profile yet: pass the registration's position as `minPosition`.
    #[oai(status = 404, content_type = "application/problem+json")]
    NotFound(Json<Problem>),
    /// The views failed to answer.
    #[oai(status = 500, content_type = "application/problem+json")]
    Internal(Json<Problem>),
    /// The users view has not reached `minPosition` within the wait, or
    /// the views database is unavailable: retry after `Retry-After`
    /// seconds.
    #[oai(status = 503, content_type = "application/problem+json")]
    Unavailable(Json<Problem>, #[oai(header = "Retry-After")] u32),
}
api_common::problem_answers!(ProfileResponse: BadRequest, Unauthorized, NotFound; Unavailable);

pub struct UsersApi;

#[OpenApi]
impl UsersApi {
    /// Your profile.
    #[oai(path = "/me", method = "get", operation_id = "getMe", tag = "Tag::Me")]
    async fn me(
        &self,
        state: Data<&Views>,
        auth: BearerAuth,
        /// Wait until the view reflects this position (from a command's answer).
        #[oai(name = "minPosition")]
        min_position: Query<Option<MinPosition>>,
        /// The same as `minPosition`, which wins when both are given.
        #[oai(name = "X-Min-Position")]
        min_position_header: Header<Option<MinPosition>>,
    ) -> ProfileResponse {
        let answer: Result<_, ProblemResponse> = async {
            let position = reflected(
                &state.freshness,
                &[views::projections::USERS],
                min_position.0,
                min_position_header.0,
            )
            .await?;
            let row = users::Entity::find_by_id(auth.0.sub)
                .one(&state.db)
                .await
                .map_err(super::views_failed)?
                .ok_or_else(|| {
                    ProblemResponse::not_found("no profile yet; pass the registration's position as minPosition")
                })?;
            Ok(ProfileResponse::Ok(Json(Profile::try_from(row)?), position))
        }
        .await;
        answer.unwrap_or_else(Into::into)
    }
}
