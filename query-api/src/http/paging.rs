//! The query parameters, each a type whose parser and schema come from the
//! same constants, so the published bounds and patterns are the ones
//! enforced: page sizes, offsets, cursors, SKUs and positions.

use std::borrow::Cow;

use api_common::problem::ProblemResponse;
use domain::Position;
use domain::account::Username;
use domain::product::Sku;
use domain::validation::{InvalidField, Problem};
use poem_openapi::registry::{MetaSchema, MetaSchemaRef};
use poem_openapi::types::{ParseError, ParseFromParameter, ParseResult, Type};
use uuid::Uuid;

pub const DEFAULT_LIMIT: u64 = 20;
pub const MAX_LIMIT: u64 = 100;
/// The largest offset: far past any catalog, and a 32-bit integer, which
/// every client and JSON parser holds exactly.
pub const MAX_OFFSET: u64 = i32::MAX as u64;
/// Digits of each part of a position: 19 always fit the 64 bits a part has.
pub const POSITION_DIGITS: usize = 19;
/// Digits of the seconds in an orders cursor (up to year 5000 and more).
const CURSOR_SECONDS_DIGITS: usize = 11;

/// A parameter type: what its schema says and how it is parsed, side by side.
trait Parameter: Sized {
    fn schema() -> MetaSchema;
    fn parse(raw: &str) -> Result<Self, String>;
}

macro_rules! parameter_type {
    ($ty:ident) => {
        impl Type for $ty {
            const IS_REQUIRED: bool = true;
            type RawValueType = Self;
            type RawElementValueType = Self;

            fn name() -> Cow<'static, str> {
                stringify!($ty).into()
            }

            fn schema_ref() -> MetaSchemaRef {
                MetaSchemaRef::Inline(Box::new(<$ty as Parameter>::schema()))
            }

            fn as_raw_value(&self) -> Option<&Self> {
                Some(self)
            }

            fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a Self> + 'a> {
                Box::new(std::iter::once(self))
            }
        }

        impl ParseFromParameter for $ty {
            fn parse_from_parameter(value: &str) -> ParseResult<Self> {
                <$ty as Parameter>::parse(value).map_err(ParseError::custom)
            }
        }
    };
}

fn integer(minimum: u64, maximum: u64, default: Option<u64>) -> MetaSchema {
    MetaSchema {
        minimum: Some(minimum as f64),
        maximum: Some(maximum as f64),
        default: default.map(Into::into),
        ..MetaSchema::new_with_format("integer", "int32")
    }
}

fn string(pattern: String) -> MetaSchema {
    MetaSchema {
        pattern: Some(pattern),
        ..MetaSchema::new("string")
    }
}

fn bounded(raw: &str, minimum: u64, maximum: u64) -> Result<u64, String> {
    let out_of_range = || format!("must be an integer from {minimum} to {maximum}");
    let number: u64 = raw.parse().map_err(|_| out_of_range())?;
    if raw.starts_with('+') || !(minimum..=maximum).contains(&number) {
        return Err(out_of_range());
    }
    Ok(number)
}

/// 1 to `max` ASCII digits.
fn digits(raw: &str, max: usize) -> bool {
    (1..=max).contains(&raw.len()) && raw.bytes().all(|b| b.is_ascii_digit())
}

/// `limit`: how many items a page holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit(pub u64);

impl Default for Limit {
    fn default() -> Self {
        Self(DEFAULT_LIMIT)
    }
}

impl Parameter for Limit {
    fn schema() -> MetaSchema {
        integer(1, MAX_LIMIT, Some(DEFAULT_LIMIT))
    }

    fn parse(raw: &str) -> Result<Self, String> {
        bounded(raw, 1, MAX_LIMIT).map(Self)
    }
}
parameter_type!(Limit);

/// `offset`: how many items to skip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Offset(pub u64);

impl Parameter for Offset {
    fn schema() -> MetaSchema {
        integer(0, MAX_OFFSET, Some(0))
    }

    fn parse(raw: &str) -> Result<Self, String> {
        bounded(raw, 0, MAX_OFFSET).map(Self)
    }
}
parameter_type!(Offset);

