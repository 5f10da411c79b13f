//! OpenAPI schemas (feature `openapi`, which only the server enables: the widget never compiles utoipa). The
//! wire types derive `utoipa::ToSchema` where they are defined; this module holds the schemas of what they keep
//! as plain strings, written exactly as the serializer writes them: decimal amounts and timestamps.

use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type};
use utoipa::{PartialSchema, ToSchema};

/// A string schema with a pattern, a description and an example.
fn string(pattern: &str, description: &str, example: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(pattern))
        .description(Some(description))
        .examples([example])
}

/// A decimal amount as the API writes it: the currency's minor units with exactly two decimals ("250.00",
/// "0.05"), as a string, never a float. `amount_minor` beside it, where present, is the same amount as an
/// integer of minor units (poisha, paise).
#[derive(Debug)]
pub struct Amount;

impl PartialSchema for Amount {
    fn schema() -> RefOr<Schema> {
        string(
            r"^[0-9]+\.[0-9]{2}$",
            "Decimal amount with exactly two decimals, e.g. \"250.00\" (never a float).",
            "250.00",
        )
        .into()
    }
}

impl ToSchema for Amount {}

/// A decimal amount as the API reads it: digits, optionally a point and decimals, of which only two may be
/// significant ("250", "250.5", "250.50" and "250.5000" are all 250.50); no sign, exponent, spaces or commas.
#[derive(Debug)]
pub struct AmountInput;

impl PartialSchema for AmountInput {
    fn schema() -> RefOr<Schema> {
        let description =
            "Decimal amount, e.g. \"250.00\": at most two significant decimals, no sign, exponent or separators.";
        string(r"^[0-9]+(\.[0-9]+)?$", description, "250.00").into()
    }
}

impl ToSchema for AmountInput {}

/// A point in time as the API writes it: RFC 3339 in UTC with milliseconds, `2025-01-31T12:00:00.000Z`.
#[derive(Debug)]
pub struct Timestamp;

impl PartialSchema for Timestamp {
    fn schema() -> RefOr<Schema> {
        let pattern = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z$";
        string(pattern, "RFC 3339 time in UTC with milliseconds.", "2025-01-31T12:00:00.000Z")
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
            .into()
    }
}

impl ToSchema for Timestamp {}
