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

mod catalog;

/// Declares [`MessageCode`]: each code once, its wire spelling its name.
macro_rules! message_codes {
    ($($code:ident),* $(,)?) => {
        /// A stable identifier of the error, for programs to switch on
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
        pub enum MessageCode {
            $($code),*
        }

        impl MessageCode {
            /// Every code, in the order the OpenAPI document lists them.
            pub const ALL: &[Self] = &[$(Self::$code),*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$code => stringify!($code)),*
                }
            }
        }
    };
}

// Every `MessageCode` the service answers with (contract section 3 and the desk's own).
message_codes! {
    InvalidRequest,
    CardNumberMismatch,
    CardAlreadyRegistered,
    CustomerWithGivenCardNumberNotFound,
    IncorrectPhoneNumber,
    CardWasNotWaitingForActivation,
    CustomerActivationError,
    UnsupportedMediaType,
    NotAcceptable,
    NotFound,
    MethodNotAllowed,
    PayloadTooLarge,
    ServiceUnavailable,
    Timeout,
    UnknownError,
    Forbidden,
    RequestTimeout,
    UriTooLong,
    RequestHeaderFieldsTooLarge,
    TooManyAttempts,
    Unauthorized,
    TooManyRequests,
    CustomerNotFound,
    CardNotLocked,
    CardCannotBeUnlocked,
    CardCannotBeReplaced,
    CustomerErased,
    NoNoticeToRetry,
    PreconditionFailed,
    PreconditionRequired,
    NoAuthothorization,
    SessionExpired,
    PasswordChangeRequired,
    ValidationErrorCodes,
    NotSupportedProperties,
    CustomerModifiedByAnotherUserOrProcess,
    StepUpRequired,
    SmsUnavailable,
}

/// `doc` with its `MessageCode` schema listing only `codes`: each listener's document names
/// only the codes its own operations answer.
pub fn listing_only(
    mut doc: utoipa::openapi::OpenApi,
    codes: &[MessageCode],
) -> utoipa::openapi::OpenApi {
    use utoipa::openapi::RefOr;
    use utoipa::openapi::schema::Schema;
    if let Some(components) = doc.components.as_mut()
        && let Some(RefOr::T(Schema::Object(object))) = components.schemas.get_mut("MessageCode")
    {
        object.enum_values = Some(codes.iter().map(|c| c.as_str().into()).collect());
    }
    doc
}

/// Why a field was refused. Each reason has a Polish and an English text ([`catalog`]) that never
/// contains the value itself (it may be personal data or a secret).
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

/// An error answered to the client: its status and `MessageCode` in [`ApiError::head`], its
/// texts in [`catalog`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// The body is not JSON at all.
    MalformedJson {
        line: usize,
        column: usize,
    },
    /// A field (dotted path, e.g. `LoyaltyCard.Gender`) is missing or wrong.
    InvalidField {
        field: String,
        reason: Reason,
    },
    /// `LoyaltyCard.CardNumber` differs from the path.
    CardNumberMismatch,
    CardAlreadyRegistered,
    /// An operation on a card that is not registered.
    CardNotFound,
    /// A read of a card that is not registered.
    CardNotFoundOnRead,
    IncorrectPhoneNumber,
    CardWasNotWaitingForActivation,
    /// Activation failed unexpectedly; nothing was changed.
    CustomerActivationError,
    UnsupportedMediaType,
    NotAcceptable,
    /// No such route.
    NotFound,
    MethodNotAllowed,
    PayloadTooLarge,
    /// The database is unreachable or overloaded; nothing was done.
    ServiceUnavailable,
    /// The request did not finish in the configured time.
    Timeout,
    /// A state-changing request from a browser origin that is not allowed.
    Forbidden,
    /// The client did not send its body in time.
    RequestTimeout,
    UriTooLong,
    /// Too many headers, or too large.
    HeadersTooLarge,
    /// Too many failed activations of this card; retry after the
    /// given number of seconds.
    TooManyAttempts {
        retry_after_secs: u64,
    },
    /// The desk API without a valid bearer token.
    Unauthorized,
    /// The desk user's role may not do this.
    RoleForbidden,
    /// Too many failed sign-ins from this address lately.
    TooManyAuthFailures {
        retry_after_secs: u64,
    },
    CustomerNotFound,
    /// Unlock of a card that is not locked.
    CardNotLocked,
    /// The card was replaced, or its customer erased.
    CardCannotBeUnlocked,
    /// The card was replaced already, or its customer erased.
    CardCannotBeReplaced,
    /// The customer's personal data was erased.
    CustomerErased,
    /// The card has no dead or unsent ALCS notice.
    NoNoticeToRetry,
    /// The customer changed since the version in `If-Match`.
    PreconditionFailed,
    /// The change needs `If-Match`.
    PreconditionRequired,
    /// The portal's one refusal of a credential (the seed's code, spelt as it spells it).
    NoAuthothorization,
    /// A portal request without a session in force.
    SessionExpired,
    /// A session signed in by PIN may only set a password and sign out.
    PasswordChangeRequired,
    /// A new password the rules refuse.
    WeakPassword(crate::domain::PasswordError),
    /// Profile values the rules refuse, each named with why.
    InvalidProperties(Vec<Violation>),
    /// A profile update naming properties the profile does not have.
    NotSupportedProperties,
    /// The customer changed since the version in `If-Match` (the portal's 412).
    CustomerModified,
    /// A sensitive operation without a recent step-up.
    StepUpRequired,
    /// No SMS gateway is configured: nothing that needs a text message can be done.
    SmsUnavailable,
    /// Too many failed portal sign-ins (of the card number, from the address, or
    /// service-wide); retry after the given number of seconds.
    TooManySignIns {
        retry_after_secs: u64,
    },
    Unknown,
}