/// `minPosition` and `X-Min-Position`: `commit` or `commit/prepare`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MinPosition(pub Position);

impl Parameter for MinPosition {
    fn schema() -> MetaSchema {
        let part = format!("[0-9]{{1,{POSITION_DIGITS}}}");
        string(format!("^{part}(/{part})?$"))
    }

    fn parse(raw: &str) -> Result<Self, String> {
        let malformed =
            || format!("must be a position: `commit` or `commit/prepare`, each 1 to {POSITION_DIGITS} digits");
        let (commit, prepare) = raw.split_once('/').unwrap_or((raw, raw));
        if !digits(commit, POSITION_DIGITS) || !digits(prepare, POSITION_DIGITS) {
            return Err(malformed());
        }
        raw.parse().map(Self).map_err(|_| malformed())
    }
}
parameter_type!(MinPosition);

/// `sku`, and the products cursor: the SKU the last page ended with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkuParam(pub Sku);

impl Parameter for SkuParam {
    fn schema() -> MetaSchema {
        string(format!("^[A-Za-z0-9._-]{{1,{}}}$", Sku::MAX_CHARS))
    }

    fn parse(raw: &str) -> Result<Self, String> {
        Sku::parse(raw).map(Self).map_err(|invalid| invalid.problem.to_string())
    }
}
parameter_type!(SkuParam);

/// `username` (a fragment of usernames), and the users cursor (the
/// username the last page ended with): 1 to 32 characters of the
/// usernames' alphabet, in lowercase as usernames are stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsernameParam(pub String);

impl Parameter for UsernameParam {
    fn schema() -> MetaSchema {
        string(format!("^[A-Za-z0-9._-]{{1,{}}}$", Username::MAX_CHARS))
    }

    fn parse(raw: &str) -> Result<Self, String> {
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
        if raw.is_empty() || raw.len() > Username::MAX_CHARS || !raw.chars().all(allowed) {
            return Err(format!(
                "must be 1 to {} letters, digits, '.', '_' or '-'",
                Username::MAX_CHARS
            ));
        }
        Ok(Self(raw.to_ascii_lowercase()))
    }
}
parameter_type!(UsernameParam);

/// The orders cursor: the time and id of the last order of a page,
/// `<seconds>.<nanoseconds>_<id in hex>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrdersCursor {
    pub placed_at: chrono::DateTime<chrono::Utc>,
    pub order_id: Uuid,
}

impl OrdersCursor {
    pub fn encode(&self) -> String {
        format!(
            "{}.{:09}_{}",
            self.placed_at.timestamp(),
            self.placed_at.timestamp_subsec_nanos(),
            self.order_id.simple()
        )
    }
}

impl Parameter for OrdersCursor {
    fn schema() -> MetaSchema {
        let pattern = format!("^[0-9]{{1,{CURSOR_SECONDS_DIGITS}}}\\.[0-9]{{9}}_[0-9a-fA-F]{{32}}$");
        string(pattern)
    }

    fn parse(raw: &str) -> Result<Self, String> {
        let malformed = || "must be a `nextCursor` this API handed out".to_owned();
        let (at, id) = raw.split_once('_').ok_or_else(malformed)?;
        let (seconds, nanos) = at.split_once('.').ok_or_else(malformed)?;
        let hex = id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit());
        if !digits(seconds, CURSOR_SECONDS_DIGITS) || nanos.len() != 9 || !digits(nanos, 9) || !hex {
            return Err(malformed());
        }
        let seconds: i64 = seconds.parse().map_err(|_| malformed())?;
        let nanos: u32 = nanos.parse().map_err(|_| malformed())?;
        Ok(Self {
            placed_at: chrono::DateTime::from_timestamp(seconds, nanos).ok_or_else(malformed)?,
            order_id: Uuid::parse_str(id).map_err(|_| malformed())?,
        })
    }
}
parameter_type!(OrdersCursor);

/// An `{id}` path segment: a UUID. Poem names path parameters by their
/// place (`param0`) when their parsing fails, so the segment is taken as
/// it is and [`PathId::uuid`] parses it, naming `id` in the problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathId(String);

