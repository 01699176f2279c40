//! A user's own credentials: `POST /me/password` and `POST /auth/logout`.

use std::sync::Arc;

use poem::Request;
use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::types::{MaybeUndefined, Password};
use poem_openapi::{ApiResponse, Object, OpenApi, Tags};

use super::accounts_api::{client, refused};
use super::fields::{Field, PasswordSpec};
use super::problems;
use super::request::causation;
use crate::accounts::{Accounts, AuthError};
use crate::aggregates::CommandError;
use api_common::bearer::BearerAuth;
use api_common::json_body::JsonBody;
use api_common::problem::ProblemResponse;
use domain::account::AccountError;
use domain::validation::{InvalidField, Problem};

#[derive(Tags)]
enum Tag {
    /// Your own credentials.
    Credentials,
}

#[derive(Object)]
#[oai(rename_all = "camelCase")]
struct ChangePassword {
    /// The password you log in with now.
    current_password: Password,
    /// The same rules as at registration, and not the current one.
    new_password: Field<PasswordSpec>,
}

#[derive(Object)]
#[oai(rename_all = "camelCase")]
struct PasswordChanged {
    /// The global position of the change: the consistency token.
    position: String,
    /// A token for the new credentials (every earlier one stops working).
    access_token: String,
    /// Always `Bearer`.
    token_type: String,
    /// Seconds until the token expires.
    expires_in: u64,
}

#[derive(ApiResponse)]
enum ChangePasswordResponse {
    /// Changed.
    #[oai(status = 200)]
    Ok(Json<PasswordChanged>),
}

#[derive(Object)]
struct Logout {
    /// Every token of yours, not only this one (default `false`).
    everywhere: MaybeUndefined<bool>,
}

#[derive(Object)]
struct LoggedOut {
    /// The global position of the logout: the consistency token.
    position: String,
}

#[derive(ApiResponse)]
enum LogoutResponse {
    /// Logged out (again: the same answer, nothing new appended).
    #[oai(status = 200)]
    Ok(Json<LoggedOut>),
}

problems! {
    /// The errors of `POST /me/password`.
    ChangePasswordProblem {
        400 BadRequest => "The body is malformed, or a field is invalid (named in `field`).",
        401 Unauthorized => "No valid access token.",
        404 NotFound => "The token's account does not exist.",
        409 Conflict => "The password was changed meanwhile, or others changed the account at the same time: retry.",
        413 PayloadTooLarge => "The body is too large.",
        415 UnsupportedMediaType => "The body is not `application/json`.",
        422 Unprocessable => "`currentPassword` is wrong, or `newPassword` is the current password (named in `field`).",
        500 Internal => "Something failed on our side.",
    }
    429 => "Too many wrong passwords for this account, or from this client address (the login budgets): \
            retry after the number of seconds in `Retry-After`. Decided before the password is checked."
    503 => "The event store is unavailable, or too many passwords wait to be checked: retry after the \
            number of seconds in `Retry-After`."
}

problems! {
    /// The errors of `POST /auth/logout`.
    LogoutProblem {
        400 BadRequest => "The body is malformed, or `everywhere` is not a boolean.",
        401 Unauthorized => "No valid access token (a token logged out already is no longer valid).",
        409 Conflict => "Others changed the account at the same time: retry.",
        413 PayloadTooLarge => "The body is too large.",
        415 UnsupportedMediaType => "The body is not `application/json`.",
        500 Internal => "Something failed on our side.",
    }
    503 => "The event store is unavailable: retry after the number of seconds in `Retry-After`."
}

/// The refusals of a password change, each naming its field.
fn password_refused(error: AuthError) -> ChangePasswordProblem {
    match error {
        AuthError::Command(CommandError::Refused(AccountError::WrongPassword)) => ProblemResponse::unprocessable(
            "wrong-password",
            "the current password is wrong",
            Some("currentPassword"),
        )
        .into(),
        AuthError::Command(CommandError::Refused(AccountError::SamePassword)) => ProblemResponse::unprocessable(
            "same-password",
            "the new password is the current one",
            Some("newPassword"),
        )
        .into(),
        AuthError::Command(CommandError::Refused(AccountError::PasswordChangedMeanwhile)) => {
            ProblemResponse::conflict("password-changed", "the password was changed meanwhile; retry").into()
        }
        AuthError::Command(CommandError::Refused(AccountError::NotFound)) => {
            ProblemResponse::not_found("no such account").into()
        }
        other => refused(other, ChangePasswordProblem::TooManyRequests),
    }
}

pub struct CredentialsApi;

#[OpenApi]
impl CredentialsApi {
    /// Change your password.
    ///
    /// The current password must be right, and is throttled as a login is;
    /// the new one follows the registration's rules and must differ. Every
    /// token issued before stops working: on the command API at once, on
    /// the query API and the projectors' admin API within the users
    /// projection's lag plus 5 s. The answer carries a new token.
    #[oai(
        path = "/me/password",
        method = "post",
        operation_id = "changePassword",
        tag = "Tag::Credentials"
    )]
    async fn change_password(
        &self,
        accounts: Data<&Arc<Accounts>>,
        auth: BearerAuth,
        request: &Request,
        body: JsonBody<ChangePassword>,
    ) -> Result<ChangePasswordResponse, ChangePasswordProblem> {
        let changed = accounts
            .change_password(
                auth.user_id(),
                body.current_password.as_str(),
                &body.new_password,
                causation(request, Some(auth.0.sub)),
                client(request),
            )
            .await
            .map_err(password_refused)?;
        Ok(ChangePasswordResponse::Ok(Json(PasswordChanged {
            position: changed.position.to_string(),
            access_token: changed.token.token,
            token_type: "Bearer".to_owned(),
            expires_in: changed.token.expires_in_seconds,
        })))
    }

    /// Log out.
    ///
    /// The token presented stops working, or with `everywhere` every token
    /// of yours: on the command API at once, on the query API and the
    /// projectors' admin API within the users projection's lag plus 5 s.
    #[oai(
        path = "/auth/logout",
        method = "post",
        operation_id = "logout",
        tag = "Tag::Credentials"
    )]
    async fn logout(
        &self,
        accounts: Data<&Arc<Accounts>>,
        auth: BearerAuth,
        request: &Request,
        body: JsonBody<Logout>,
    ) -> Result<LogoutResponse, LogoutProblem> {
        // Absent means `false`; `null` is not a boolean (the schema allows
        // none), so it is refused rather than read as absent.
        let everywhere = match &body.everywhere {
            MaybeUndefined::Null => {
                let malformed = InvalidField::new("everywhere", Problem::Malformed { what: "boolean" });
                return Err(ProblemResponse::invalid(&malformed).into());
            }
            everywhere => matches!(everywhere, MaybeUndefined::Value(true)),
        };
        let position = accounts
            .log_out(&auth.0, everywhere, causation(request, Some(auth.0.sub)))
            .await
            .map_err(ProblemResponse::from)?;
        Ok(LogoutResponse::Ok(Json(LoggedOut {
            position: position.map(|p| p.to_string()).unwrap_or_default(),
        })))
    }
}
