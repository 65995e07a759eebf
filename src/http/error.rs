//! The one place where failures become the contract's error envelope (contract section 3):
//! `{"HttpCode": "400", "MessageCode": "…", "Message": "…"}`.
//!
//! Handlers and extractors return [`ApiError`]; its response carries the error as an extension
//! and no body yet. The envelope middleware ([`super::middleware`]) then writes the body in the
//! language chosen for the request — which a handler may only know after reading the body — and
//! also turns the framework's own bodiless errors (404, 405, 413, panics) into envelopes.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::domain::Language;

/// Why a field was refused. Each reason has a Polish and an English text that never contains the
/// value itself (it may be personal data or a secret).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Missing,
    NotAString,
    NotANumber,
    NotAnObject,
    NotAnArray,
    NotAnInteger,
    Empty,
    TooLong,
    CardNumber,
    PhoneNumber,
    Gender,
    PrintableAscii,
    Decimals,
    Digits,
    Duplicate,
    /// A request the framework refused before our code saw it.
    Malformed,
    ControlCharacters,
    /// A wallet `Id` outside `[A-Za-z0-9_-]{1,64}`.
    WalletId,
    /// More items than allowed (wallets).
    TooMany,
    /// A lock reason the desk may not give, or no reason at all.
    LockReason,
    /// A replacement's new card number is the card's own.
    SameCard,
    /// A desk note: 1 to 500 characters, no control characters.
    Note,
    /// A page size outside 1 to 100.
    Limit,
    /// A history cursor this service did not hand out.
    Cursor,
    /// An `If-Match` that is not one quoted version (`"3"`).
    ETag,
    /// A customer id: 32 lowercase hexadecimal digits.
    CustomerId,
}

