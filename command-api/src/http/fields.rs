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
use domain::money::{Money, Price};
use domain::order::contact::{self, City, Country, CustomerName, Region, StreetAddress};
use domain::order::{OrderLines, PaymentReference};
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
    IdempotencyKeySpec: String => |s| text(s, 1, crate::orders::MAX_IDEMPOTENCY_KEY_BYTES, IDEMPOTENCY_KEY_PATTERN);
    PaymentReferenceSpec: String => |s| text(s, 1, PaymentReference::MAX_CHARS, PaymentReference::PATTERN);
    AmountSpec: String => |s| s.pattern = Some(Money::DECIMAL_PATTERN.to_owned());
}

/// What an `Idempotency-Key` may hold: printable ASCII without spaces (one
/// byte per character, so its length in bytes is its length in characters).
pub const IDEMPOTENCY_KEY_PATTERN: &str = "^[!-~]*$";

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

/// The schemas and the domain's parsers agree: a value the schema accepts
/// the domain accepts, and the other way round (except where the schema is
/// deliberately stricter: leading zeros, padding that trimming removes).
#[cfg(test)]
mod tests {
    use super::*;
    use api_common::json_body::validate;
    use domain::order::{Customer, ShippingAddress};
    use serde_json::json;

    fn agree<S: Spec>(name: &str, samples: &[Value], domain: impl Fn(&Value) -> bool) {
        for sample in samples {
            let schema = validate::<Field<S>>(sample);
            assert_eq!(schema.is_ok(), domain(sample), "{name}: {sample} (schema: {schema:?})");
        }
    }

    fn strings(samples: &[&str]) -> Vec<Value> {
        samples.iter().map(|s| json!(s)).collect()
    }

    fn text_of(value: &Value) -> &str {
        value.as_str().expect("a string sample")
    }

    #[test]
    fn names_and_texts() {
        let long = |n: usize| "é".repeat(n);
        let samples = |max: usize| {
            let mut samples = strings(&[
                "",
                " ",
                "\t",
                "a",
                "a b",
                "a\u{0}b",
                "a\u{85}b",
                "x\u{7f}y",
                "a\u{202e}b",
                "a\u{200b}b",
                "\u{feff}a",
                "a\u{ad}",
                "a\u{2066}b",
                "Éclair",
                "東京",
            ]);
            samples.extend([json!(long(max)), json!(long(max + 1))]);
            samples
        };
        let ok = |parse: fn(&str) -> bool| move |v: &Value| parse(text_of(v));
        agree::<DisplayNameSpec>("displayName", &samples(64), ok(|s| DisplayName::parse(s).is_ok()));
        agree::<ProductNameSpec>("name", &samples(200), ok(|s| ProductName::parse(s).is_ok()));
        agree::<CustomerNameSpec>("customer.name", &samples(100), ok(|s| CustomerName::parse(s).is_ok()));
        agree::<AddressSpec>("address", &samples(200), ok(|s| StreetAddress::parse(s).is_ok()));
        agree::<CitySpec>("city", &samples(100), ok(|s| City::parse(s).is_ok()));
        agree::<RegionSpec>("state", &samples(100), ok(|s| Region::parse(s).is_ok()));
        agree::<CountrySpec>("country", &samples(100), ok(|s| Country::parse(s).is_ok()));
        agree::<ReasonSpec>("reason", &samples(500), ok(|s| Reason::parse(s).is_ok()));
    }

    #[test]
    fn usernames_passwords_and_skus() {
        let mut samples = strings(&["", "a", "ab", "abc", "ABC.d_e-f", "abc!", "ab c", "ééé", "a\u{0}c"]);
        samples.extend([
            json!("a".repeat(32)),
            json!("a".repeat(33)),
            json!("A".repeat(64)),
            json!("A".repeat(65)),
        ]);
        agree::<UsernameSpec>("username", &samples, |v| Username::parse(text_of(v)).is_ok());
        agree::<SkuSpec>("sku", &samples, |v| Sku::parse(text_of(v)).is_ok());
        let passwords = [
            json!("1234567"),
            json!("12345678"),
            json!("é".repeat(128)),
            json!("é".repeat(129)),
        ];
        agree::<PasswordSpec>("password", &passwords, |v| Password::parse(text_of(v)).is_ok());
    }