impl PathId {
    pub fn uuid(&self) -> Result<Uuid, ProblemResponse> {
        Uuid::parse_str(&self.0)
            .map_err(|_| ProblemResponse::invalid(&InvalidField::new("id", Problem::Malformed { what: "UUID" })))
    }
}

impl Parameter for PathId {
    fn schema() -> MetaSchema {
        MetaSchema::new_with_format("string", "uuid")
    }

    fn parse(raw: &str) -> Result<Self, String> {
        Ok(Self(raw.to_owned()))
    }
}
parameter_type!(PathId);

#[cfg(test)]
mod tests {
    use super::*;

    /// What the schema's pattern and bounds say, checked by hand on the
    /// edges: the parser takes what the schema allows and nothing else.
    #[test]
    fn limits_and_offsets_take_their_bounds_and_nothing_past_them() {
        assert_eq!(Limit::parse("1"), Ok(Limit(1)));
        assert_eq!(Limit::parse("100"), Ok(Limit(MAX_LIMIT)));
        for refused in ["0", "101", "-1", "+5", "", "1.0", "-9223372036854775808"] {
            assert!(Limit::parse(refused).is_err(), "{refused}");
        }
        assert_eq!(Offset::parse("0"), Ok(Offset(0)));
        assert_eq!(Offset::parse(&MAX_OFFSET.to_string()), Ok(Offset(MAX_OFFSET)));
        assert!(Offset::parse(&(MAX_OFFSET + 1).to_string()).is_err());
        assert_eq!(Limit::schema().maximum, Some(MAX_LIMIT as f64));
        assert_eq!(Offset::schema().maximum, Some(MAX_OFFSET as f64));
    }

    #[test]
    fn positions_are_one_or_two_bounded_digit_runs() {
        let longest = "9".repeat(POSITION_DIGITS);
        assert_eq!(MinPosition::parse("42"), Ok(MinPosition(Position::at(42))));
        assert_eq!(MinPosition::parse("10/7"), Ok(MinPosition(Position::new(10, 7))));
        assert!(MinPosition::parse(&format!("{longest}/{longest}")).is_ok());
        for refused in ["", "+1", "1/", "/1", "1/2/3", "x", &format!("{longest}0")] {
            assert!(MinPosition::parse(refused).is_err(), "{refused}");
        }
        assert_eq!(
            MinPosition::schema().pattern.as_deref(),
            Some("^[0-9]{1,19}(/[0-9]{1,19})?$")
        );
    }

    #[test]
    fn orders_cursors_round_trip_to_the_nanosecond() {
        let cursor = OrdersCursor {
            placed_at: chrono::DateTime::from_timestamp(1_700_000_000, 123_456_789).expect("a time"),
            order_id: Uuid::new_v4(),
        };
        assert_eq!(OrdersCursor::parse(&cursor.encode()), Ok(cursor));
        let largest = format!("{}.999999999_{}", "9".repeat(CURSOR_SECONDS_DIGITS), "F".repeat(32));
        assert!(OrdersCursor::parse(&largest).is_ok());
        for refused in [
            "",
            "1.5_00",
            "1.000000000_xyz",
            "+1.000000000_00000000000000000000000000000000",
        ] {
            assert!(OrdersCursor::parse(refused).is_err(), "{refused}");
        }
    }

    #[test]
    fn username_parameters_take_the_usernames_alphabet_in_lowercase() {
        assert_eq!(UsernameParam::parse("Al_ice"), Ok(UsernameParam("al_ice".to_owned())));
        assert!(UsernameParam::parse(&"a".repeat(Username::MAX_CHARS)).is_ok());
        for refused in ["", "a b", "é", "a%", &"a".repeat(Username::MAX_CHARS + 1)] {
            assert!(UsernameParam::parse(refused).is_err(), "{refused}");
        }
    }

    #[test]
    fn skus_follow_the_domain() {
        assert!(SkuParam::parse(&"a".repeat(Sku::MAX_CHARS)).is_ok());
        for refused in ["", "a b", "ß", &"a".repeat(Sku::MAX_CHARS + 1)] {
            assert!(SkuParam::parse(refused).is_err(), "{refused}");
        }
    }
}
