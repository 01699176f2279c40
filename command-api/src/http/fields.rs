//! Request fields whose schemas carry the domain's own limits.
//!
//! A [`Field<S>`] is its value type (a string, an integer, a list) with the
//! JSON Schema keywords of `S` added: lengths, patterns, bounds and item
//! counts taken from the domain's consts, never written twice.
//! [`api_common::json_body::JsonBody`] enforces those keywords before the
//! body is parsed, naming the field; the domain parses the values afterwards
//! and stays the final authority (for rules a schema cannot say, which the
//! field's description states).

use std::borrow::Cow;
use std::marker::PhantomData;

use domain::account::{DisplayName, Password, Username};
use domain::money::Price;
use domain::order::OrderLines;
use domain::order::contact::{self, City, Country, CustomerName, Region, StreetAddress};
use domain::product::{ProductName, Sku};
use domain::quantity::{Quantity, RestockQuantity, StockLevel};
use domain::text::Reason;
use poem_openapi::registry::{MetaSchema, MetaSchemaRef, Registry};
use poem_openapi::types::{ParseError, ParseFromJSON, ParseFromParameter, ParseResult, ToJSON, Type};
use serde_json::Value;

/// The schema keywords of one kind of field.
pub trait Spec: Send + Sync + 'static {
    /// The value as JSON carries it.
    type Value: ParseFromJSON + ToJSON;

    /// Adds the keywords to the value type's own schema.
    fn constrain(schema: &mut MetaSchema);
}

/// A value of `S::Value` documented (and, through `JsonBody`, checked) with
/// the keywords of `S`.
pub struct Field<S: Spec>(pub S::Value, PhantomData<fn() -> S>);

impl<S: Spec> std::ops::Deref for Field<S> {
    type Target = S::Value;

    fn deref(&self) -> &S::Value {
        &self.0
    }
}

fn wrap<S: Spec>(parsed: ParseResult<S::Value>) -> ParseResult<Field<S>> {
    parsed
        .map(|value| Field(value, PhantomData))
        .map_err(ParseError::propagate)
}

impl<S: Spec> Type for Field<S> {
    const IS_REQUIRED: bool = <S::Value as Type>::IS_REQUIRED;
    type RawValueType = <S::Value as Type>::RawValueType;
    type RawElementValueType = <S::Value as Type>::RawElementValueType;

    fn name() -> Cow<'static, str> {
        S::Value::name()
    }

    fn schema_ref() -> MetaSchemaRef {
        match S::Value::schema_ref() {
            MetaSchemaRef::Inline(mut schema) => {
                S::constrain(&mut schema);
                MetaSchemaRef::Inline(schema)
            }
            reference => reference,
        }
    }

    fn register(registry: &mut Registry) {
        S::Value::register(registry);
    }

    fn as_raw_value(&self) -> Option<&Self::RawValueType> {
        self.0.as_raw_value()
    }

    fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a Self::RawElementValueType> + 'a> {
        self.0.raw_element_iter()
    }
}

impl<S: Spec> ParseFromJSON for Field<S> {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        wrap(S::Value::parse_from_json(value))
    }
}

/// Path parameters: documented with the keywords; the operation checks them.
impl<S: Spec> ParseFromParameter for Field<S>
where
    S::Value: ParseFromParameter,
{
    fn parse_from_parameter(value: &str) -> ParseResult<Self> {
        wrap(S::Value::parse_from_parameter(value))
    }
}

impl<S: Spec> ToJSON for Field<S> {
    fn to_json(&self) -> Option<Value> {
        self.0.to_json()
    }
}

fn text(schema: &mut MetaSchema, min: usize, max: usize, pattern: &str) {
    schema.min_length = Some(min);
    schema.max_length = Some(max);
    schema.pattern = Some(pattern.to_owned());
}

fn range(schema: &mut MetaSchema, min: u32, max: u32) {
    schema.minimum = Some(f64::from(min));
    schema.maximum = Some(f64::from(max));
}

