//! What each error says, in Polish and in English: the one catalog of the envelope's
//! `Message`. A text never contains the refused value itself (it may be personal data or a
//! secret); an invalid field's text names the field.

use super::{ApiError, Reason};
use crate::domain::{Language, PasswordError};

impl Reason {
    pub(super) fn text(self, lang: Language) -> &'static str {
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

impl ApiError {
    /// The envelope's `Message` in the given language.
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
            // The seed's own text (contract section 8).
            (Self::NoAuthothorization, Pl) => "Błędny numer karty lub pin",
            (Self::NoAuthothorization, En) => "Wrong card number or PIN",
            (Self::SessionExpired, Pl) => "Sesja wygasła lub nie istnieje; zaloguj się ponownie",
            (Self::SessionExpired, En) => "The session has ended or does not exist; sign in again",
            (Self::PasswordChangeRequired, Pl) => {
                "Najpierw ustaw hasło: PIN służy tylko do pierwszego logowania"
            }
            (Self::PasswordChangeRequired, En) => {
                "Set a password first: the PIN is only for the first sign-in"
            }
            (Self::WeakPassword(why), Pl) => match why {
                PasswordError::TooShort => "Nowe hasło musi mieć co najmniej 8 znaków",
                PasswordError::TooLong => "Nowe hasło może mieć najwyżej 128 znaków",
                PasswordError::Common => "Nowe hasło jest zbyt popularne; wybierz inne",
            },
            (Self::WeakPassword(why), En) => match why {
                PasswordError::TooShort => "The new password must have at least 8 characters",
                PasswordError::TooLong => "The new password may have at most 128 characters",
                PasswordError::Common => "The new password is too common; choose another",
            },
            (Self::InvalidProperties(_), Pl) => {
                "Niektóre wartości są nieprawidłowe lub ich brakuje (zob. ValidationErrorCodes)"
            }
            (Self::InvalidProperties(_), En) => {
                "Some values are invalid or missing (see ValidationErrorCodes)"
            }
            (Self::NotSupportedProperties, Pl) => "Żądanie zawiera nieobsługiwane właściwości",
            (Self::NotSupportedProperties, En) => {
                "The request names properties that are not supported"
            }
            (Self::CustomerModified, Pl) => {
                "Dane klienta zmienił w międzyczasie inny użytkownik lub proces; odczytaj je ponownie"
            }
            (Self::CustomerModified, En) => {
                "The customer was changed meanwhile by another user or process; read it again"
            }
            (Self::StepUpRequired, Pl) => {
                "Ta operacja wymaga ponownego potwierdzenia tożsamości (hasło lub kod SMS)"
            }
            (Self::StepUpRequired, En) => {
                "This operation needs you to confirm who you are again (password or SMS code)"
            }
            (Self::SmsUnavailable, Pl) => {
                "Wysyłanie SMS jest niedostępne; skontaktuj się z biurem obsługi"
            }
            (Self::SmsUnavailable, En) => {
                "Text messages cannot be sent; please contact the service desk"
            }
            (Self::TooManySignIns { retry_after_secs }, Pl) => {
                return format!(
                    "Zbyt wiele nieudanych prób logowania; spróbuj ponownie za {retry_after_secs} s"
                );
            }
            (Self::TooManySignIns { retry_after_secs }, En) => {
                return format!(
                    "Too many failed sign-in attempts; try again in {retry_after_secs} s"
                );
            }
        };
        fixed.to_owned()
    }
}
