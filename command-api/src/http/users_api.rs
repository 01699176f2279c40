//! Administrators managing users: `PUT /users/{id}/role`.

use std::sync::Arc;

use poem::Request;
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi, Tags};
use uuid::Uuid;

use super::fields::{Field, UuidSpec};
use super::problems;
use super::request::{causation, path_id};
use crate::accounts::{Accounts, RoleChangeError};
use crate::aggregates::CommandError;
use api_common::bearer::BearerAuth;
use api_common::json_body::JsonBody;
use api_common::problem::ProblemResponse;
use domain::account::administrators::RosterError;
use domain::account::{AccountError, Role};
use domain::ids::UserId;

#[derive(Tags)]
enum Tag {
    /// Users' roles (admins only).
    Users,
}

#[derive(Enum, Clone, Copy)]
#[oai(rename_all = "camelCase")]
enum RoleName {
    Admin,
    Customer,
}

impl From<RoleName> for Role {
    fn from(role: RoleName) -> Self {
        match role {
            RoleName::Admin => Role::Admin,
            RoleName::Customer => Role::Customer,
        }
    }
}

impl From<Role> for RoleName {
    fn from(role: Role) -> Self {
        match role {
            Role::Admin => RoleName::Admin,
            Role::Customer => RoleName::Customer,
        }
    }
}

#[derive(Object)]
struct ChangeRole {
    role: RoleName,
}

#[derive(Object)]
#[oai(rename_all = "camelCase")]
struct RoleChanged {
    user_id: Uuid,
    role: RoleName,
    /// The global position of the account's last event: the consistency
    /// token.
    position: String,
}

#[derive(ApiResponse)]
enum ChangeRoleResponse {
    /// Changed (or already as asked).
    #[oai(status = 200)]
    Ok(Json<RoleChanged>),
}

problems! {
    /// The errors of `PUT /users/{id}/role`.
    ChangeRoleProblem {
        400 BadRequest => "The body is malformed, or `role` or the id is invalid (named in `field`).",
        401 Unauthorized => "No valid access token.",
        403 Forbidden => "Only administrators change roles (and only those the roster of administrators counts).",
        404 NotFound => "No such user.",
        409 Conflict => "You cannot remove your own role, the last administrator cannot be demoted, or others \
                         changed roles at the same time: retry.",
        413 PayloadTooLarge => "The body is too large.",
        415 UnsupportedMediaType => "The body is not `application/json`.",
        500 Internal => "Something failed on our side.",
    }
    503 => "The event store is unavailable: retry after the number of seconds in `Retry-After`."
}

impl From<RoleChangeError> for ProblemResponse {
    fn from(error: RoleChangeError) -> Self {
        match error {
            RoleChangeError::Roster(CommandError::Refused(RosterError::SelfDismissal)) => {
                Self::conflict("self-demotion", "an administrator cannot remove their own role")
            }
            RoleChangeError::Roster(CommandError::Refused(RosterError::LastAdministrator)) => {
                Self::conflict("last-administrator", "the last administrator cannot be demoted")
            }
            RoleChangeError::Roster(CommandError::Refused(RosterError::NotAnAdministrator)) => {
                Self::forbidden("the roster of administrators does not count you")
            }
            RoleChangeError::Roster(other) => super::failure(other),
            RoleChangeError::Account(CommandError::Refused(AccountError::NotFound)) => Self::not_found("no such user"),
            RoleChangeError::Account(other) => super::failure(other),
        }
    }
}

pub struct UsersApi;

#[OpenApi]
impl UsersApi {
    /// Change a user's role.
    ///
    /// Recorded with the acting administrator in the events' metadata. You
    /// cannot remove your own role, and the last administrator cannot be
    /// demoted. The user's earlier tokens stop working (they carry the old
    /// role): on the command API at once, on the query API and the
    /// projectors' admin API within the users projection's lag plus 5 s.
    #[oai(
        path = "/users/:id/role",
        method = "put",
        operation_id = "changeRole",
        tag = "Tag::Users"
    )]
    async fn change_role(
        &self,
        accounts: Data<&Arc<Accounts>>,
        auth: BearerAuth,
        request: &Request,
        /// The user's id.
        id: Path<Field<UuidSpec>>,
        body: JsonBody<ChangeRole>,
    ) -> Result<ChangeRoleResponse, ChangeRoleProblem> {
        if !auth.is_admin() {
            return Err(ProblemResponse::forbidden("only administrators change roles").into());
        }
        let user_id = path_id(&id)?;
        let changed = accounts
            .change_role(
                UserId::from_uuid(user_id),
                body.role.into(),
                auth.user_id(),
                causation(request, Some(auth.0.sub)),
            )
            .await
            .map_err(ProblemResponse::from)?;
        Ok(ChangeRoleResponse::Ok(Json(RoleChanged {
            user_id,
            role: changed.role.into(),
            position: changed.position.map(|p| p.to_string()).unwrap_or_default(),
        })))
    }
}
