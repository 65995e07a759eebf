//! The API's OpenAPI 3.1 description, made from the code: each handler's `#[utoipa::path]`
//! registers both its route (see `router`) and its entry here, so the two cannot part.
//!
//! The request bodies are parsed by hand (`wire.rs`, for exact numbers and field paths in
//! errors); the schemas below describe what that parser accepts. The property-based run in CI
//! (schemathesis, `scripts/schemathesis`) holds the two together.

#![allow(dead_code)] // Documentation types: read by the derive, never built.

use utoipa::{IntoResponses, OpenApi, ToSchema};

use super::error::{Envelope, MessageCode};

/// Every `MessageCode` the ALCS API's operations answer.
pub const CODES: &[MessageCode] = &[
    MessageCode::InvalidRequest,
    MessageCode::CardNumberMismatch,
    MessageCode::CardAlreadyRegistered,
    MessageCode::CustomerWithGivenCardNumberNotFound,
    MessageCode::IncorrectPhoneNumber,
    MessageCode::CardWasNotWaitingForActivation,
    MessageCode::CustomerActivationError,
    MessageCode::TooManyAttempts,
    MessageCode::UnsupportedMediaType,
    MessageCode::NotAcceptable,
    MessageCode::NotFound,
    MessageCode::MethodNotAllowed,
    MessageCode::PayloadTooLarge,
    MessageCode::RequestTimeout,
    MessageCode::UriTooLong,
    MessageCode::RequestHeaderFieldsTooLarge,
    MessageCode::Forbidden,
    MessageCode::ServiceUnavailable,
    MessageCode::Timeout,
    MessageCode::UnknownError,
];
use super::wire::{CardBody, CustomerIdBody};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "cps: the loyalty-card API that ALCS calls",
        description = "Register a loyalty card for a customer, activate it once the customer's phone is confirmed, correct the phone number, lock the card, and read it. Every error is the envelope `{HttpCode, MessageCode, Message}`; `Message` is Polish (`pl_PL`) or English (`en_US`) after `Accept-Language` or, for registration, `ResponseLanguage.CashierLanguage`. Every answer carries `X-Request-Id`.",
        license(name = "Proprietary")
    ),
    tags(
        (name = "cards", description = "What ALCS calls while a cashier and a customer wait"),
        (name = "health", description = "Probes for orchestrators"),
        (name = "meta", description = "This description")
    ),
    components(schemas(Envelope, CustomerIdBody, CardBody, WalletRequest))
)]
pub struct ApiDoc;

/// `PUT …/{card_number}`: the card to register and its customer.
#[derive(ToSchema)]
#[schema(example = json!({
    "Identity": {"PosId": "1", "PosNumber": "5", "PosOperatorId": "", "PosOperatorNumber": 0, "SiteId": "2345"},
    "ResponseLanguage": {"ClientLanguage": "pl_PL", "CashierLanguage": "pl_PL"},
    "LoyaltyCard": {
        "CardNumber": "99419283746389",
        "PhoneNumber": "+48602123789",
        "Gender": "M",
        "CardPinHMac": "3f729ea140a769400985ade930f695452cf622fd0dd3ca69218319333ca2386c",
        "Wallets": [
            {"Id": "Strickers2016", "Balance": 132.00, "Stat": {"Lost": 0.22}, "Version": "abc"},
            {"Id": "SomethingElse", "Balance": 0.0, "Version": 7}
        ]
    }
}))]
#[schema(title = "Registration")]
pub struct RegistrationRequest {
    #[schema(rename = "Identity", nullable)]
    identity: Option<IdentityRequest>,
    #[schema(rename = "ResponseLanguage", nullable)]
    response_language: Option<ResponseLanguage>,
    #[schema(rename = "LoyaltyCard")]
    loyalty_card: LoyaltyCardRequest,
}

/// The till that asks (audited; each value a string or a number of at most 64 characters).
#[derive(ToSchema)]
pub struct IdentityRequest {
    #[schema(rename = "PosId", schema_with = loose)]
    pos_id: Option<Loose>,
    #[schema(rename = "PosNumber", schema_with = loose)]
    pos_number: Option<Loose>,
    #[schema(rename = "PosOperatorId", schema_with = loose)]
    pos_operator_id: Option<Loose>,
    #[schema(rename = "PosOperatorNumber", schema_with = loose)]
    pos_operator_number: Option<Loose>,
    #[schema(rename = "SiteId", schema_with = loose)]
    site_id: Option<Loose>,
}

