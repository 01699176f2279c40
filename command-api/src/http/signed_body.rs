//! A JSON body kept with the bytes it was parsed from: a webhook's
//! signature covers the body exactly as sent, which no re-serialised value
//! reproduces.

use poem::{FromRequest, Request, RequestBody};
use poem_openapi::payload::{Json, ParsePayload, Payload};
use poem_openapi::registry::{MetaSchemaRef, Registry};
use poem_openapi::types::{ParseFromJSON, Type};

/// Parsed and checked as [`api_common::json_body::JsonBody`] does, and
/// documented with the same schema.
pub struct SignedBody<T> {
    pub value: T,
    pub raw: Vec<u8>,
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
        let value = api_common::json_body::parse(&raw)?;
        Ok(Self { value, raw })
    }
}

poem_openapi::impl_apirequest_for_payload!(SignedBody<T>, T: ParseFromJSON);
