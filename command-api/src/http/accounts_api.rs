use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use poem::Request;
use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::types::Password;
use poem_openapi::{ApiResponse, Object, OpenApi, Tags};
use uuid::Uuid;

use super::fields::{DisplayNameSpec, Field, PasswordSpec, UsernameSpec};
use super::problems;
use super::request::causation;
use crate::accounts::{Accounts, AccountsError, AuthError};
use crate::aggregates::CommandError;
use crate::auth::throttle::{Throttled, address_key};
use api_common::json_body::JsonBody;
use api_common::problem::{Problem, ProblemResponse};
use domain::account::AccountError;

#[derive(Tags)]
enum Tag {
    /// Registration and login.
    Auth,
}

#[derive(Object)]
#[oai(rename_all = "camelCase")]
struct RegisterRequest {
    /// Letters, digits, `.`, `_` and `-`, unique regardless of case (stored
    /// in lowercase).
    username: Field<UsernameSpec>,
    password: Field<PasswordSpec>,
    /// Shown as given, trimmed; it may not be blank.
    display_name: Field<DisplayNameSpec>,
}

#[derive(Object)]
#[oai(rename_all = "camelCase")]
struct Registered {
    user_id: Uuid,
    /// The global position of the registration: the consistency token.
    position: String,
}

#[derive(ApiResponse)]
enum RegisterResponse {
    /// Registered.
    #[oai(status = 201)]
    Created(Json<Registered>),
}

#[derive(Object)]
struct LoginRequest {
    username: String,
    password: Password,
}

#[derive(Object)]
#[oai(rename_all = "camelCase")]
struct AccessToken {
    access_token: String,
    /// Always `Bearer`.
    token_type: String,
    /// Seconds until the token expires.
    expires_in: u64,
}

problems! {
    /// The errors of `POST /auth/register`.
    RegisterProblem {
        400 BadRequest => "The body is malformed, or a field is invalid (named in `field`).",
        409 Conflict => "The username is taken (regardless of case), or others registered it at the same time.",
        413 PayloadTooLarge => "The body is too large.",
        415 UnsupportedMediaType => "The body is not `application/json`.",
        500 Internal => "Something failed on our side.",
    }
    429 => "Too many registrations from this client address: retry after the number of seconds in \
            `Retry-After`. Decided before the password is hashed."
    503 => "The event store is unavailable, or too many passwords wait to be hashed: retry after the \
            number of seconds in `Retry-After`."
}

problems! {
    /// The errors of `POST /auth/login`.
    LoginProblem {
        400 BadRequest => "The body is malformed (a field is missing or not a string).",
        401 Unauthorized => "The username or the password is wrong (the same answer, in the same time).",
        413 PayloadTooLarge => "The body is too large.",
        415 UnsupportedMediaType => "The body is not `application/json`.",
        500 Internal => "Something failed on our side.",
    }
    429 => "Too many failed logins for this username, or from this client address: retry after the \
            number of seconds in `Retry-After`. Decided before the password is checked, so it says \
            nothing about the password; a successful login resets the username's budget."
    503 => "The event store is unavailable, or too many passwords wait to be checked: retry after the \
            number of seconds in `Retry-After`."
}

/// Seconds a client is asked to wait when the password hashing queue is
/// full: a queue drains within a second or so.
const BUSY_RETRY_AFTER_SECONDS: u32 = 1;

/// The key of the client's address: the connection's peer. Behind a
/// reverse proxy that is the proxy (README, "Modes and configuration").
pub(super) fn client(request: &Request) -> IpAddr {
    address_key(request.remote_addr().as_socket_addr().map(SocketAddr::ip))
}

/// A refused login or registration as its operation's answer; `throttled`
/// builds the operation's 429.
pub(super) fn refused<P: From<ProblemResponse>>(error: AuthError, throttled: fn(Json<Problem>, u32) -> P) -> P {
    match error {
        AuthError::Throttled(retry) => throttled(too_many_attempts(retry), retry.seconds()),
        AuthError::Busy(_) => ProblemResponse::unavailable(
            "hashing-busy",
            "too many passwords wait to be checked; retry",
            BUSY_RETRY_AFTER_SECONDS,
        )
        .into(),
        AuthError::Command(error) => ProblemResponse::from(error).into(),
    }
}

fn too_many_attempts(retry: Throttled) -> Json<Problem> {
    Json(Problem {
        kind: "/problems/too-many-attempts".to_owned(),
        title: "Too Many Requests".to_owned(),
        status: 429,
        detail: format!("too many attempts; retry in {} s", retry.seconds()),
        field: None,
    })
}

#[derive(ApiResponse)]
enum LoginResponse {
    /// Logged in.
    #[oai(status = 200)]
    Ok(Json<AccessToken>),
}

impl From<AccountsError> for ProblemResponse {
    fn from(error: AccountsError) -> Self {
        match error {
            CommandError::Refused(AccountError::UsernameTaken) => {
                Self::conflict("username-taken", "the username is taken")
            }
            other => super::failure(other),
        }
    }
}

pub struct AccountsApi;

#[OpenApi]
impl AccountsApi {
    /// Register a customer account.
    ///
    /// Usernames are unique regardless of case. Only an argon2id hash of the
    /// password is stored.
    #[oai(
        path = "/auth/register",
        method = "post",
        operation_id = "register",
        tag = "Tag::Auth"
    )]
    async fn register(
        &self,
        accounts: Data<&Arc<Accounts>>,
        request: &Request,
        body: JsonBody<RegisterRequest>,
    ) -> Result<RegisterResponse, RegisterProblem> {
        let body = body.0;
        let registered = accounts
            .register(
                &body.username,
                &body.password,
                &body.display_name,
                causation(request, None),
                client(request),
            )
            .await
            .map_err(|error| refused(error, RegisterProblem::TooManyRequests))?;
        Ok(RegisterResponse::Created(Json(Registered {
            user_id: registered.user_id.as_uuid(),
            position: registered.position.to_string(),
        })))
    }

    /// Log in and receive an access token.
    ///
    /// An unknown user and a wrong password get the same 401 answer, in the
    /// same time. Past a few failures for a username, or many from one
    /// client address, the answer is 429 until the budget refills.
    #[oai(path = "/auth/login", method = "post", operation_id = "login", tag = "Tag::Auth")]
    async fn login(
        &self,
        accounts: Data<&Arc<Accounts>>,
        request: &Request,
        body: JsonBody<LoginRequest>,
    ) -> Result<LoginResponse, LoginProblem> {
        let token = accounts
            .login(&body.username, body.password.as_str(), client(request))
            .await
            .map_err(|error| refused(error, LoginProblem::TooManyRequests))?
            .ok_or_else(|| ProblemResponse::unauthorized("invalid username or password"))?;
        Ok(LoginResponse::Ok(Json(AccessToken {
            access_token: token.token,
            token_type: "Bearer".to_owned(),
            expires_in: token.expires_in_seconds,
        })))
    }
}