/// A value sent as a string or a number.
#[derive(ToSchema)]
#[schema(value_type = String)]
pub struct Loose(String);

/// Languages of the answer; an unknown one falls back to the default.
#[derive(ToSchema)]
pub struct ResponseLanguage {
    #[schema(rename = "ClientLanguage", nullable)]
    client_language: Option<String>,
    #[schema(rename = "CashierLanguage", nullable)]
    cashier_language: Option<String>,
}

#[derive(ToSchema)]
pub struct LoyaltyCardRequest {
    /// When given, the path's card number (else 400 `CardNumberMismatch`).
    #[schema(rename = "CardNumber", schema_with = card_number_or_null)]
    card_number: Option<String>,
    /// In international (`+48602123789`) or national form (`602 123 789`); empty or null: none.
    #[schema(rename = "PhoneNumber", schema_with = phone_or_empty)]
    phone_number: Option<String>,
    #[schema(rename = "Gender")]
    gender: Gender,
    #[schema(rename = "CardPinHMac", schema_with = pin_hmac)]
    card_pin_hmac: String,
    #[schema(rename = "Wallets", schema_with = wallets)]
    wallets: Option<Vec<WalletRequest>>,
}

#[derive(ToSchema)]
pub enum Gender {
    M,
    F,
    U,
}

#[derive(ToSchema)]
pub struct WalletRequest {
    #[schema(rename = "Id", schema_with = wallet_id)]
    id: String,
    #[schema(rename = "Balance", schema_with = amount)]
    balance: f64,
    #[schema(rename = "Stat", nullable)]
    stat: Option<StatRequest>,
    /// A string or an integer, at most 256 characters.
    #[schema(rename = "Version", schema_with = wallet_version)]
    version: Option<Loose>,
}

#[derive(ToSchema)]
pub struct StatRequest {
    #[schema(rename = "Lost", schema_with = amount_or_null)]
    lost: Option<f64>,
    #[schema(rename = "TransferredOut", schema_with = amount_or_null)]
    transferred_out: Option<f64>,
    #[schema(rename = "TransferredIn", schema_with = amount_or_null)]
    transferred_in: Option<f64>,
    #[schema(rename = "Issued", schema_with = amount_or_null)]
    issued: Option<f64>,
}

// The request fields' constraints, made from the parsers' own constants (`crate::domain`), so
// that the document can never promise other limits than the service enforces.

use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, SchemaType, Type};

fn nullable(kind: Type) -> SchemaType {
    SchemaType::from_iter([kind, Type::Null])
}

fn card_number_or_null() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(nullable(Type::String))
        .description(Some(
            "When given, the path's card number (else 400 `CardNumberMismatch`).",
        ))
        .pattern(Some(format!(
            "^[0-9]{{1,{}}}$",
            crate::domain::CardNumber::MAX_LEN
        )))
}

/// A phone number as `PhoneNumber::parse` reads it: an optional `+`, then 4 to 15 digits among
/// spaces and dashes, at most 32 characters (and then a number the numbering plan allows,
/// which no pattern can say).
const PHONE_PATTERN: &str = "^ *\\+?[ -]*(?:[0-9][ -]*){4,15}$";

fn phone() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(
            "International (`+48602123789`, `48602123789`) or national (`602 123 789`), spaces and dashes allowed; a number the numbering plan allows.",
        ))
        .pattern(Some(PHONE_PATTERN))
        .max_length(Some(32))
}

fn phone_or_empty() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(nullable(Type::String))
        .description(Some(
            "International (`+48602123789`) or national form (`602 123 789`); empty or null: none.",
        ))
        .pattern(Some(format!("^$|{PHONE_PATTERN}")))
        .max_length(Some(32))
}

/// No control characters (they would reach the cache, the logs and every screen).
const NO_CONTROLS: &str = "^[^\\x00-\\x1f\\x7f-\\x9f]*$";

/// An identity value as the parser reads it: a JSON number, or a string of at most 64
/// characters without control characters; null or absent: none.
fn loose() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([
            Type::String,
            Type::Number,
            Type::Null,
        ]))
        .description(Some("A string (at most 64 characters) or a number."))
        .pattern(Some(NO_CONTROLS))
        .max_length(Some(64))
}