/// One refused property of a 422 `ValidationErrorCodes` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Violation {
    #[serde(rename = "Property")]
    pub property: String,
    /// `Missing`, `Invalid` or `ReadOnly`.
    #[serde(rename = "Error")]
    pub error: &'static str,
}

impl ApiError {
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

    /// The error's status and `MessageCode`: the one table of both.
    pub fn head(&self) -> (StatusCode, MessageCode) {
        use MessageCode as C;
        use StatusCode as S;
        match self {
            Self::MalformedJson { .. } | Self::InvalidField { .. } => {
                (S::BAD_REQUEST, C::InvalidRequest)
            }
            Self::CardNumberMismatch => (S::BAD_REQUEST, C::CardNumberMismatch),
            Self::CardAlreadyRegistered => (S::CONFLICT, C::CardAlreadyRegistered),
            Self::CardNotFound => (S::BAD_REQUEST, C::CustomerWithGivenCardNumberNotFound),
            Self::CardNotFoundOnRead => (S::NOT_FOUND, C::CustomerWithGivenCardNumberNotFound),
            Self::IncorrectPhoneNumber => (S::BAD_REQUEST, C::IncorrectPhoneNumber),
            Self::CardWasNotWaitingForActivation => {
                (S::UNPROCESSABLE_ENTITY, C::CardWasNotWaitingForActivation)
            }
            Self::CustomerActivationError => (S::INTERNAL_SERVER_ERROR, C::CustomerActivationError),
            Self::UnsupportedMediaType => (S::UNSUPPORTED_MEDIA_TYPE, C::UnsupportedMediaType),
            Self::NotAcceptable => (S::NOT_ACCEPTABLE, C::NotAcceptable),
            Self::NotFound => (S::NOT_FOUND, C::NotFound),
            Self::MethodNotAllowed => (S::METHOD_NOT_ALLOWED, C::MethodNotAllowed),
            Self::PayloadTooLarge => (S::PAYLOAD_TOO_LARGE, C::PayloadTooLarge),
            Self::ServiceUnavailable => (S::SERVICE_UNAVAILABLE, C::ServiceUnavailable),
            Self::Timeout => (S::SERVICE_UNAVAILABLE, C::Timeout),
            Self::Unknown => (S::INTERNAL_SERVER_ERROR, C::UnknownError),
            Self::Forbidden | Self::RoleForbidden => (S::FORBIDDEN, C::Forbidden),
            Self::RequestTimeout => (S::REQUEST_TIMEOUT, C::RequestTimeout),
            Self::UriTooLong => (S::URI_TOO_LONG, C::UriTooLong),
            Self::HeadersTooLarge => (
                S::REQUEST_HEADER_FIELDS_TOO_LARGE,
                C::RequestHeaderFieldsTooLarge,
            ),
            Self::TooManyAttempts { .. } => (S::TOO_MANY_REQUESTS, C::TooManyAttempts),
            Self::Unauthorized => (S::UNAUTHORIZED, C::Unauthorized),
            Self::TooManyAuthFailures { .. } => (S::TOO_MANY_REQUESTS, C::TooManyRequests),
            Self::CustomerNotFound => (S::NOT_FOUND, C::CustomerNotFound),
            Self::CardNotLocked => (S::CONFLICT, C::CardNotLocked),
            Self::CardCannotBeUnlocked => (S::CONFLICT, C::CardCannotBeUnlocked),
            Self::CardCannotBeReplaced => (S::CONFLICT, C::CardCannotBeReplaced),
            Self::CustomerErased => (S::CONFLICT, C::CustomerErased),
            Self::NoNoticeToRetry => (S::CONFLICT, C::NoNoticeToRetry),
            Self::PreconditionFailed => (S::PRECONDITION_FAILED, C::PreconditionFailed),
            Self::PreconditionRequired => (S::PRECONDITION_REQUIRED, C::PreconditionRequired),
            Self::NoAuthothorization => (S::FORBIDDEN, C::NoAuthothorization),
            Self::SessionExpired => (S::UNAUTHORIZED, C::SessionExpired),
            Self::PasswordChangeRequired => (S::FORBIDDEN, C::PasswordChangeRequired),
            Self::WeakPassword(_) => (S::UNPROCESSABLE_ENTITY, C::ValidationErrorCodes),
            Self::TooManySignIns { .. } => (S::TOO_MANY_REQUESTS, C::TooManyAttempts),
            Self::InvalidProperties(_) => (S::UNPROCESSABLE_ENTITY, C::ValidationErrorCodes),
            Self::NotSupportedProperties => (S::BAD_REQUEST, C::NotSupportedProperties),
            Self::CustomerModified => (
                S::PRECONDITION_FAILED,
                C::CustomerModifiedByAnotherUserOrProcess,
            ),
            Self::StepUpRequired => (S::FORBIDDEN, C::StepUpRequired),
            Self::SmsUnavailable => (S::SERVICE_UNAVAILABLE, C::SmsUnavailable),
        }
    }