impl Reason {
    fn text(self, lang: Language) -> &'static str {
        use Language::{English as En, Polish as Pl};
        match (self, lang) {
            (Self::Missing, Pl) => "pole jest wymagane",
            (Self::Missing, En) => "the field is required",
            (Self::NotAString, Pl) => "oczekiwano tekstu",
            (Self::NotAString, En) => "expected a string",
            (Self::NotANumber, Pl) => "oczekiwano liczby",
            (Self::NotANumber, En) => "expected a number",
            (Self::NotAnObject, Pl) => "oczekiwano obiektu JSON",
            (Self::NotAnObject, En) => "expected a JSON object",
            (Self::NotAnArray, Pl) => "oczekiwano tablicy JSON",
            (Self::NotAnArray, En) => "expected a JSON array",
            (Self::NotAnInteger, Pl) => "oczekiwano tekstu lub liczby całkowitej",
            (Self::NotAnInteger, En) => "expected a string or an integer",
            (Self::Empty, Pl) => "wartość nie może być pusta",
            (Self::Empty, En) => "must not be empty",
            (Self::TooLong, Pl) => "wartość jest za długa",
            (Self::TooLong, En) => "the value is too long",
            (Self::CardNumber, Pl) => "numer karty to od 1 do 32 cyfr",
            (Self::CardNumber, En) => "a card number is 1 to 32 digits",
            (Self::PhoneNumber, Pl) => "nieprawidłowy numer telefonu",
            (Self::PhoneNumber, En) => "not a valid phone number",
            (Self::Gender, Pl) => "dozwolone wartości to M, F i U",
            (Self::Gender, En) => "allowed values are M, F and U",
            (Self::PrintableAscii, Pl) => "dozwolone są tylko drukowalne znaki ASCII",
            (Self::PrintableAscii, En) => "only printable ASCII characters are allowed",
            (Self::Decimals, Pl) => "najwyżej 6 cyfr po przecinku",
            (Self::Decimals, En) => "at most 6 digits after the decimal point",
            (Self::Digits, Pl) => "najwyżej 28 cyfr znaczących",
            (Self::Digits, En) => "at most 28 significant digits",
            (Self::Duplicate, Pl) => "wartość powtarza się",
            (Self::Duplicate, En) => "the value is repeated",
            (Self::Malformed, Pl) => "żądanie ma nieprawidłową postać",
            (Self::Malformed, En) => "the request is malformed",
            (Self::ControlCharacters, Pl) => "znaki sterujące są niedozwolone",
            (Self::ControlCharacters, En) => "control characters are not allowed",
            (Self::WalletId, Pl) => {
                "dozwolone są litery A-Z i a-z, cyfry, _ oraz -, od 1 do 64 znaków"
            }
            (Self::WalletId, En) => {
                "only letters A-Z and a-z, digits, _ and - are allowed, 1 to 64 characters"
            }
            (Self::TooMany, Pl) => "za dużo elementów (najwyżej 32)",
            (Self::TooMany, En) => "too many items (at most 32)",
            (Self::LockReason, Pl) => {
                "dozwolone wartości to Lost, Stolen, Damaged, Fraud, CustomerRequest i Other"
            }
            (Self::LockReason, En) => {
                "allowed values are Lost, Stolen, Damaged, Fraud, CustomerRequest and Other"
            }
            (Self::SameCard, Pl) => "nowy numer karty musi różnić się od obecnego",
            (Self::SameCard, En) => "the new card number must differ from the current one",
            (Self::Note, Pl) => "od 1 do 500 znaków, bez znaków sterujących",
            (Self::Note, En) => "1 to 500 characters, no control characters",
            (Self::Limit, Pl) => "liczba od 1 do 100",
            (Self::Limit, En) => "a number from 1 to 100",
            (Self::Cursor, Pl) => "nieznany kursor; użyj wartości NextCursor z poprzedniej strony",
            (Self::Cursor, En) => "unknown cursor; use the NextCursor of the previous page",
            (Self::ETag, Pl) => "oczekiwano jednej wersji w cudzysłowie, np. \"3\"",
            (Self::ETag, En) => "expected one quoted version, e.g. \"3\"",
            (Self::CustomerId, Pl) => "identyfikator klienta to 32 małe cyfry szesnastkowe",
            (Self::CustomerId, En) => "a customer id is 32 lowercase hexadecimal digits",
        }
    }
}