    #[test]
    fn prices() {
        let samples = strings(&[
            "0",
            "0.0",
            "0.00",
            "0.01",
            "0.1",
            "0.10",
            "0.5",
            "1",
            "1.",
            ".5",
            "1.5",
            "1.55",
            "1.555",
            "199.50",
            "999999999.99",
            "1000000000",
            "1000000000.0",
            "1000000000.00",
            "1000000000.01",
            "1000000001",
            "9999999999",
            "-1",
            "1e3",
            " 1",
            "1,50",
            "",
        ]);
        agree::<PriceSpec>("price", &samples, |v| Price::parse_decimal(text_of(v)).is_ok());
    }

    #[test]
    fn payments() {
        let references = strings(&[
            "pi_3Nx",
            "a",
            "",
            "with space",
            "tab\t",
            "é",
            &"r".repeat(128),
            &"r".repeat(129),
        ]);
        agree::<PaymentReferenceSpec>("reference", &references, |v| {
            PaymentReference::parse(text_of(v)).is_ok()
        });
        let amounts = strings(&[
            "0",
            "0.00",
            "43.47",
            "43.4",
            "43.",
            ".5",
            "1.234",
            "-1",
            "1e3",
            " 1",
            "99999999999999.99",
            "999999999999999",
        ]);
        agree::<AmountSpec>("amount", &amounts, |v| {
            Money::parse_decimal("amount", text_of(v)).is_ok()
        });
    }

    #[test]
    fn counts() {
        let max = i64::from(StockLevel::MAX);
        let samples: Vec<Value> = [i64::MIN, -1, 0, 1, 999, 1000, 1001, max, max + 1]
            .map(|n| json!(n))
            .into();
        let int = |v: &Value| v.as_i64().expect("an integer sample");
        agree::<QuantitySpec>("quantity", &samples, |v| Quantity::parse_field("q", int(v)).is_ok());
        agree::<StockSpec>("stock", &samples, |v| StockLevel::parse_field("s", int(v)).is_ok());
        agree::<RestockSpec>("restock", &samples, |v| {
            RestockQuantity::parse_field("r", int(v)).is_ok()
        });
        let lines = |n: usize| json!(vec![json!({"productId": "p", "quantity": 1}); n]);
        for (n, ok) in [(0, false), (1, true), (50, true), (51, false)] {
            assert_eq!(validate::<Field<LinesSpec<Value>>>(&lines(n)).is_ok(), ok, "{n} lines");
        }
    }

    #[test]
    fn contacts() {
        let emails = strings(&[
            "a@b.c",
            "ab",
            "a@b",
            "@b.c",
            "a@.b",
            "a@b.",
            "a b@c.d",
            "a@b@c.d",
            "a@b..c",
            "é@ü.de",
            "a\u{1}@b.c",
            "a\u{200b}@b.c",
            "a@b\u{202e}.c",
        ]);
        let phone = "+66 81 234 5678";
        agree::<EmailSpec>("email", &emails, |v| {
            Customer::parse(None, Some(text_of(v)), phone).is_ok()
        });
        let phones = strings(&[
            "1234567",
            "123456",
            phone,
            "(02) 123-4567",
            "12345678901234567890",
            "123456789012345678901",
            "abc1234567",
            "+-() 123456",
            "123\t4567",
            "",
        ]);
        agree::<PhoneSpec>("phone", &phones, |v| Customer::parse(None, None, text_of(v)).is_ok());
        let codes = strings(&[
            "12",
            "1",
            "a b",
            "ab-12",
            "a_b",
            "1234567890123",
            "123456789012",
            "  ",
            "1 ",
            "ü1",
        ]);
        agree::<PostalCodeSpec>("postalCode", &codes, |v| {
            ShippingAddress::parse("1 Main St", "Bangkok", "Bangkok", "Thailand", text_of(v)).is_ok()
        });
    }

    #[test]
    fn ids_as_the_path_takes_them() {
        let id = "0192f5c4-1d2e-7a3b-8c4d-5e6f7a8b9c0d";
        let samples = strings(&[
            id,
            &id.to_uppercase(),
            &id.replace('-', ""),
            &format!("{{{id}}}"),
            "nope",
            "",
        ]);
        agree::<UuidSpec>("id", &samples, |v| super::super::request::path_id(text_of(v)).is_ok());
    }
}
