//! JSON request bodies that name the field at fault.
//!
//! poem-openapi's own `Json<T>` reports a missing or mistyped field by its
//! type only, and reads a number where a string is declared. `JsonBody<T>`
//! checks the body against `T`'s own schema first, strictly (money is a
//! decimal string, never a JSON number), and names the field by its path,
//! such as `items[2].quantity`. The documented schema is the same, so every
//! bound it states (lengths, patterns, ranges, item counts) is enforced.

use poem::{FromRequest, Request, RequestBody};
use poem_openapi::payload::{Json, ParsePayload, Payload};
use std::any::TypeId;
use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, OnceLock, RwLock};

use poem_openapi::registry::{MetaSchema, MetaSchemaRef, Registry};
use poem_openapi::types::{ParseFromJSON, Type};
use regex::Regex;
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
    pub reason: String,
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

impl<T: ParseFromJSON + 'static> ParsePayload for JsonBody<T> {
    const IS_REQUIRED: bool = T::IS_REQUIRED;

    async fn from_request(request: &Request, body: &mut RequestBody) -> poem::Result<Self> {
        let data = Vec::<u8>::from_request(request, body).await?;
        parse(&data).map(Self)
    }
}

/// Parses `data` as [`JsonBody`] does: checked against `T`'s schema first,
/// naming the field at fault. For a payload that also keeps the bytes it
/// was parsed from (a signed body).
pub fn parse<T: ParseFromJSON + 'static>(data: &[u8]) -> poem::Result<T> {
    let value: Value = serde_json::from_slice(data).map_err(|e| poem_openapi::error::ParseRequestPayloadError {
        reason: format!("the body is not valid JSON: {e}"),
    })?;
    validate::<T>(&value)?;
    T::parse_from_json(Some(value)).map_err(|e| {
        poem_openapi::error::ParseRequestPayloadError {
            reason: e.into_message(),
        }
        .into()
    })
}

poem_openapi::impl_apirequest_for_payload!(JsonBody<T>, T: ParseFromJSON + 'static);

/// Checks `value` against `T`'s schema as [`JsonBody`] does before parsing
/// it: what the document says of `T` is what is enforced.
pub fn validate<T: Type + 'static>(value: &Value) -> Result<(), InvalidBody> {
    let schema = Schema::of::<T>();
    check(&schema.registry, &schema.root, value, "")
}

/// A type's schema and the registry its references resolve in.
struct Schema {
    registry: Registry,
    root: MetaSchemaRef,
}

impl Schema {
    /// `T`'s, built on first use and kept: building it for every request
    /// took 2% of the command API's CPU placing orders (#15).
    fn of<T: Type + 'static>() -> Arc<Self> {
        static BUILT: Memo<TypeId, Arc<Schema>> = OnceLock::new();
        remembered(&BUILT, &TypeId::of::<T>(), || {
            let mut registry = Registry::new();
            T::register(&mut registry);
            Arc::new(Self {
                registry,
                root: T::schema_ref(),
            })
        })
    }
}

/// Values built once per key and kept for the life of the process.
type Memo<K, V> = OnceLock<RwLock<HashMap<K, V>>>;

/// What `memo` holds for `key`, built with `build` the first time. Two
/// threads may both build a missing value; the keys here are types and
/// schema patterns, few and fixed, so that costs less than holding the
/// write lock while building.
fn remembered<K, Q, V>(memo: &Memo<K, V>, key: &Q, build: impl FnOnce() -> V) -> V
where
    K: Borrow<Q> + Hash + Eq,
    Q: ToOwned<Owned = K> + Hash + Eq + ?Sized,
    V: Clone,
{
    let memo = memo.get_or_init(RwLock::default);
    let known = memo
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(key)
        .cloned();
    if let Some(value) = known {
        return value;
    }
    let value = build();
    memo.write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .insert(key.to_owned(), value.clone());
    value
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_owned()
    } else {
        format!("{path}.{name}")
    }
}

fn invalid(path: &str, reason: impl Into<String>) -> InvalidBody {
    InvalidBody {
        field: if path.is_empty() {
            "body".to_owned()
        } else {
            path.to_owned()
        },
        reason: reason.into(),
    }
}

/// Checks `value` against `schema`: required fields, JSON types, and the
/// keywords that bound a value (see [`check_bounds`]).
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
            check_bounds(schema, value, path)?;
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
        _ => check_bounds(schema, value, path),
    }
}

