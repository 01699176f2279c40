//! JSON request bodies that name the field at fault.
//!
//! poem-openapi's own `Json<T>` reports a missing or mistyped field by its
//! type only, and reads a number where a string is declared. `JsonBody<T>`
//! checks the body against `T`'s own schema first, strictly (money is a
//! decimal string, never a JSON number), and names the field by its path,
//! such as `items[2].quantity`. The documented schema is the same.

use poem::{FromRequest, Request, RequestBody};
use poem_openapi::payload::{Json, ParsePayload, Payload};
use poem_openapi::registry::{MetaSchemaRef, Registry};
use poem_openapi::types::{ParseFromJSON, Type};
use serde_json::Value;

/// A JSON body checked against its schema before it is parsed.
pub struct JsonBody<T>(pub T);

impl<T> std::ops::Deref for JsonBody<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

/// The body does not match its schema.
#[derive(Debug, thiserror::Error)]
#[error("{field} {reason}")]
pub struct InvalidBody {
    pub field: String,
    pub reason: &'static str,
}

impl poem::error::ResponseError for InvalidBody {
    fn status(&self) -> poem::http::StatusCode {
        poem::http::StatusCode::BAD_REQUEST
    }
}

impl<T: Type> Payload for JsonBody<T> {
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

impl<T: ParseFromJSON> ParsePayload for JsonBody<T> {
    const IS_REQUIRED: bool = T::IS_REQUIRED;

    async fn from_request(request: &Request, body: &mut RequestBody) -> poem::Result<Self> {
        let data = Vec::<u8>::from_request(request, body).await?;
        let value: Value =
            serde_json::from_slice(&data).map_err(|e| poem_openapi::error::ParseRequestPayloadError {
                reason: format!("the body is not valid JSON: {e}"),
            })?;
        let mut registry = Registry::new();
        T::register(&mut registry);
        check(&registry, &T::schema_ref(), &value, "")?;
        T::parse_from_json(Some(value)).map(Self).map_err(|e| {
            poem_openapi::error::ParseRequestPayloadError {
                reason: e.into_message(),
            }
            .into()
        })
    }
}

poem_openapi::impl_apirequest_for_payload!(JsonBody<T>, T: ParseFromJSON);

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_owned()
    } else {
        format!("{path}.{name}")
    }
}

fn invalid(path: &str, reason: &'static str) -> InvalidBody {
    InvalidBody {
        field: if path.is_empty() {
            "body".to_owned()
        } else {
            path.to_owned()
        },
        reason,
    }
}

/// Checks `value` against `schema`: required fields, and JSON types.
fn check(registry: &Registry, schema: &MetaSchemaRef, value: &Value, path: &str) -> Result<(), InvalidBody> {
    let schema = match schema {
        MetaSchemaRef::Inline(schema) => schema.as_ref(),
        MetaSchemaRef::Reference(name) => match registry.schemas.get(name) {
            Some(schema) => schema,
            None => return Ok(()),
        },
    };
    match schema.ty {
        "object" if !schema.properties.is_empty() => {
            let Value::Object(fields) = value else {
                return Err(invalid(path, "must be a JSON object"));
            };
            for required in &schema.required {
                if fields.get(*required).is_none_or(Value::is_null) {
                    return Err(invalid(&join(path, required), "is required"));
                }
            }
            for (name, field_schema) in &schema.properties {
                if let Some(field) = fields.get(*name).filter(|v| !v.is_null()) {
                    check(registry, field_schema, field, &join(path, name))?;
                }
            }
            Ok(())
        }
        "array" => {
            let Value::Array(items) = value else {
                return Err(invalid(path, "must be an array"));
            };
            if let Some(item_schema) = &schema.items {
                for (index, item) in items.iter().enumerate() {
                    check(registry, item_schema, item, &format!("{path}[{index}]"))?;
                }
            }
            Ok(())
        }
        "string" if !value.is_string() => Err(invalid(path, "must be a string")),
        "integer" if !(value.is_i64() || value.is_u64()) => Err(invalid(path, "must be an integer")),
        "number" if !value.is_number() => Err(invalid(path, "must be a number")),
        "boolean" if !value.is_boolean() => Err(invalid(path, "must be true or false")),
        _ => Ok(()),
    }
}
