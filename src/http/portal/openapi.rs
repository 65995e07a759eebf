//! The customer API's OpenAPI 3.1 description (`GET /openapi.json` on the portal listener),
//! made from the code as the ALCS API's is: each handler's `#[utoipa::path]` registers both
//! its route and its entry. Its `MessageCode` schema lists only the codes these operations
//! answer ([`CODES`]).

#![allow(dead_code)] // Documentation types: read by the derive, never built.

use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::{IntoResponses, Modify, OpenApi, ToSchema};

use crate::http::error::{Envelope, MessageCode};

/// Every `MessageCode` the portal's operations answer.
pub const CODES: &[MessageCode] = &[
    MessageCode::InvalidRequest,
    MessageCode::NoAuthothorization,
    MessageCode::TooManyAttempts,
    MessageCode::SessionExpired,
    MessageCode::PasswordChangeRequired,
    MessageCode::StepUpRequired,
    MessageCode::ValidationErrorCodes,
    MessageCode::NotSupportedProperties,
    MessageCode::CustomerModifiedByAnotherUserOrProcess,
    MessageCode::PreconditionRequired,
    MessageCode::SmsUnavailable,
    MessageCode::NotFound,
    MessageCode::MethodNotAllowed,
    MessageCode::NotAcceptable,
    MessageCode::UnsupportedMediaType,
    MessageCode::PayloadTooLarge,
    MessageCode::RequestTimeout,
    MessageCode::UriTooLong,
    MessageCode::RequestHeaderFieldsTooLarge,
    MessageCode::Forbidden,
    MessageCode::ServiceUnavailable,
    MessageCode::Timeout,
    MessageCode::UnknownError,
];

#[derive(OpenApi)]
#[openapi(
    info(
        title = "cps: the customer's own API",
        description = "Sign in with the card number and its PIN (then a password), complete the profile, give and withdraw consents with proof, download and erase one's data. Every error is the envelope `{HttpCode, MessageCode, Message}` (422 adds `ValidationErrorCodes`); `Message` is Polish (`pl_PL`) or English (`en_US`) after `Accept-Language`. Sessions are sent as `Authorization: <SessionId>` or `Authorization: Bearer <SessionId>`. Every answer carries `X-Request-Id` and `Cache-Control: no-store`.",
        license(name = "Proprietary")
    ),
    tags(
        (name = "sign-in", description = "Signing in and out, the password, the step-up"),
        (name = "customer", description = "The signed-in customer's own data"),
        (name = "consents", description = "Consents with proof, and the objection to marketing"),
        (name = "meta", description = "This description")
    ),
    components(schemas(Envelope)),
    modifiers(&SessionAuth)
)]
pub struct PortalDoc;

/// The `session` security scheme: the session id in `Authorization`.
struct SessionAuth;

impl Modify for SessionAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "Authorization",
                "The session id from sign-in, alone or after `Bearer `",
            ))),
        );
    }
}

/// `POST /loyalty/v1/login`.
#[derive(ToSchema)]
#[schema(example = json!({"CardNumber": "99419283746389", "Password": "1234"}))]
pub struct LoginRequest {
    /// The card number (or `Login`, its 2016 name).
    #[schema(rename = "CardNumber")]
    card_number: Option<String>,
    #[schema(rename = "Login")]
    login: Option<String>,
    /// The card's PIN until a password is set, then the password.
    #[schema(rename = "Password")]
    password: String,
}

#[derive(ToSchema)]
pub struct SignedInBody {
    /// The session's id: send it as `Authorization`.
    #[schema(rename = "SessionId")]
    session_id: String,
    /// Signed in by PIN: only setting a password and signing out are allowed.
    #[schema(rename = "MustSetPassword")]
    must_set_password: bool,
}

/// `POST …/password`: the PIN is the old one the first time.
#[derive(ToSchema)]
pub struct PasswordRequest {
    #[schema(rename = "OldPassword")]
    old_password: String,
    /// 8 to 128 characters, not a common password.
    #[schema(rename = "NewPassword", min_length = 8, max_length = 128)]
    new_password: String,
}

/// `POST /loyalty/v1/step-up`: the password, or the code `POST /step-up/code` sent.
#[derive(ToSchema)]
pub struct StepUpRequest {
    #[schema(rename = "Password")]
    password: Option<String>,
    #[schema(rename = "Code", pattern = "^[0-9]{6}$")]
    code: Option<String>,
}

#[derive(ToSchema)]
pub struct CodeRequest {
    #[schema(rename = "Code", pattern = "^[0-9]{6}$")]
    code: String,
}

#[derive(ToSchema)]
pub struct PhoneChangeRequest {
    /// E.164 (`+48602123789`) or national; a code goes to it.
    #[schema(rename = "PhoneNumber")]
    phone_number: String,
}

#[derive(ToSchema)]
pub struct ResetRequest {
    #[schema(rename = "CardNumber", pattern = "^[0-9]{1,32}$")]
    card_number: String,
}

#[derive(ToSchema)]
pub struct ResetConfirmRequest {
    #[schema(rename = "CardNumber", pattern = "^[0-9]{1,32}$")]
    card_number: String,
    #[schema(rename = "Code", pattern = "^[0-9]{6}$")]
    code: String,
    #[schema(rename = "NewPassword", min_length = 8, max_length = 128)]
    new_password: String,
}