/// An error answered to the client. Each variant's doc names its status and `MessageCode`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// 400 `InvalidRequest`: the body is not JSON at all.
    MalformedJson { line: usize, column: usize },
    /// 400 `InvalidRequest`: a field (dotted path, e.g. `LoyaltyCard.Gender`) is missing or wrong.
    InvalidField { field: String, reason: Reason },
    /// 400 `CardNumberMismatch`: `LoyaltyCard.CardNumber` differs from the path.
    CardNumberMismatch,
    /// 409 `CardAlreadyRegistered`.
    CardAlreadyRegistered,
    /// 400 `CustomerWithGivenCardNumberNotFound` (operations on a card).
    CardNotFound,
    /// 404 `CustomerWithGivenCardNumberNotFound` (reading a card).
    CardNotFoundOnRead,
    /// 400 `IncorrectPhoneNumber`.
    IncorrectPhoneNumber,
    /// 422 `CardWasNotWaitingForActivation`.
    CardWasNotWaitingForActivation,
    /// 500 `CustomerActivationError`: activation failed unexpectedly; nothing was changed.
    CustomerActivationError,
    /// 415 `UnsupportedMediaType`.
    UnsupportedMediaType,
    /// 406 `NotAcceptable`.
    NotAcceptable,
    /// 404 `NotFound`: no such route.
    NotFound,
    /// 405 `MethodNotAllowed`.
    MethodNotAllowed,
    /// 413 `PayloadTooLarge`.
    PayloadTooLarge,
    /// 503 `ServiceUnavailable`: the database is unreachable or overloaded; nothing was done.
    ServiceUnavailable,
    /// 503 `Timeout`: the request did not finish in the configured time.
    Timeout,
    /// 403 `Forbidden`: a state-changing request from a browser origin that is not allowed.
    Forbidden,
    /// 408 `RequestTimeout`: the client did not send its body in time.
    RequestTimeout,
    /// 414 `UriTooLong`.
    UriTooLong,
    /// 431 `RequestHeaderFieldsTooLarge`: too many headers, or too large.
    HeadersTooLarge,
    /// 429 `TooManyAttempts`: too many failed activations of this card; retry after the
    /// given number of seconds.
    TooManyAttempts { retry_after_secs: u64 },
    /// 401 `Unauthorized`: the desk API without a valid bearer token.
    Unauthorized,
    /// 403 `Forbidden`: the desk user's role may not do this.
    RoleForbidden,
    /// 429 `TooManyRequests`: too many failed sign-ins from this address lately.
    TooManyAuthFailures { retry_after_secs: u64 },
    /// 404 `CustomerNotFound`.
    CustomerNotFound,
    /// 409 `CardNotLocked`: unlock of a card that is not locked.
    CardNotLocked,
    /// 409 `CardCannotBeUnlocked`: the card was replaced, or its customer erased.
    CardCannotBeUnlocked,
    /// 409 `CardCannotBeReplaced`: the card was replaced already, or its customer erased.
    CardCannotBeReplaced,
    /// 409 `CustomerErased`: the customer's personal data was erased.
    CustomerErased,
    /// 409 `NoNoticeToRetry`: the card has no dead or unsent ALCS notice.
    NoNoticeToRetry,
    /// 412 `PreconditionFailed`: the customer changed since the version in `If-Match`.
    PreconditionFailed,
    /// 428 `PreconditionRequired`: the change needs `If-Match`.
    PreconditionRequired,
    /// 500 `UnknownError`.
    Unknown,
}

impl ApiError {
    /// Every `MessageCode` an error is answered with: the OpenAPI document's list.
    pub const CODES: [&'static str; 30] = [
        "InvalidRequest",
        "CardNumberMismatch",
        "CardAlreadyRegistered",
        "CustomerWithGivenCardNumberNotFound",
        "IncorrectPhoneNumber",
        "CardWasNotWaitingForActivation",
        "CustomerActivationError",
        "UnsupportedMediaType",
        "NotAcceptable",
        "NotFound",
        "MethodNotAllowed",
        "PayloadTooLarge",
        "ServiceUnavailable",
        "Timeout",
        "UnknownError",
        "Forbidden",
        "RequestTimeout",
        "UriTooLong",
        "RequestHeaderFieldsTooLarge",
        "TooManyAttempts",
        "Unauthorized",
        "TooManyRequests",
        "CustomerNotFound",
        "CardNotLocked",
        "CardCannotBeUnlocked",
        "CardCannotBeReplaced",
        "CustomerErased",
        "NoNoticeToRetry",
        "PreconditionFailed",
        "PreconditionRequired",
    ];

    pub fn invalid(field: impl Into<String>, reason: Reason) -> Self {
        Self::InvalidField {
            field: field.into(),
            reason,
        }
    }