/// Checks the keywords that bound a value of the right JSON type, as JSON
/// Schema defines them: `enum`; `minLength`/`maxLength` in characters and
/// `pattern` (unanchored) for strings; `minimum`/`maximum` for numbers;
/// `minItems`/`maxItems` for arrays.
fn check_bounds(schema: &MetaSchema, value: &Value, path: &str) -> Result<(), InvalidBody> {
    if !schema.enum_items.is_empty() && !schema.enum_items.contains(value) {
        let allowed: Vec<String> = schema.enum_items.iter().map(Value::to_string).collect();
        return Err(invalid(path, format!("must be one of {}", allowed.join(", "))));
    }
    match value {
        Value::String(text) => check_text(schema, text, path),
        Value::Number(number) => {
            // Always a number: serde_json reads no NaN.
            let number = number.as_f64().unwrap_or_default();
            let below = schema.minimum.is_some_and(|min| number < min);
            let above = schema.maximum.is_some_and(|max| number > max);
            if below || above {
                let bound = |b: Option<f64>| b.map_or_else(|| "any".to_owned(), |b| b.to_string());
                let (min, max) = (bound(schema.minimum), bound(schema.maximum));
                return Err(invalid(path, format!("must be between {min} and {max}")));
            }
            Ok(())
        }
        Value::Array(items) => {
            let count = items.len();
            if schema.min_items.is_some_and(|min| count < min) || schema.max_items.is_some_and(|max| count > max) {
                let min = schema.min_items.unwrap_or(0);
                let max = schema.max_items.map_or_else(|| "any".to_owned(), |max| max.to_string());
                return Err(invalid(path, format!("must have between {min} and {max} entries")));
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn check_text(schema: &MetaSchema, text: &str, path: &str) -> Result<(), InvalidBody> {
    let length = text.chars().count();
    if let Some(min) = schema.min_length.filter(|min| length < *min) {
        return Err(invalid(path, format!("must be at least {min} characters long")));
    }
    if let Some(max) = schema.max_length.filter(|max| length > *max) {
        return Err(invalid(path, format!("must be at most {max} characters long")));
    }
    if let Some(pattern) = &schema.pattern
        && !matches(pattern, text)
    {
        return Err(invalid(path, format!("must match the pattern {pattern}")));
    }
    Ok(())
}

/// Whether `text` matches `pattern` anywhere, as JSON Schema's `pattern`
/// says. Each distinct pattern of the (finite) set of schemas is compiled
/// once: poem-openapi's own `Pattern` validator compiles its regex on every
/// check, which cost POST /orders a fifth of its throughput. A pattern that
/// does not compile matches nothing, so the value is refused rather than let
/// through unchecked.
fn matches(pattern: &str, text: &str) -> bool {
    // Shared, not cloned: a cloned `Regex` starts with empty search caches.
    static COMPILED: Memo<String, Option<Arc<Regex>>> = OnceLock::new();
    let regex = remembered(&COMPILED, pattern, || Regex::new(pattern).ok().map(Arc::new));
    regex.is_some_and(|regex| regex.is_match(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_anywhere_as_json_schema_says() {
        assert!(matches("^[^\\x00-\\x1f]*$", "a"));
        assert!(matches("^[^\\sa]*b", "b"));
        assert!(matches(
            "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f][^\\x00-\\x1f\\x7f-\\x9f]*$",
            "a"
        ));
        assert!(matches("b", "abc"));
        assert!(!matches("^b", "abc"));
    }

    #[derive(poem_openapi::Object)]
    struct Shipment {
        #[oai(validator(max_length = 3))]
        parcel: String,
    }

    #[derive(poem_openapi::Object)]
    struct Refund {
        #[oai(validator(minimum(value = "1")))]
        amount: u32,
    }

    #[test]
    fn each_type_is_checked_against_its_own_schema_however_often_and_in_whatever_order() {
        let parcel = serde_json::json!({"parcel": "box"});
        let amount = serde_json::json!({"amount": 5});
        for _ in 0..3 {
            assert!(validate::<Shipment>(&parcel).is_ok());
            assert!(validate::<Refund>(&amount).is_ok());
            let missing = validate::<Refund>(&parcel).unwrap_err();
            assert_eq!(
                (missing.field.as_str(), missing.reason.as_str()),
                ("amount", "is required")
            );
            let missing = validate::<Shipment>(&amount).unwrap_err();
            assert_eq!(missing.field, "parcel");
            let long = validate::<Shipment>(&serde_json::json!({"parcel": "crate"})).unwrap_err();
            assert_eq!(long.field, "parcel", "{long}");
            let low = validate::<Refund>(&serde_json::json!({"amount": 0})).unwrap_err();
            assert_eq!(low.field, "amount", "{low}");
        }
    }
}