/// Declares a [`Spec`] per kind of field: `Name: Value => |schema| body`.
macro_rules! specs {
    ($($(#[$doc:meta])* $name:ident: $value:ty => |$schema:ident| $body:expr;)*) => {$(
        $(#[$doc])*
        pub enum $name {}

        impl Spec for $name {
            type Value = $value;

            fn constrain($schema: &mut MetaSchema) {
                $body
            }
        }
    )*};
}

/// A UUID as this API writes it: hyphenated, either case.
pub const UUID_PATTERN: &str = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$";

specs! {
    UsernameSpec: String => |s| text(s, Username::MIN_CHARS, Username::MAX_CHARS, Username::PATTERN);
    PasswordSpec: String => |s| {
        s.format = Some("password");
        s.min_length = Some(Password::MIN_CHARS);
        s.max_length = Some(Password::MAX_CHARS);
    };
    DisplayNameSpec: String => |s| text(s, DisplayName::MIN_CHARS, DisplayName::MAX_CHARS, DisplayName::PATTERN);
    SkuSpec: String => |s| text(s, Sku::MIN_CHARS, Sku::MAX_CHARS, Sku::PATTERN);
    ProductNameSpec: String => |s| text(s, ProductName::MIN_CHARS, ProductName::MAX_CHARS, ProductName::PATTERN);
    PriceSpec: String => |s| s.pattern = Some(Price::DECIMAL_PATTERN.to_owned());
    StockSpec: i64 => |s| range(s, 0, StockLevel::MAX);
    RestockSpec: i64 => |s| range(s, RestockQuantity::MIN, RestockQuantity::MAX);
    QuantitySpec: i64 => |s| range(s, Quantity::MIN, Quantity::MAX);
    UuidSpec: String => |s| {
        s.format = Some("uuid");
        s.pattern = Some(UUID_PATTERN.to_owned());
    };
    CustomerNameSpec: String => |s| text(s, CustomerName::MIN_CHARS, CustomerName::MAX_CHARS, CustomerName::PATTERN);
    EmailSpec: String => |s| text(s, contact::EMAIL_MIN_CHARS, contact::EMAIL_MAX_CHARS, contact::EMAIL_PATTERN);
    PhoneSpec: String => |s| text(s, contact::PHONE_MIN_CHARS, contact::PHONE_MAX_CHARS, contact::PHONE_PATTERN);
    AddressSpec: String => |s| text(s, StreetAddress::MIN_CHARS, StreetAddress::MAX_CHARS, StreetAddress::PATTERN);
    CitySpec: String => |s| text(s, City::MIN_CHARS, City::MAX_CHARS, City::PATTERN);
    RegionSpec: String => |s| text(s, Region::MIN_CHARS, Region::MAX_CHARS, Region::PATTERN);
    CountrySpec: String => |s| text(s, Country::MIN_CHARS, Country::MAX_CHARS, Country::PATTERN);
    PostalCodeSpec: String => |s| text(
        s,
        contact::POSTAL_CODE_MIN_CHARS,
        contact::POSTAL_CODE_MAX_CHARS,
        contact::POSTAL_CODE_PATTERN,
    );
    ReasonSpec: String => |s| text(s, Reason::MIN_CHARS, Reason::MAX_CHARS, Reason::PATTERN);
}

/// The lines of an order: `OrderLines`' bounds on how many.
pub enum LinesSpec<T> {
    #[allow(dead_code)]
    Never(std::convert::Infallible, PhantomData<fn() -> T>),
}

impl<T> Spec for LinesSpec<T>
where
    T: ParseFromJSON + ToJSON + 'static,
{
    type Value = Vec<T>;

    fn constrain(schema: &mut MetaSchema) {
        schema.min_items = Some(OrderLines::MIN_LINES);
        schema.max_items = Some(OrderLines::MAX_LINES);
    }
}