    /// The error for a status the framework produced without our help.
    pub fn from_status(status: StatusCode) -> Self {
        match status {
            StatusCode::NOT_FOUND => Self::NotFound,
            StatusCode::METHOD_NOT_ALLOWED => Self::MethodNotAllowed,
            StatusCode::PAYLOAD_TOO_LARGE => Self::PayloadTooLarge,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => Self::UnsupportedMediaType,
            StatusCode::NOT_ACCEPTABLE => Self::NotAcceptable,
            StatusCode::REQUEST_TIMEOUT => Self::RequestTimeout,
            StatusCode::GATEWAY_TIMEOUT => Self::Timeout,
            StatusCode::FORBIDDEN => Self::Forbidden,
            StatusCode::URI_TOO_LONG => Self::UriTooLong,
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => Self::HeadersTooLarge,
            StatusCode::SERVICE_UNAVAILABLE => Self::ServiceUnavailable,
            s if s.is_client_error() => Self::invalid("", Reason::Malformed),
            _ => Self::Unknown,
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::MalformedJson { .. }
            | Self::InvalidField { .. }
            | Self::CardNumberMismatch
            | Self::CardNotFound
            | Self::IncorrectPhoneNumber => StatusCode::BAD_REQUEST,
            Self::CardAlreadyRegistered => StatusCode::CONFLICT,
            Self::CardNotFoundOnRead | Self::NotFound => StatusCode::NOT_FOUND,
            Self::CardWasNotWaitingForActivation => StatusCode::UNPROCESSABLE_ENTITY,
            Self::CustomerActivationError | Self::Unknown => StatusCode::INTERNAL_SERVER_ERROR,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::NotAcceptable => StatusCode::NOT_ACCEPTABLE,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::ServiceUnavailable | Self::Timeout => StatusCode::SERVICE_UNAVAILABLE,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::UriTooLong => StatusCode::URI_TOO_LONG,
            Self::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Self::TooManyAttempts { .. } | Self::TooManyAuthFailures { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::RoleForbidden => StatusCode::FORBIDDEN,
            Self::CustomerNotFound => StatusCode::NOT_FOUND,
            Self::CardNotLocked
            | Self::CardCannotBeUnlocked
            | Self::CardCannotBeReplaced
            | Self::CustomerErased
            | Self::NoNoticeToRetry => StatusCode::CONFLICT,
            Self::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            Self::PreconditionRequired => StatusCode::PRECONDITION_REQUIRED,
        }
    }

    pub fn message_code(&self) -> &'static str {
        match self {
            Self::MalformedJson { .. } | Self::InvalidField { .. } => "InvalidRequest",
            Self::CardNumberMismatch => "CardNumberMismatch",
            Self::CardAlreadyRegistered => "CardAlreadyRegistered",
            Self::CardNotFound | Self::CardNotFoundOnRead => "CustomerWithGivenCardNumberNotFound",
            Self::IncorrectPhoneNumber => "IncorrectPhoneNumber",
            Self::CardWasNotWaitingForActivation => "CardWasNotWaitingForActivation",
            Self::CustomerActivationError => "CustomerActivationError",
            Self::UnsupportedMediaType => "UnsupportedMediaType",
            Self::NotAcceptable => "NotAcceptable",
            Self::NotFound => "NotFound",
            Self::MethodNotAllowed => "MethodNotAllowed",
            Self::PayloadTooLarge => "PayloadTooLarge",
            Self::ServiceUnavailable => "ServiceUnavailable",
            Self::Timeout => "Timeout",
            Self::Unknown => "UnknownError",
            Self::Forbidden => "Forbidden",
            Self::RequestTimeout => "RequestTimeout",
            Self::UriTooLong => "UriTooLong",
            Self::HeadersTooLarge => "RequestHeaderFieldsTooLarge",
            Self::TooManyAttempts { .. } => "TooManyAttempts",
            Self::Unauthorized => "Unauthorized",
            Self::RoleForbidden => "Forbidden",
            Self::TooManyAuthFailures { .. } => "TooManyRequests",
            Self::CustomerNotFound => "CustomerNotFound",
            Self::CardNotLocked => "CardNotLocked",
            Self::CardCannotBeUnlocked => "CardCannotBeUnlocked",
            Self::CardCannotBeReplaced => "CardCannotBeReplaced",
            Self::CustomerErased => "CustomerErased",
            Self::NoNoticeToRetry => "NoNoticeToRetry",
            Self::PreconditionFailed => "PreconditionFailed",
            Self::PreconditionRequired => "PreconditionRequired",
        }
    }

