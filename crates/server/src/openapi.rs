//! The API's description, `GET /openapi.json`: an OpenAPI 3.1 document generated from the Rust types
//! (utoipa). Its paths come from [`Routes`], the same list the router is built from, so a served route is a
//! documented route; the schemas come from the wire types of `deshpay-api` (feature `openapi`); the webhooks to
//! the merchant are described under `webhooks` with [`WebhookEvent`] as their body.
//!
//! `deshpay-server --openapi` prints the same document without starting the server.

use crate::routes::Routes;
use deshpay_api::{ErrorBody, Refund, WebhookData, WebhookEvent};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::OnceLock;
use utoipa::openapi::path::{OperationBuilder, ParameterBuilder, ParameterIn, PathItem};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{AllOfBuilder, ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, HttpMethod, Ref, RefOr, Required, ResponseBuilder};
use utoipa::{Modify, OpenApi, PartialSchema, ToSchema};

/// The name of the merchant API key's security scheme (`Authorization: Bearer <api key>`).
pub const API_KEY_SCHEME: &str = "api_key";

/// What the derive puts around the paths: info, tags, the security scheme, the webhook schemas.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "DeshPay Checkout API",
        description = "The merchant API (server to server, `Authorization: Bearer <api key>`), the widget API \
            (no key: the session id is the capability), the provider-facing endpoints, operations, and the signed \
            webhooks sent to the merchant. Amounts are decimal strings with two decimals (\"250.00\") and, where \
            `amount_minor` is present, the same amount in integer minor units; never floats. Errors are the HTTP \
            status plus `{\"error\":{\"code\":\"...\",\"message\":\"...\"}}`."
    ),
    components(schemas(WebhookEvent)),
    modifiers(&BearerKey),
    tags(
        (name = "merchant", description = "The merchant's server: sessions, refunds, bKash search, UPI payouts and balance."),
        (name = "widget", description = "The widget in the customer's browser (CORS to the merchant's origins)."),
        (name = "provider", description = "Called by bKash and Bestin Pay, not by merchants."),
        (name = "page", description = "The hosted payment page in the customer's browser: `GET /pay/{id}` (the session's `url`), its QR code and the widget's files it loads."),
        (name = "operations", description = "Health, metrics and this document."),
        (name = "webhooks", description = "Sent by DeshPay to the merchant's `webhook.url`."),
    )
)]
struct ApiDoc;

/// Adds the merchant API key as an HTTP bearer security scheme.
struct BearerKey;

impl Modify for BearerKey {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .description(Some("The merchant's API key, server to server only: `Authorization: Bearer <api key>`."))
            .build();
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme(API_KEY_SCHEME, SecurityScheme::Http(scheme));
    }
}

/// The answer of a refund with status 422: the failed refund, or an error (`refund_failed`, `invalid_json`).
#[derive(Debug)]
pub struct RefundOrError;

impl PartialSchema for RefundOrError {
    fn schema() -> RefOr<Schema> {
        OneOfBuilder::new()
            .item(Ref::from_schema_name(Refund::name()))
            .item(Ref::from_schema_name(ErrorBody::name()))
            .into()
    }
}

impl ToSchema for RefundOrError {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((Refund::name().into(), Refund::schema()));
        <Refund as ToSchema>::schemas(schemas);
        schemas.push((ErrorBody::name().into(), ErrorBody::schema()));
        <ErrorBody as ToSchema>::schemas(schemas);
    }
}

/// The optional `Idempotency-Key` header of `POST /v1/sessions` and `POST /v1/sessions/{id}/refunds`.
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
pub struct IdempotencyKey {
    /// 1 to 255 characters of your choice: a repeat with the same key and body replays the first answer (for 24
    /// hours); with another body it is `idempotency_conflict`; while the first still runs, `payment_in_progress`.
    #[param(rename = "Idempotency-Key", required = false, min_length = 1, max_length = 255)]
    pub key: String,
}

/// The whole document: OpenAPI 3.1 plus its top-level `webhooks`, which utoipa 5 has no field for.
#[derive(Serialize)]
pub struct Document {
    #[serde(flatten)]
    openapi: utoipa::openapi::OpenApi,
    webhooks: BTreeMap<String, PathItem>,
}

