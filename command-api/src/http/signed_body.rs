//! A JSON body read as the bytes sent and parsed only when the operation
//! asks: a webhook's signature covers the body exactly as sent, which no
//! re-serialised value reproduces, and is checked before the body is
//! parsed, so a caller who may not settle learns nothing of its fields.

use std::marker::PhantomData;

use poem::http::StatusCode;
use poem::{FromRequest, Request, RequestBody};
use poem_openapi::payload::{Json, ParsePayload, Payload};
use poem_openapi::registry::{MetaSchemaRef, Registry};
use poem_openapi::types::{ParseFromJSON, Type};

use api_common::json_body::InvalidBody;
use api_common::problem::{Problem, ProblemResponse};

/// Documented with `T`'s schema, and parsed by [`SignedBody::parse`] as
/// [`api_common::json_body::JsonBody`] parses.
pub struct SignedBody<T> {
    pub raw: Vec<u8>,
    parsed_as: PhantomData<fn() -> T>,
}

impl<T: ParseFromJSON + 'static> SignedBody<T> {
    /// The body checked against `T`'s schema: 400 naming the field at
    /// fault, as `JsonBody` answers before an operation runs.
    pub fn parse(&self) -> Result<T, ProblemResponse> {
        api_common::json_body::parse(&self.raw).map_err(|error| {
            let (kind, detail, field) = match error.downcast_ref::<InvalidBody>() {
                Some(invalid) => ("invalid-field", invalid.to_string(), Some(invalid.field.clone())),
                None => ("malformed-request", error.to_string(), None),
            };
            ProblemResponse::BadRequest(Json(Problem {
                kind: format!("/problems/{kind}"),
                title: "Bad Request".to_owned(),
                status: StatusCode::BAD_REQUEST.as_u16(),
                detail,
                field,
            }))
        })
    }
}

impl<T: Type> Payload for SignedBody<T> {
    const CONTENT_TYPE: &'static str = Json::<T>::CONTENT_TYPE;

    fn check_content_type(content_type: &str) -> bool {
        Json::<T>::check_content_type(content_type)
    }

    fn schema_ref() -> MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

impl<T: ParseFromJSON> ParsePayload for SignedBody<T> {
    const IS_REQUIRED: bool = T::IS_REQUIRED;

    async fn from_request(request: &Request, body: &mut RequestBody) -> poem::Result<Self> {
        let raw = Vec::<u8>::from_request(request, body).await?;
        Ok(Self {
            raw,
            parsed_as: PhantomData,
        })
    }
}

poem_openapi::impl_apirequest_for_payload!(SignedBody<T>, T: ParseFromJSON);