    /// Seconds the client should wait before trying again (`Retry-After`), where that is known.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            Self::TooManyAttempts { retry_after_secs }
            | Self::TooManyAuthFailures { retry_after_secs } => Some(*retry_after_secs),
            Self::ServiceUnavailable => Some(1),
            _ => None,
        }
    }

    /// Whether the connection is closed after this answer: the request's body was not read to
    /// its end, so the next bytes on the connection cannot be trusted to start a request.
    pub fn closes_connection(&self) -> bool {
        matches!(self, Self::PayloadTooLarge | Self::RequestTimeout)
    }

    pub fn message(&self, lang: Language) -> String {
        use Language::{English as En, Polish as Pl};
        let fixed = match (self, lang) {
            (Self::MalformedJson { line, column }, Pl) => {
                return format!(
                    "Treść żądania nie jest poprawnym dokumentem JSON (wiersz {line}, kolumna {column})"
                );
            }
            (Self::MalformedJson { line, column }, En) => {
                return format!(
                    "The request body is not valid JSON (line {line}, column {column})"
                );
            }
            (Self::InvalidField { field, reason }, _) if field.is_empty() => {
                return match lang {
                    Pl => format!("Nieprawidłowe żądanie: {}", reason.text(lang)),
                    En => format!("Invalid request: {}", reason.text(lang)),
                };
            }
            (Self::InvalidField { field, reason }, Pl) => {
                return format!("Nieprawidłowe pole {field}: {}", reason.text(lang));
            }
            (Self::InvalidField { field, reason }, En) => {
                return format!("Invalid field {field}: {}", reason.text(lang));
            }
            (Self::CardNumberMismatch, Pl) => {
                "Numer karty w treści żądania różni się od numeru w adresie"
            }
            (Self::CardNumberMismatch, En) => {
                "The card number in the body differs from the one in the path"
            }
            (Self::CardAlreadyRegistered, Pl) => "Karta jest już zarejestrowana",
            (Self::CardAlreadyRegistered, En) => "The card is already registered",
            (Self::CardNotFound | Self::CardNotFoundOnRead, Pl) => {
                "Nie odnaleziono klienta o podanym numerze karty"
            }
            (Self::CardNotFound | Self::CardNotFoundOnRead, En) => {
                "No customer was found with the given card number"
            }
            (Self::IncorrectPhoneNumber, Pl) => "Błędny numer telefonu",
            (Self::IncorrectPhoneNumber, En) => "Incorrect phone number",
            (Self::CardWasNotWaitingForActivation, Pl) => "Karta nie oczekiwała na aktywację",
            (Self::CardWasNotWaitingForActivation, En) => "The card was not waiting for activation",
            (Self::CustomerActivationError, Pl) => "Błąd podczas aktywacji klienta",
            (Self::CustomerActivationError, En) => "Error while activating the customer",
            (Self::UnsupportedMediaType, Pl) => "Treść żądania musi mieć typ application/json",
            (Self::UnsupportedMediaType, En) => "The request body must be application/json",
            (Self::NotAcceptable, Pl) => "Odpowiedzi są dostępne tylko jako application/json",
            (Self::NotAcceptable, En) => "Responses are only available as application/json",
            (Self::NotFound, Pl) => "Nie ma takiego zasobu",
            (Self::NotFound, En) => "No such resource",
            (Self::MethodNotAllowed, Pl) => "Metoda niedozwolona dla tego zasobu",
            (Self::MethodNotAllowed, En) => "Method not allowed for this resource",
            (Self::PayloadTooLarge, Pl) => "Treść żądania przekracza 64 KiB",
            (Self::PayloadTooLarge, En) => "The request body exceeds 64 KiB",
            (Self::ServiceUnavailable, Pl) => {
                "Usługa jest chwilowo niedostępna; żądanie nie zostało wykonane"
            }
            (Self::ServiceUnavailable, En) => {
                "The service is temporarily unavailable; the request had no effect"
            }
            (Self::Timeout, Pl) => "Przekroczono czas obsługi żądania",
            (Self::Timeout, En) => "The request timed out",
            (Self::Unknown, Pl) => "Wystąpił nieoczekiwany błąd serwera",
            (Self::Unknown, En) => "An unexpected server error occurred",
            (Self::Forbidden, Pl) => {
                "Żądania zmieniające dane nie są przyjmowane z tego źródła (Origin)"
            }
            (Self::Forbidden, En) => "Requests that change data are not accepted from this origin",
            (Self::RequestTimeout, Pl) => "Treść żądania nie nadeszła w wymaganym czasie",
            (Self::RequestTimeout, En) => "The request body did not arrive in time",
            (Self::UriTooLong, Pl) => "Adres żądania jest za długi",
            (Self::UriTooLong, En) => "The request URI is too long",
            (Self::HeadersTooLarge, Pl) => "Nagłówki żądania są za duże lub jest ich za dużo",
            (Self::HeadersTooLarge, En) => "The request headers are too large or too many",
            (Self::TooManyAttempts { retry_after_secs }, Pl) => {
                return format!(
                    "Zbyt wiele nieudanych prób aktywacji tej karty; spróbuj ponownie za {retry_after_secs} s"
                );
            }
            (Self::TooManyAttempts { retry_after_secs }, En) => {
                return format!(
                    "Too many failed activation attempts for this card; try again in {retry_after_secs} s"
                );
            }
            (Self::TooManyAuthFailures { retry_after_secs }, Pl) => {
                return format!(
                    "Zbyt wiele nieudanych prób uwierzytelnienia z tego adresu; spróbuj ponownie za {retry_after_secs} s"
                );
            }
            (Self::TooManyAuthFailures { retry_after_secs }, En) => {
                return format!(
                    "Too many failed authentication attempts from this address; try again in {retry_after_secs} s"
                );
            }
            (Self::Unauthorized, Pl) => "Wymagany jest ważny token (Authorization: Bearer …)",
            (Self::Unauthorized, En) => "A valid token is required (Authorization: Bearer …)",
            (Self::RoleForbidden, Pl) => "Twoja rola nie pozwala na tę operację",
            (Self::RoleForbidden, En) => "Your role does not allow this operation",
            (Self::CustomerNotFound, Pl) => "Nie odnaleziono klienta o podanym identyfikatorze",
            (Self::CustomerNotFound, En) => "No customer was found with the given id",
            (Self::CardNotLocked, Pl) => "Karta nie jest zablokowana",
            (Self::CardNotLocked, En) => "The card is not locked",
            (Self::CardCannotBeUnlocked, Pl) => {
                "Tej karty nie można odblokować: została zastąpiona lub dane klienta usunięto"
            }
            (Self::CardCannotBeUnlocked, En) => {
                "This card cannot be unlocked: it was replaced, or its customer's data was erased"
            }
            (Self::CardCannotBeReplaced, Pl) => {
                "Tej karty nie można zastąpić: została już zastąpiona lub dane klienta usunięto"
            }
            (Self::CardCannotBeReplaced, En) => {
                "This card cannot be replaced: it was replaced already, or its customer's data was erased"
            }
            (Self::CustomerErased, Pl) => "Dane osobowe klienta zostały usunięte",
            (Self::CustomerErased, En) => "The customer's personal data was erased",
            (Self::NoNoticeToRetry, Pl) => {
                "Karta nie ma nieudanego powiadomienia ALCS do ponownego wysłania"
            }
            (Self::NoNoticeToRetry, En) => "The card has no failed ALCS notice to send again",
            (Self::PreconditionFailed, Pl) => {
                "Dane klienta zmieniły się w międzyczasie; odczytaj je ponownie"
            }
            (Self::PreconditionFailed, En) => "The customer changed meanwhile; read it again",
            (Self::PreconditionRequired, Pl) => "Wymagany jest nagłówek If-Match z wersją klienta",
            (Self::PreconditionRequired, En) => {
                "The If-Match header with the customer's version is required"
            }
        };
        fixed.to_owned()
    }

    /// The response body in the given language.
    pub fn envelope(&self, lang: Language) -> Envelope {
        Envelope {
            http_code: self.status().as_u16().to_string(),
            message_code: self.message_code(),
            message: self.message(lang),
        }
    }
}