impl std::fmt::Debug for Document {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // utoipa's types have no Debug: the paths say enough.
        f.debug_struct("Document").field("paths", &self.openapi.paths.paths.keys()).finish_non_exhaustive()
    }
}

/// Builds the document.
pub fn document() -> Document {
    let mut openapi = Routes::new().into_openapi(ApiDoc::openapi());
    add_edge_responses(&mut openapi);
    Document { openapi, webhooks: webhooks() }
}

/// The document as JSON, built once.
pub fn json() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| serde_json::to_string(&document()).expect("the OpenAPI document serializes"))
}

fn error_response(description: &str) -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new().schema(Some(Ref::from_schema_name(ErrorBody::name()))).build(),
        )
        .build()
}

/// The refusals any route may answer, from the layers around every handler (timeout, load shedding) and from
/// failures of our own, unless the route already documents that status.
fn add_edge_responses(openapi: &mut utoipa::openapi::OpenApi) {
    let edge = [
        ("408", "`timeout`: the request took longer than the server allows and was stopped; retry it."),
        ("500", "`internal`: a failure of ours; nothing was lost, retry."),
        (
            "503",
            "`overloaded` (the server is at its concurrency limit; `Retry-After`) or `provider_unavailable` (the \
             provider did not answer; nothing was charged by this call).",
        ),
    ];
    for item in openapi.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.options,
            &mut item.head,
            &mut item.patch,
            &mut item.trace,
        ];
        for operation in operations.into_iter().flatten() {
            for (status, description) in edge {
                operation
                    .responses
                    .responses
                    .entry(status.to_owned())
                    .or_insert_with(|| error_response(description).into());
            }
        }
    }
}

/// One webhook per event type, each with its body: a [`WebhookEvent`] whose `type` is that event's.
fn webhooks() -> BTreeMap<String, PathItem> {
    WebhookData::TYPES.into_iter().map(|event| (event.to_owned(), webhook(event))).collect()
}

