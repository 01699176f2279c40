//! `GET /users`: every user, for administrators.

use api_common::bearer::BearerAuth;
use api_common::problem::{Problem, ProblemResponse};
use poem::web::Data;
use poem_openapi::param::{Header, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi, Tags};
use sea_orm::sea_query::{Expr, LikeExpr};
use sea_orm::{ColumnTrait, EntityTrait, ExprTrait, QueryFilter, QueryOrder, QuerySelect, Select};
use views::tables::users;

use super::paging::{Limit, MinPosition, UsernameParam};
use super::users_api::{Profile, Role};
use super::{Views, reflected};

const READS: &[&str] = &[views::projections::USERS];

#[derive(Tags)]
enum Tag {
    /// Users (admins only).
    Users,
}

#[derive(Object)]
#[oai(rename_all = "camelCase")]
struct UserPage {
    /// In username order.
    items: Vec<Profile>,
    /// Pass as `cursor` (with the same filters) for the next page.
    #[oai(skip_serializing_if_is_none)]
    next_cursor: Option<String>,
}

#[derive(ApiResponse)]
enum UserListResponse {
    /// A page of users.
    #[oai(status = 200)]
    Ok(Json<UserPage>, #[oai(header = "X-Position")] String),
    /// A parameter is invalid (named in `field`).
    #[oai(status = 400, content_type = "application/problem+json")]
    BadRequest(Json<Problem>),
    /// No valid access token.
    #[oai(status = 401, content_type = "application/problem+json")]
    Unauthorized(Json<Problem>),
    /// The token's user is not an administrator.
    #[oai(status = 403, content_type = "application/problem+json")]
    Forbidden(Json<Problem>),
    /// The views failed to answer, or hold a user this build cannot read.
    #[oai(status = 500, content_type = "application/problem+json")]
    Internal(Json<Problem>),
    /// The users view has not reached `minPosition` within the wait, or
    /// the views database is unavailable: retry after `Retry-After`
    /// seconds.
    #[oai(status = 503, content_type = "application/problem+json")]
    Unavailable(Json<Problem>, #[oai(header = "Retry-After")] u32),
}
api_common::problem_answers!(UserListResponse: BadRequest, Unauthorized, Forbidden; Unavailable);

pub struct UserListApi;

#[OpenApi]
impl UserListApi {
    /// Every user (admins only), in username order, optionally of one role
    /// and with a fragment in their username, paged by `cursor`.
    #[allow(clippy::too_many_arguments)]
    #[oai(path = "/users", method = "get", operation_id = "listUsers", tag = "Tag::Users")]
    async fn list(
        &self,
        state: Data<&Views>,
        auth: BearerAuth,
        /// Only users with this role.
        role: Query<Option<Role>>,
        /// Only users whose username contains this, in any case.
        username: Query<Option<UsernameParam>>,
        /// How many users a page holds.
        limit: Query<Option<Limit>>,
        /// From a previous page's `nextCursor` (with the same filters).
        cursor: Query<Option<UsernameParam>>,
        /// Wait until the view reflects this position (from a command's answer).
        #[oai(name = "minPosition")]
        min_position: Query<Option<MinPosition>>,
        /// The same as `minPosition`, which wins when both are given.
        #[oai(name = "X-Min-Position")]
        min_position_header: Header<Option<MinPosition>>,
    ) -> UserListResponse {
        let answer: Result<_, ProblemResponse> = async {
            if !auth.is_admin() {
                return Err(ProblemResponse::forbidden("only administrators list users"));
            }
            let Limit(limit) = limit.0.unwrap_or_default();
            let position = reflected(&state.freshness, READS, min_position.0, min_position_header.0).await?;
            let query = filtered(role.0, username.0.as_ref(), cursor.0.as_ref());
            let mut rows = query
                .order_by_asc(users::Column::Username)
                .limit(limit + 1)
                .all(&state.db)
                .await
                .map_err(super::views_failed)?;
            let more = rows.len() as u64 > limit;
            rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
            let next_cursor = more.then(|| rows.last().map(|row| row.username.clone())).flatten();
            let items = rows.into_iter().map(Profile::try_from).collect::<Result<_, _>>()?;
            Ok(UserListResponse::Ok(Json(UserPage { items, next_cursor }), position))
        }
        .await;
        answer.unwrap_or_else(Into::into)
    }
}

/// The users of `role` whose username holds `fragment`, after `cursor`'s.
fn filtered(
    role: Option<Role>,
    fragment: Option<&UsernameParam>,
    cursor: Option<&UsernameParam>,
) -> Select<users::Entity> {
    let mut query = users::Entity::find();
    if let Some(role) = role {
        query = query.filter(users::Column::Role.eq(role.stored()));
    }
    if let Some(UsernameParam(fragment)) = fragment {
        let pattern = LikeExpr::new(contains_pattern(fragment)).escape('\\');
        query = query.filter(Expr::col(users::Column::Username).like(pattern));
    }
    if let Some(UsernameParam(after)) = cursor {
        query = query.filter(users::Column::Username.gt(after.as_str()));
    }
    query
}

/// `LIKE` pattern matching `fragment` anywhere, with `\` escaping the
/// one wildcard the usernames' alphabet holds (`_`).
fn contains_pattern(fragment: &str) -> String {
    format!("%{}%", fragment.replace('_', "\\_"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_underscore_in_a_fragment_is_no_wildcard() {
        assert_eq!(contains_pattern("a_b"), "%a\\_b%");
        assert_eq!(contains_pattern("ali"), "%ali%");
    }
}
