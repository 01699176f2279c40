use api_common::bearer::BearerAuth;
use api_common::problem::ProblemResponse;
use poem::web::Data;
use poem_openapi::param::{Header, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi, Tags};
use sea_orm::EntityTrait;
use uuid::Uuid;
use views::tables::users;

use super::{Views, reflected};

#[derive(Tags)]
enum Tag {
    /// Your profile.
    Me,
}

#[derive(Object)]
#[oai(rename_all = "camelCase")]
struct Profile {
    user_id: Uuid,
    username: String,
    display_name: String,
    /// `customer` or `admin`.
    role: String,
    registered_at: chrono::DateTime<chrono::Utc>,
}

#[derive(ApiResponse)]
enum ProfileResponse {
    /// Your profile.
    #[oai(status = 200)]
    Ok(Json<Profile>, #[oai(header = "X-Position")] String),
}

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
        min_position: Query<Option<String>>,
        #[oai(name = "X-Min-Position")] min_position_header: Header<Option<String>>,
    ) -> Result<ProfileResponse, ProblemResponse> {
        let position = reflected(
            &state.freshness,
            &[views::projections::USERS],
            min_position.as_deref(),
            min_position_header.as_deref(),
        )
        .await?;
        let row = users::Entity::find_by_id(auth.0.sub)
            .one(&state.db)
            .await
            .map_err(ProblemResponse::internal)?
            .ok_or_else(|| {
                ProblemResponse::not_found("no profile yet; pass the registration's position as minPosition")
            })?;
        Ok(ProfileResponse::Ok(
            Json(Profile {
                user_id: row.user_id,
                username: row.username,
                display_name: row.display_name,
                role: row.role,
                registered_at: row.registered_at,
            }),
            position,
        ))
    }
}
