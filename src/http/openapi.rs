//! The API's OpenAPI 3.1 description, made from the code: each handler's `#[utoipa::path]`
//! registers both its route (see `router`) and its entry here, so the two cannot part.
//!
//! The request bodies are parsed by hand (`wire.rs`, for exact numbers and field paths in
//! errors); the schemas below describe what that parser accepts. The property-based run in CI
//! (schemathesis, `scripts/schemathesis`) holds the two together.

#![allow(dead_code)] // Documentation types: read by the derive, never built.

use utoipa::{IntoResponses, OpenApi, ToSchema};

use super::error::Envelope;
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
    #[schema(rename = "PosId", nullable)]
    pos_id: Option<Loose>,
    #[schema(rename = "PosNumber", nullable)]
    pos_number: Option<Loose>,
    #[schema(rename = "PosOperatorId", nullable)]
    pos_operator_id: Option<Loose>,
    #[schema(rename = "PosOperatorNumber", nullable)]
    pos_operator_number: Option<Loose>,
    #[schema(rename = "SiteId", nullable)]
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
    #[schema(rename = "PhoneNumber", nullable)]
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
    #[schema(rename = "Version", nullable)]
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
    #[schema(rename = "PhoneNumber")]
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