/// The contract's error body; field order as in the contract.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(example = json!({"HttpCode": "400", "MessageCode": "InvalidRequest", "Message": "Nieprawidłowe pole LoyaltyCard.Gender: M, F albo U"}))]
pub struct Envelope {
    #[serde(rename = "HttpCode")]
    pub http_code: String,
    #[serde(rename = "MessageCode")]
    #[schema(value_type = super::openapi::MessageCode)]
    pub message_code: &'static str,
    #[serde(rename = "Message")]
    pub message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = self.status().into_response();
        response.extensions_mut().insert(self);
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_has_a_message_in_both_languages() {
        let all = [
            ApiError::MalformedJson { line: 1, column: 2 },
            ApiError::invalid("LoyaltyCard.Gender", Reason::Gender),
            ApiError::CardNumberMismatch,
            ApiError::CardAlreadyRegistered,
            ApiError::CardNotFound,
            ApiError::CardNotFoundOnRead,
            ApiError::IncorrectPhoneNumber,
            ApiError::CardWasNotWaitingForActivation,
            ApiError::CustomerActivationError,
            ApiError::UnsupportedMediaType,
            ApiError::NotAcceptable,
            ApiError::NotFound,
            ApiError::MethodNotAllowed,
            ApiError::PayloadTooLarge,
            ApiError::ServiceUnavailable,
            ApiError::Timeout,
            ApiError::Unknown,
            ApiError::Forbidden,
            ApiError::RequestTimeout,
            ApiError::UriTooLong,
            ApiError::HeadersTooLarge,
            ApiError::TooManyAttempts {
                retry_after_secs: 60,
            },
            ApiError::Unauthorized,
            ApiError::RoleForbidden,
            ApiError::TooManyAuthFailures {
                retry_after_secs: 60,
            },
            ApiError::CustomerNotFound,
            ApiError::CardNotLocked,
            ApiError::CardCannotBeUnlocked,
            ApiError::CardCannotBeReplaced,
            ApiError::CustomerErased,
            ApiError::NoNoticeToRetry,
            ApiError::PreconditionFailed,
            ApiError::PreconditionRequired,
        ];
        // The OpenAPI document lists every code, and no other.
        let document = serde_json::to_value(crate::http::openapi()).unwrap();
        let listed: std::collections::BTreeSet<String> =
            document["components"]["schemas"]["MessageCode"]["enum"]
                .as_array()
                .expect("the MessageCode schema")
                .iter()
                .map(|v| v.as_str().unwrap().to_owned())
                .collect();
        assert_eq!(listed.len(), ApiError::CODES.len(), "each code listed once");
        let answered: std::collections::BTreeSet<String> =
            all.iter().map(|e| e.message_code().to_owned()).collect();
        assert_eq!(listed, answered);
        for e in all {
            let (pl, en) = (e.message(Language::Polish), e.message(Language::English));
            assert!(!pl.is_empty() && !en.is_empty());
            assert_ne!(pl, en, "{e:?}");
            assert_eq!(e.envelope(Language::Polish).http_code, e.status().as_str());
        }
    }

    #[test]
    fn invalid_field_messages_name_the_field() {
        let e = ApiError::invalid("LoyaltyCard.Gender", Reason::Gender);
        assert!(e.message(Language::English).contains("LoyaltyCard.Gender"));
        assert!(e.message(Language::Polish).contains("LoyaltyCard.Gender"));
    }
}
