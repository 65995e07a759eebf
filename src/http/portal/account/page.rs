//! The pages' chrome and the pieces every page uses: the header (the site, the customer's
//! places, the language, signing out), the footer (the desk's contact on every page, WCAG
//! 3.2.6), messages, and labelled inputs with their hints and errors.

use std::sync::Arc;

use maud::{Markup, html};

use super::STYLESHEET;
use super::words::W;
use crate::domain::Language;
use crate::http::pages::layout::{self, Chrome, language_switch};

/// What a page needs besides its content.
pub struct Frame {
    pub lang: Language,
    /// The path and query the page was asked at (the language switch comes back to it).
    pub here: String,
    /// The session's CSRF token when one is signed in.
    pub csrf: Option<String>,
    /// Signed in with the password: the customer's places are shown.
    pub member: bool,
    /// The operator's notice (its `Contact` is in every footer).
    pub notice: Arc<serde_json::Value>,
}

impl Frame {
    pub fn w(&self) -> W {
        W(self.lang)
    }
}

/// The customer's places, in the order of the navigation.
fn places(w: W) -> [(&'static str, &'static str); 6] {
    [
        ("/account", w.t("Przegląd", "Overview")),
        ("/account/profile", w.t("Profil", "Profile")),
        ("/account/consents", w.t("Zgody", "Consents")),
        ("/account/card", w.t("Karta", "Card")),
        ("/account/sessions", w.t("Sesje", "Sessions")),
        ("/account/my-data", w.t("Twoje dane", "Your data")),
    ]
}

/// The site's name.
pub fn site(w: W) -> &'static str {
    w.t("Moja karta", "My card")
}

/// A whole page.
pub fn layout(frame: &Frame, title: &str, body: Markup) -> Markup {
    let w = frame.w();
    let path = frame.here.split('?').next().unwrap_or_default();
    let header = html! {
        div.bar {
            a.brand href="/account" { span.mark aria-hidden="true" { "★" } (site(w)) }
            (language_switch(frame.lang, "/account/language", &frame.here))
            @if let Some(csrf) = &frame.csrf {
                form.signout method="post" action="/account/sign-out" {
                    input type="hidden" name="csrf" value=(csrf);
                    button.link type="submit" { (w.t("Wyloguj się", "Sign out")) }
                }
            }
        }
        @if frame.member {
            nav aria-label=(w.t("Twoje konto", "Your account")) {
                ul {
                    @for (href, label) in places(w) {
                        li {
                            @if href == path {
                                a href=(href) aria-current="page" { (label) }
                            } @else {
                                a href=(href) { (label) }
                            }
                        }
                    }
                }
            }
        }
    };
    let chrome = Chrome {
        lang: frame.lang,
        title,
        site: site(w),
        stylesheet: STYLESHEET.href(),
        skip: w.t("Przejdź do treści", "Skip to content"),
        header,
        footer: Some(footer(frame)),
    };
    layout::page(chrome, body)
}

/// One entry of the notice's `Contact` (`Phone`, `Email`, `Hours`), when given.
pub fn contact<'a>(notice: &'a serde_json::Value, key: &str) -> Option<&'a str> {
    notice["Contact"][key].as_str().filter(|s| !s.is_empty())
}

/// A phone number as a link that dials it.
pub fn phone_link(phone: &str) -> Markup {
    html! { a href={ "tel:" (phone.replace(' ', "")) } { (phone) } }
}

/// The desk's contact and the site's notices.
fn footer(frame: &Frame) -> Markup {
    let w = frame.w();
    let text = |key: &str| contact(&frame.notice, key);
    html! {
        div.contact {
            h2 { (w.t("Potrzebujesz pomocy?", "Need help?")) }
            p {
                (w.t("Biuro obsługi klienta", "Customer service desk"))
                @if let Some(phone) = text("Phone") {
                    ": " (phone_link(phone))
                }
                @if let Some(email) = text("Email") {
                    ", " a href={ "mailto:" (email) } { (email) }
                }
                @if let Some(hours) = text("Hours") {
                    " (" span lang=(notice_lang(&frame.notice)) { (hours) } ")"
                }
            }
        }
        ul.links {
            li { a href="/account/help" { (w.t("Pomoc", "Help")) } }
            li { a href="/account/privacy" { (w.t("Informacja o prywatności", "Privacy notice")) } }
            li { a href="/account/accessibility" { (w.t("Deklaracja dostępności", "Accessibility statement")) } }
        }
    }
}

/// The language the operator's notice is written in (`Language`, default English).
pub fn notice_lang(notice: &serde_json::Value) -> &'static str {
    match notice["Language"].as_str() {
        Some(code) if code.starts_with("pl") => "pl",
        _ => "en",
    }
}

/// A message: `error` (an alert), `done` or `note` (a status).
pub fn message(kind: &str, text: &str) -> Markup {
    let role = if kind == "error" { "alert" } else { "status" };
    html! { p class={ "message " (kind) } role=(role) { (text) } }
}

/// The errors of a form, above it, each a link to its field (every field also says its own).
pub fn summary(w: W, errors: &[(&str, Option<&str>)]) -> Markup {
    let listed: Vec<(&str, &str)> = errors
        .iter()
        .filter_map(|(id, error)| error.map(|e| (*id, e)))
        .collect();
    html! {
        @if !listed.is_empty() {
            div.message.error role="alert" aria-labelledby="summary-title" {
                h2 id="summary-title" { (w.t("Popraw zaznaczone pola", "Please correct the marked fields")) }
                ul { @for (id, error) in listed { li { a href={ "#" (id) } { (error) } } } }
            }
        }
    }
}