/// A wallet's version token: a string of at most 256 characters without control characters,
/// or an integer.
fn wallet_version() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([
            Type::String,
            Type::Integer,
            Type::Null,
        ]))
        .description(Some(
            "A string (at most 256 characters) or an integer; stored as its text.",
        ))
        .pattern(Some(NO_CONTROLS))
        .max_length(Some(256))
}

fn pin_hmac() -> ObjectBuilder {
    let max = crate::domain::PinHmac::MAX_LEN;
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(format!(
            "The HMAC of the card's PIN, as the till computed it (1 to {max} printable ASCII)."
        )))
        .pattern(Some("^[\\x20-\\x7E]+$"))
        .min_length(Some(1))
        .max_length(Some(max))
}

fn wallets() -> ArrayBuilder {
    let max = crate::domain::MAX_WALLETS;
    ArrayBuilder::new()
        .schema_type(nullable(Type::Array))
        .items(utoipa::openapi::Ref::from_schema_name("WalletRequest"))
        .description(Some(format!("At most {max}, with distinct `Id`s.")))
        .max_items(Some(max))
}

fn wallet_id() -> ObjectBuilder {
    let max = crate::domain::WalletId::MAX_LEN;
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(format!(
            "The wallet's name within the card: 1 to {max} of `A-Z a-z 0-9 _ -`."
        )))
        .pattern(Some(format!("^[A-Za-z0-9_-]{{1,{max}}}$")))
        .min_length(Some(1))
        .max_length(Some(max))
}

/// What an amount may hold, in words: JSON Schema cannot count a number's digits.
fn amount_text() -> String {
    use crate::domain::Money;
    format!(
        "Exact decimal, written back as sent: at most {} significant digits, {} of them after the point.",
        Money::MAX_SIGNIFICANT_DIGITS,
        Money::MAX_SCALE
    )
}

fn amount() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Number)
        .description(Some(amount_text()))
}

fn amount_or_null() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(nullable(Type::Number))
        .description(Some(amount_text()))
}

/// `POST …/activate` and `PATCH …`: the customer's phone number.
#[derive(ToSchema)]
#[schema(example = json!({"PhoneNumber": "+48602123789"}))]
pub struct PhoneRequest {
    #[schema(rename = "PhoneNumber", schema_with = phone)]
    phone_number: String,
}

/// `{"Status": "Live"}` or `{"Status": "Ready"}`.
#[derive(ToSchema)]
pub struct Status {
    #[schema(rename = "Status")]
    status: String,
}

/// What any request may be answered besides its own outcomes.
#[derive(IntoResponses)]
pub enum Always {
    /// `InvalidRequest`: the card number in the path is not 1 to 32 digits, or a field is
    /// missing or wrong (`Message` names it).
    #[response(status = 400)]
    BadRequest(#[to_schema] Envelope),
    /// `NotAcceptable`: `Accept` excludes JSON.
    #[response(status = 406)]
    NotAcceptable(Envelope),
    /// `UriTooLong`.
    #[response(status = 414)]
    UriTooLong(Envelope),
    /// `RequestHeaderFieldsTooLarge`.
    #[response(status = 431)]
    HeadersTooLarge(Envelope),
    /// `UnknownError`.
    #[response(status = 500)]
    Unknown(Envelope),
    /// `ServiceUnavailable` (database unreachable or the instance overloaded, with
    /// `Retry-After`) or `Timeout`: nothing was done.
    #[response(status = 503)]
    Unavailable(Envelope),
}

/// What a request that changes a card may be answered besides [`Always`].
#[derive(IntoResponses)]
pub enum Changing {
    /// `Forbidden`: sent from a browser origin that is not allowed.
    #[response(status = 403)]
    Forbidden(Envelope),
    /// `RequestTimeout`: the body did not arrive in time.
    #[response(status = 408)]
    RequestTimeout(Envelope),
    /// `PayloadTooLarge`.
    #[response(status = 413)]
    PayloadTooLarge(Envelope),
    /// `UnsupportedMediaType`: a body that is not JSON.
    #[response(status = 415)]
    UnsupportedMediaType(Envelope),
}
