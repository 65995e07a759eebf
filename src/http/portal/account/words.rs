//! The pages' words: each in Polish and English side by side, where it is used, so that a
//! page cannot gain a sentence in one language only. Refusals use the API's own messages
//! ([`crate::http::error::ApiError::message`]).

use crate::domain::{Language, ProfileField};

/// `w.t("Polish", "English")`: the page's language picks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct W(pub Language);

impl W {
    pub fn t(self, pl: &'static str, en: &'static str) -> &'static str {
        match self.0 {
            Language::Polish => pl,
            Language::English => en,
        }
    }
}

/// A profile property's label.
pub fn field_label(w: W, field: ProfileField) -> &'static str {
    match field {
        ProfileField::FirstName => w.t("Imię", "First name"),
        ProfileField::LastName => w.t("Nazwisko", "Last name"),
        ProfileField::Email => w.t("Adres e-mail", "Email address"),
        ProfileField::Street => w.t("Ulica", "Street"),
        ProfileField::HouseNumber => w.t("Numer domu", "House number"),
        ProfileField::ApartmentNumber => w.t("Numer mieszkania", "Apartment number"),
        ProfileField::PostalCode => w.t("Kod pocztowy", "Postal code"),
        ProfileField::City => w.t("Miejscowość", "City"),
        ProfileField::DateOfBirth => w.t("Data urodzenia", "Date of birth"),
        ProfileField::PreferredLanguage => w.t("Język wiadomości", "Language of messages"),
        ProfileField::PreferredStore => w.t("Ulubiony sklep", "Preferred store"),
    }
}

/// What a property's value must look like, shown beside it and with its error.
pub fn field_hint(w: W, field: ProfileField) -> Option<&'static str> {
    Some(match field {
        ProfileField::Email => w.t(
            "Na przykład: jan.kowalski@example.pl",
            "For example: jan.kowalski@example.com",
        ),
        ProfileField::PostalCode => w.t("Na przykład: 00-950", "For example: 00-950"),
        ProfileField::DateOfBirth => w.t(
            "Rok, miesiąc i dzień, na przykład: 1985-04-23",
            "Year, month and day, for example: 1985-04-23",
        ),
        _ => return None,
    })
}

/// The autocomplete token of a property (WCAG 1.3.5), where the input's purpose has one.
pub fn field_autocomplete(field: ProfileField) -> Option<&'static str> {
    Some(match field {
        ProfileField::FirstName => "given-name",
        ProfileField::LastName => "family-name",
        ProfileField::Email => "email",
        ProfileField::Street => "address-line1",
        ProfileField::PostalCode => "postal-code",
        ProfileField::City => "address-level2",
        ProfileField::DateOfBirth => "bday",
        ProfileField::PreferredLanguage => "language",
        _ => return None,
    })
}

/// A refused property's message: which field, and what is wrong with it.
pub fn field_error(w: W, error: &str) -> &'static str {
    match error {
        "Missing" => w.t("To pole jest wymagane.", "This field is required."),
        "ReadOnly" => w.t(
            "Tego pola nie można tu zmienić.",
            "This field cannot be changed here.",
        ),
        _ => w.t("Ta wartość jest nieprawidłowa.", "This value is not valid."),
    }
}

/// A card's or customer's status, in words.
pub fn status(w: W, status: &str) -> &'static str {
    match status {
        "Active" => w.t("aktywna", "active"),
        "Locked" => w.t("zablokowana", "blocked"),
        "WaitingForActivation" | "NotActivated" | "WaitingForActivationSmsConfirmation" => w.t(
            "czeka na potwierdzenie telefonu",
            "waiting for the phone to be confirmed",
        ),
        "Disabled" => w.t("wyłączone", "disabled"),
        _ => w.t("nieznany", "unknown"),
    }
}

/// A consent event's action, in words.
pub fn consent_action(w: W, action: &str) -> &'static str {
    match action {
        "Given" => w.t("zgoda wyrażona", "consent given"),
        "Withdrawn" => w.t("zgoda wycofana", "consent withdrawn"),
        "Objected" => w.t("sprzeciw wobec marketingu", "objected to marketing"),
        "ObjectionWithdrawn" => w.t("sprzeciw wycofany", "objection withdrawn"),
        _ => w.t("zmiana", "change"),
    }
}

/// A channel, in words.
pub fn channel(w: W, channel: &str) -> &'static str {
    match channel {
        "web" => w.t("strona", "website"),
        "api" => w.t("aplikacja", "app"),
        "desk" => w.t("biuro obsługi", "service desk"),
        _ => w.t("inny", "other"),
    }
}