    pub fn status(&self) -> StatusCode {
        self.head().0
    }

    pub fn message_code(&self) -> MessageCode {
        self.head().1
    }

    /// Seconds the client should wait before trying again (`Retry-After`), where that is known.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            Self::TooManyAttempts { retry_after_secs }
            | Self::TooManyAuthFailures { retry_after_secs }
            | Self::TooManySignIns { retry_after_secs } => Some(*retry_after_secs),
            Self::ServiceUnavailable => Some(1),
            _ => None,
        }
    }

    /// Whether the connection is closed after this answer: the request's body was not read to
    /// its end, so the next bytes on the connection cannot be trusted to start a request.
    pub fn closes_connection(&self) -> bool {
        matches!(self, Self::PayloadTooLarge | Self::RequestTimeout)
    }

    /// The response body in the given language.
    pub fn envelope(&self, lang: Language) -> Envelope {
        Envelope {
            http_code: self.status().as_u16().to_string(),
            message_code: self.message_code(),
            message: self.message(lang),
            validation: self.violations(),
        }
    }

    /// The refused properties, for a 422 `ValidationErrorCodes` answer.
    fn violations(&self) -> Option<Vec<Violation>> {
        match self {
            Self::WeakPassword(_) => Some(vec![Violation {
                property: "NewPassword".to_owned(),
                error: "Invalid",
            }]),
            Self::InvalidProperties(violations) => Some(violations.clone()),
            _ => None,
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
    pub message_code: MessageCode,
    #[serde(rename = "Message")]
    pub message: String,
    /// Only on a 422 `ValidationErrorCodes` answer (the portal's): which properties, and why.
    #[serde(
        rename = "ValidationErrorCodes",
        skip_serializing_if = "Option::is_none"
    )]
    pub validation: Option<Vec<Violation>>,
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
            ApiError::NoAuthothorization,
            ApiError::SessionExpired,
            ApiError::PasswordChangeRequired,
            ApiError::WeakPassword(crate::domain::PasswordError::TooShort),
            ApiError::TooManySignIns {
                retry_after_secs: 30,
            },
            ApiError::InvalidProperties(vec![]),
            ApiError::NotSupportedProperties,
            ApiError::CustomerModified,
            ApiError::StepUpRequired,
            ApiError::SmsUnavailable,
        ];
        // Each listener's document lists the codes its operations answer, and no other.
        let listed = |doc: utoipa::openapi::OpenApi| -> std::collections::BTreeSet<String> {
            serde_json::to_value(doc).unwrap()["components"]["schemas"]["MessageCode"]["enum"]
                .as_array()
                .expect("the MessageCode schema")
                .iter()
                .map(|v| v.as_str().unwrap().to_owned())
                .collect()
        };
        let names = |codes: &[MessageCode]| -> std::collections::BTreeSet<String> {
            codes.iter().map(|c| c.as_str().to_owned()).collect()
        };
        assert_eq!(
            listed(crate::http::openapi()),
            names(crate::http::openapi::CODES)
        );
        assert_eq!(
            listed(crate::http::portal::openapi()),
            names(crate::http::portal::CODES)
        );
        let declared = names(MessageCode::ALL);
        assert!(names(crate::http::openapi::CODES).is_subset(&declared));
        assert!(names(crate::http::portal::CODES).is_subset(&declared));
        // Every code is answered by some error.
        let answered: std::collections::BTreeSet<String> = all
            .iter()
            .map(|e| e.message_code().as_str().to_owned())
            .collect();
        assert_eq!(declared, answered);
        for code in MessageCode::ALL {
            assert_eq!(serde_json::to_value(code).unwrap(), code.as_str());
        }
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