fn webhook(event: &'static str) -> PathItem {
    let summary = match event {
        "session.paid" => "The session was paid (once per session).",
        "payment.needs_review" => {
            "Money moved, or may have, where it should not have (a second payment for a paid session, an amount \
             that does not match, a payment the provider could not confirm): a person must look at the attempt."
        }
        "refund.succeeded" => "A refund returned the money.",
        "refund.failed" => "The provider refused a refund.",
        "payment.unmatched" => {
            "bKash announced (IPN) a payment to the merchant that no session made (QR, USSD, app): recorded, listed \
             by `GET /v1/bkash/unmatched`, never attached to a session."
        }
        _ => "The session expired unpaid and can no longer be paid.",
    };
    let body = AllOfBuilder::new().item(Ref::from_schema_name(WebhookEvent::name())).item(
        ObjectBuilder::new()
            .property("type", ObjectBuilder::new().schema_type(Type::String).enum_values(Some([event])))
            .required("type"),
    );
    let header = |name: &str, description: &str| {
        ParameterBuilder::new()
            .name(name)
            .parameter_in(ParameterIn::Header)
            .required(Required::True)
            .description(Some(description))
            .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
            .build()
    };
    let operation = OperationBuilder::new()
        .operation_id(Some(format!("webhook_{}", event.replace('.', "_"))))
        .tag("webhooks")
        .summary(Some(summary))
        .description(Some(format!(
            "`POST {{webhook.url}}` with the `{event}` event. Written with the change it reports and delivered \
             until the merchant answers 2xx (retried with backoff, same event id). Verify `DeshPay-Signature` \
             before trusting the body."
        )))
        .parameter(header("DeshPay-Event-Id", "The event id (`evt_...`), the same on every retry: deduplicate on it."))
        .parameter(header(
            "DeshPay-Signature",
            "`t=<unix seconds>,v1=<hex HMAC-SHA256 of \"<t>.<raw body>\" under webhook.secret>` (a second `v1=` \
             during a secret rotation). Compare in constant time; reject a `t` far from your clock.",
        ))
        .request_body(Some(
            RequestBodyBuilder::new()
                .content("application/json", ContentBuilder::new().schema(Some(body)).build())
                .required(Some(Required::True))
                .build(),
        ))
        .response(
            "200",
            ResponseBuilder::new().description("Any 2xx acknowledges the event; anything else is retried."),
        )
        .build();
    PathItem::new(HttpMethod::Post, operation)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn doc() -> Value {
        serde_json::from_str(json()).unwrap()
    }

    #[test]
    fn the_document_is_openapi_3_1_with_the_bearer_key() {
        let doc = doc();
        assert_eq!(doc["openapi"], "3.1.0");
        assert_eq!(doc["components"]["securitySchemes"][API_KEY_SCHEME]["scheme"], "bearer");
        let create = &doc["paths"]["/v1/sessions"]["post"];
        assert_eq!(create["security"][0][API_KEY_SCHEME], serde_json::json!([]));
        // The widget API has no key: the session id is the capability.
        assert!(doc["paths"]["/v1/checkout/{id}"]["get"].get("security").is_none());
    }

    #[test]
    fn every_webhook_type_is_described() {
        let doc = doc();
        let webhooks = doc["webhooks"].as_object().unwrap();
        assert_eq!(webhooks.len(), WebhookData::TYPES.len());
        for event in WebhookData::TYPES {
            let body = &webhooks[event]["post"]["requestBody"]["content"]["application/json"]["schema"];
            assert_eq!(body["allOf"][1]["properties"]["type"]["enum"][0], event, "{event}");
        }
    }

    /// The names of the component schemas `value` refers to, and theirs, transitively.
    fn referenced(doc: &Value, value: &Value, found: &mut std::collections::BTreeSet<String>) {
        match value {
            Value::Object(map) => {
                if let Some(name) = map.get("$ref").and_then(Value::as_str).and_then(|r| r.rsplit('/').next())
                    && found.insert(name.to_owned())
                {
                    referenced(doc, &doc["components"]["schemas"][name], found);
                }
                map.values().for_each(|v| referenced(doc, v, found));
            }
            Value::Array(items) => items.iter().for_each(|v| referenced(doc, v, found)),
            _ => {}
        }
    }

    /// Every object in `schema` (inline ones too) lists all its properties as required.
    fn all_required(name: &str, schema: &Value) {
        match schema {
            Value::Object(map) => {
                if let Some(properties) = map.get("properties").and_then(Value::as_object) {
                    let required: Vec<&str> = map
                        .get("required")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .collect();
                    for property in properties.keys() {
                        assert!(
                            required.contains(&property.as_str()),
                            "{name}.{property} is written always but documented optional"
                        );
                    }
                }
                map.values().for_each(|v| all_required(name, v));
            }
            Value::Array(items) => items.iter().for_each(|v| all_required(name, v)),
            _ => {}
        }
    }

    #[test]
    fn what_the_server_writes_is_documented_as_always_there() {
        // No answer or webhook type skips a field when serializing (no `skip_serializing_if`): a field that may
        // be empty is written as null. So every property of a schema that only answers use is required (and
        // nullable where it is an Option); request bodies keep their optional fields.
        let doc = doc();
        let mut requests = std::collections::BTreeSet::new();
        let mut answers = std::collections::BTreeSet::new();
        for item in doc["paths"].as_object().unwrap().values() {
            for op in item.as_object().unwrap().values() {
                referenced(&doc, &op["requestBody"], &mut requests);
                referenced(&doc, &op["responses"], &mut answers);
            }
        }
        referenced(&doc, &doc["webhooks"], &mut answers);
        assert!(answers.contains("Session") && answers.contains("SessionPaid"), "{answers:?}");
        for name in answers.difference(&requests) {
            all_required(name, &doc["components"]["schemas"][name]);
        }
    }

    #[test]
    fn money_is_documented_as_the_serializer_writes_it() {
        let doc = doc();
        let schemas = &doc["components"]["schemas"];
        assert_eq!(schemas["Session"]["properties"]["amount"]["$ref"], "#/components/schemas/Amount");
        assert_eq!(schemas["Session"]["properties"]["amount_minor"]["format"], "int64");
        assert_eq!(schemas["Amount"]["pattern"], r"^[0-9]+\.[0-9]{2}$");
        // Always written, possibly null: required and nullable.
        let required = schemas["Session"]["required"].as_array().unwrap();
        assert!(required.contains(&Value::from("payment")), "{required:?}");
    }
}