/// A partial update: each property a value, or `null` to remove it.
#[derive(ToSchema)]
pub struct ProfileChange {
    #[schema(
        rename = "FirstName",
        min_length = 1,
        max_length = 64,
        pattern = "^[^\\x00-\\x1f\\x7f]*[^\\s\\x00-\\x1f\\x7f][^\\x00-\\x1f\\x7f]*$"
    )]
    first_name: Option<String>,
    #[schema(
        rename = "LastName",
        min_length = 1,
        max_length = 64,
        pattern = "^[^\\x00-\\x1f\\x7f]*[^\\s\\x00-\\x1f\\x7f][^\\x00-\\x1f\\x7f]*$"
    )]
    last_name: Option<String>,
    #[schema(
        rename = "Email",
        max_length = 254,
        pattern = "^[^@\\s]{1,64}@[^@\\s.]+(\\.[^@\\s.]+)+$"
    )]
    email: Option<String>,
    #[schema(
        rename = "Street",
        min_length = 1,
        max_length = 100,
        pattern = "^[^\\x00-\\x1f\\x7f]*[^\\s\\x00-\\x1f\\x7f][^\\x00-\\x1f\\x7f]*$"
    )]
    street: Option<String>,
    #[schema(
        rename = "HouseNumber",
        min_length = 1,
        max_length = 16,
        pattern = "^[^\\x00-\\x1f\\x7f]*[^\\s\\x00-\\x1f\\x7f][^\\x00-\\x1f\\x7f]*$"
    )]
    house_number: Option<String>,
    #[schema(
        rename = "ApartmentNumber",
        min_length = 1,
        max_length = 16,
        pattern = "^[^\\x00-\\x1f\\x7f]*[^\\s\\x00-\\x1f\\x7f][^\\x00-\\x1f\\x7f]*$"
    )]
    apartment_number: Option<String>,
    #[schema(rename = "PostalCode", pattern = "^ *[0-9A-Za-z -]{3,10} *$")]
    postal_code: Option<String>,
    #[schema(
        rename = "City",
        min_length = 1,
        max_length = 64,
        pattern = "^[^\\x00-\\x1f\\x7f]*[^\\s\\x00-\\x1f\\x7f][^\\x00-\\x1f\\x7f]*$"
    )]
    city: Option<String>,
    /// `YYYY-MM-DD`.
    #[schema(rename = "DateOfBirth", format = Date, pattern = "^(19|20)[0-9]{2}-[0-9]{2}-[0-9]{2}$")]
    date_of_birth: Option<String>,
    /// `pl_PL` or `en_US`.
    #[schema(
        rename = "PreferredLanguage",
        pattern = "^ *([pP][lL]([_-][pP][lL])?|[eE][nN]([_-][uU][sS])?) *$"
    )]
    preferred_language: Option<String>,
    #[schema(
        rename = "PreferredStore",
        min_length = 1,
        max_length = 64,
        pattern = "^[^\\x00-\\x1f\\x7f]*[^\\s\\x00-\\x1f\\x7f][^\\x00-\\x1f\\x7f]*$"
    )]
    preferred_store: Option<String>,
}

/// `PUT …/consents/{purpose}`: the version of the text shown.
#[derive(ToSchema)]
pub struct ConsentRequest {
    #[schema(rename = "TextVersion")]
    text_version: String,
}

#[derive(ToSchema)]
pub struct EraseRequest {
    /// Must be `true`: the erasure cannot be undone.
    #[schema(rename = "Confirm")]
    confirm: bool,
}

/// An object the operation describes in its own words.
#[derive(ToSchema)]
#[schema(value_type = Object)]
pub struct Document(serde_json::Value);

/// An array the operation describes in its own words.
#[derive(ToSchema)]
#[schema(value_type = Vec<Object>)]
pub struct Documents(Vec<serde_json::Value>);

/// What any portal request may be answered besides its own outcomes.
#[derive(IntoResponses)]
pub enum Always {
    /// `InvalidRequest`: a field is missing or wrong (`Message` names it).
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
    /// `ServiceUnavailable` or `Timeout` (nothing was done), or `SmsUnavailable`.
    #[response(status = 503)]
    Unavailable(Envelope),
}

/// What a request with a body may be answered besides [`Always`].
#[derive(IntoResponses)]
pub enum Changing {
    /// `Forbidden` (a browser origin that is not allowed), or the operation's own 403.
    #[response(status = 403)]
    Forbidden(Envelope),
    /// `RequestTimeout`.
    #[response(status = 408)]
    RequestTimeout(Envelope),
    /// `PayloadTooLarge`.
    #[response(status = 413)]
    PayloadTooLarge(Envelope),
    /// `UnsupportedMediaType`.
    #[response(status = 415)]
    UnsupportedMediaType(Envelope),
}

/// What an operation of the signed-in customer may be answered.
#[derive(IntoResponses)]
pub enum Signed {
    /// `SessionExpired`: no session in force.
    #[response(status = 401)]
    SessionExpired(Envelope),
    /// `PasswordChangeRequired` (signed in by PIN), `StepUpRequired`, or `Forbidden`.
    #[response(status = 403)]
    Forbidden(Envelope),
}

/// The document with `MessageCode` narrowed to [`CODES`].
pub fn document(doc: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    crate::http::error::listing_only(doc, CODES)
}