/// A page's title, marked when the page reports an error: the title is what a screen reader
/// reads first (WCAG 3.3.1).
pub fn title_for(w: W, title: &str, error: bool) -> String {
    if error {
        format!("{}{title}", w.t("Błąd: ", "Error: "))
    } else {
        title.to_owned()
    }
}

/// Which secret a refusal was about.
#[derive(Debug, Clone, Copy)]
pub enum Secret {
    Pin,
    Password,
    Code,
}

/// What a refused secret's field says: the one refusal in words for that field (it tells no
/// more than the API's: a wrong code reads the same for a card that does not exist), or the
/// refusal's own message (a throttle, an outage).
pub fn refused_secret(w: W, error: &crate::http::error::ApiError, secret: Secret) -> String {
    match (error, secret) {
        (crate::http::error::ApiError::NoAuthothorization, Secret::Pin) => w
            .t("To nie jest PIN tej karty.", "That is not this card's PIN.")
            .to_owned(),
        (crate::http::error::ApiError::NoAuthothorization, Secret::Password) => w
            .t("Hasło jest nieprawidłowe.", "That password is not right.")
            .to_owned(),
        (crate::http::error::ApiError::NoAuthothorization, Secret::Code) => w
            .t(
                "To nie jest wysłany kod albo kod wygasł.",
                "That is not the code we sent, or it has expired.",
            )
            .to_owned(),
        (error, _) => error.message(w.0),
    }
}

/// One labelled input, with its hint and its error described by it.
pub struct Input<'a> {
    pub id: &'a str,
    pub label: &'a str,
    pub kind: &'a str,
    pub value: &'a str,
    pub autocomplete: Option<&'a str>,
    pub hint: Option<&'a str>,
    pub error: Option<&'a str>,
    pub required: bool,
    /// `numeric` for digits (a card number, a code): the phone's keypad.
    pub inputmode: Option<&'a str>,
}

impl<'a> Input<'a> {
    pub fn new(id: &'a str, label: &'a str, kind: &'a str) -> Self {
        Self {
            id,
            label,
            kind,
            value: "",
            autocomplete: None,
            hint: None,
            error: None,
            required: false,
            inputmode: None,
        }
    }

    pub fn value(mut self, value: &'a str) -> Self {
        self.value = value;
        self
    }

    pub fn autocomplete(mut self, token: &'a str) -> Self {
        self.autocomplete = Some(token);
        self
    }

    pub fn hint(mut self, hint: Option<&'a str>) -> Self {
        self.hint = hint;
        self
    }

    pub fn error(mut self, error: Option<&'a str>) -> Self {
        self.error = error;
        self
    }

    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }

    pub fn numeric(mut self) -> Self {
        self.inputmode = Some("numeric");
        self
    }

    pub fn render(&self) -> Markup {
        let hint_id = format!("{}-hint", self.id);
        let error_id = format!("{}-error", self.id);
        let described: Vec<&str> = [
            self.error.map(|_| error_id.as_str()),
            self.hint.map(|_| hint_id.as_str()),
        ]
        .into_iter()
        .flatten()
        .collect();
        let described = (!described.is_empty()).then(|| described.join(" "));
        // A secret is never written back into the page.
        let value = (self.kind != "password").then_some(self.value);
        html! {
            div.field.invalid[self.error.is_some()] {
                label for=(self.id) { (self.label) }
                @if let Some(hint) = self.hint { p.hint id=(hint_id) { (hint) } }
                @if let Some(error) = self.error { p.error id=(error_id) { (error) } }
                input id=(self.id) name=(self.id) type=(self.kind) value=[value]
                    autocomplete=[self.autocomplete] inputmode=[self.inputmode]
                    required[self.required] aria-invalid=[self.error.map(|_| "true")]
                    aria-describedby=[described];
            }
        }
    }
}

/// The password asked again for a sensitive change, unless the session was raised a moment
/// ago; with a way to use an SMS code instead.
pub fn step_up_field(frame: &Frame, stepped_up: bool, next: &str, error: Option<&str>) -> Markup {
    let w = frame.w();
    if stepped_up {
        return html! {};
    }
    let next: String = url::form_urlencoded::byte_serialize(next.as_bytes()).collect();
    html! {
        (Input::new("password", w.t("Twoje hasło", "Your password"), "password")
            .autocomplete("current-password")
            .hint(Some(w.t("Dla bezpieczeństwa potwierdź, że to Ty.", "For your safety, confirm it is you.")))
            .error(error)
            .required()
            .render())
        p.hint {
            a href={ "/account/step-up?next=" (next) } { (w.t("Potwierdź kodem SMS zamiast hasła", "Confirm with an SMS code instead")) }
        }
    }
}

/// The hidden field every signed-in form carries.
pub fn csrf(frame: &Frame) -> Markup {
    html! {
        @if let Some(csrf) = &frame.csrf { input type="hidden" name="csrf" value=(csrf); }
    }
}

pub fn not_found(frame: &Frame) -> Markup {
    let w = frame.w();
    layout(
        frame,
        w.t("Nie ma takiej strony", "Page not found"),
        html! {
            h1 { (w.t("Nie ma takiej strony", "Page not found")) }
            p { a href="/account" { (w.t("Przejdź do swojego konta", "Go to your account")) } }
        },
    )
}

/// A page that only says why something was refused.
pub fn refused(frame: &Frame, text: &str) -> Markup {
    let w = frame.w();
    layout(
        frame,
        w.t("Nie udało się", "That did not work"),
        html! {
            h1 { (w.t("Nie udało się", "That did not work")) }
            (message("error", text))
            p { a href="/account" { (w.t("Wróć do swojego konta", "Back to your account")) } }
        },
    )
}

/// A time as the customer reads it.
pub fn time(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}
