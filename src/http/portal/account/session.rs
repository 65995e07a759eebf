//! Who is at the pages: the session cookie and what it opens, the CSRF and origin checks of
//! every form, signing in and out, the password (set, changed, reset by SMS code), and the
//! step-up that sensitive changes ask for.

use std::sync::Arc;

use axum::Extension;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use maud::{Markup, html};

use super::page::{
    self, Frame, Input, Secret, layout, message, refused_secret, summary, title_for,
};
use super::words::W;
use crate::domain::{CardNumber, Language};
use crate::http::error::ApiError;
use crate::http::extract::field;
use crate::http::pages::{self, Cookies, FormBody, cookie, csrf_for, html, redirect};
use crate::http::portal::PortalState;
use crate::http::portal::api::{MAX_SECRET_BYTES, braked, code_failure, credential_failure};
use crate::http::portal::client::ClientAddr;
use crate::service::portal::{CredentialError, CustomerSession, Level};

/// The session's id (never anything else).
const SESSION: &str = "__Host-cps_account";
/// The CSRF token of the forms a visitor sends before signing in (sign-in, reset).
const FORM: &str = "__Host-cps_form";
/// The language chosen on the page.
const LANG: &str = "__Host-cps_lang";
const CSRF_LABEL: &str = "cps-account-csrf";

/// `__Host-` cookies: `Secure` (loopback counts as secure to a browser), path `/`, no domain,
/// out of scripts' reach, not sent with another site's form posts.
const COOKIES: Cookies = Cookies {
    path: "/",
    same_site: "Lax",
    secure: true,
};

/// Anyone at a page, signed in or not.
pub struct Visitor {
    pub lang: Language,
    pub here: String,
    pub notice: Arc<serde_json::Value>,
    /// The request comes from this site (or sent no `Origin`).
    same_origin: bool,
    form_token: Option<String>,
    /// The session the cookie names, when it is in force.
    pub signed: Option<Signed>,
    /// A cookie named a session that is no longer in force.
    ended: bool,
    /// The session could not be read (the database is away): not the same as ended.
    unreadable: bool,
}

/// A session in force, as a page knows it.
pub struct Signed {
    pub session: CustomerSession,
    pub csrf: String,
}

/// A visitor signed in with a session of any level (a PIN session may only set a password).
pub struct Holder {
    pub visitor: Visitor,
    pub session: CustomerSession,
    pub csrf: String,
}

/// A visitor signed in with the password: every place of the account.
pub struct Member(pub Holder);

impl std::ops::Deref for Member {
    type Target = Holder;

    fn deref(&self) -> &Holder {
        &self.0
    }
}

fn path_of(parts: &Parts) -> String {
    parts
        .uri
        .path_and_query()
        .map_or("/account", |p| p.as_str())
        .to_owned()
}

impl FromRequestParts<PortalState> for Visitor {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &PortalState,
    ) -> Result<Self, Self::Rejection> {
        let headers = &parts.headers;
        let lang = pages::language(headers, LANG, state.default_language);
        let id = cookie(headers, SESSION).filter(|id| !id.is_empty() && id.len() <= 256);
        let mut unreadable = false;
        let session = match id {
            Some(id) => match state.portal.session(id).await {
                Ok(session) => session.map(|s| (s, csrf_for(CSRF_LABEL, id))),
                Err(e) => {
                    crate::warn_limited!("portal-session-unreadable", error = %crate::error_chain(&e), "cannot read a portal session");
                    unreadable = true;
                    None
                }
            },
            None => None,
        };
        Ok(Self {
            lang,
            here: path_of(parts),
            notice: state.portal.notice().clone(),
            same_origin: pages::same_origin(headers),
            form_token: cookie(headers, FORM)
                .filter(|t| t.len() == 32 && t.bytes().all(|b| b.is_ascii_hexdigit()))
                .map(str::to_owned),
            ended: id.is_some() && session.is_none() && !unreadable,
            unreadable,
            signed: session.map(|(session, csrf)| Signed { session, csrf }),
        })
    }
}

impl Visitor {
    pub fn w(&self) -> W {
        W(self.lang)
    }

    pub fn frame(&self) -> Frame {
        Frame {
            lang: self.lang,
            here: self.here.clone(),
            csrf: self.signed.as_ref().map(|s| s.csrf.clone()),
            member: self
                .signed
                .as_ref()
                .is_some_and(|s| s.session.level == Level::Password),
            notice: self.notice.clone(),
        }
    }

    /// A form sent before signing in must come from this site, with the token given with the
    /// form: otherwise the page that refuses it.
    pub fn check_public(&self, form: &[(String, String)]) -> Option<Response> {
        let token = self.form_token.as_deref().unwrap_or_default();
        if self.same_origin && pages::csrf_matches(form, "form", token) {
            return None;
        }
        crate::warn_limited!(
            "portal-forged-form",
            "portal form refused: no valid form token or a foreign origin"
        );
        Some(forbidden(&self.frame()))
    }

    /// A page with a public form: the form's token in the page and, when new, in a cookie.
    pub fn public_page(&self, status: StatusCode, body: impl FnOnce(&str) -> Markup) -> Response {
        let token = self
            .form_token
            .clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
        let mut response = html(status, body(&token));
        if self.form_token.is_none() {
            pages::set_cookie(&mut response, &COOKIES.make(FORM, &token, None));
        }
        response
    }
}

/// A sign-in over a session in force (a form from an older tab, a reset) replaces it: none is
/// left behind, orphaned.
async fn replaced(state: &PortalState, visitor: &Visitor) {
    if let Some(old) = &visitor.signed
        && let Err(e) = state.portal.sessions().end(&old.session.key).await
    {
        tracing::warn!(error = %crate::error_chain(&e), "cannot end the session a sign-in replaced");
    }
}

/// Why a signed-in page sends the visitor to the sign-in page (or, when the session could not
/// be read, says so and keeps the cookie: the session may well be in force).
fn to_sign_in(visitor: &Visitor) -> Response {
    if visitor.unreadable {
        let error = ApiError::ServiceUnavailable;
        return with_error(
            html(
                StatusCode::OK,
                page::refused(&visitor.frame(), &error.message(visitor.lang)),
            ),
            &error,
        );
    }
    if visitor.ended {
        redirect("/account/sign-in?done=ended", &[COOKIES.remove(SESSION)])
    } else {
        redirect("/account/sign-in", &[])
    }
}

impl FromRequestParts<PortalState> for Holder {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &PortalState) -> Result<Self, Response> {
        let Ok(visitor) = Visitor::from_request_parts(parts, state).await;
        match visitor.signed.as_ref() {
            Some(Signed { session, csrf }) => Ok(Self {
                session: session.clone(),
                csrf: csrf.clone(),
                visitor,
            }),
            None => Err(to_sign_in(&visitor)),
        }
    }
}

impl FromRequestParts<PortalState> for Member {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &PortalState) -> Result<Self, Response> {
        let holder = Holder::from_request_parts(parts, state).await?;
        match holder.session.level {
            Level::Password => Ok(Self(holder)),
            Level::Pin => Err(redirect("/account/password", &[])),
        }
    }
}

impl Holder {
    pub fn frame(&self) -> Frame {
        self.visitor.frame()
    }

    pub fn w(&self) -> W {
        self.visitor.w()
    }

    pub fn lang(&self) -> Language {
        self.visitor.lang
    }

    /// A change's checks: the form must be this session's, and come from this site;
    /// otherwise the page that refuses it.
    pub fn check(&self, form: &[(String, String)]) -> Option<Response> {
        if self.visitor.same_origin && pages::csrf_matches(form, "csrf", &self.csrf) {
            return None;
        }
        crate::warn_limited!("portal-forged-change", customer_id = %self.session.customer, "portal change refused: no valid CSRF token or a foreign origin");
        Some(forbidden(&self.frame()))
    }
}

fn forbidden(frame: &Frame) -> Response {
    let w = frame.w();
    html(
        StatusCode::FORBIDDEN,
        page::refused(
            frame,
            w.t(
                "Ten formularz nie pochodzi z tej strony albo jest nieaktualny. Otwórz stronę ponownie i spróbuj jeszcze raz.",
                "This form did not come from this site, or it is out of date. Open the page again and retry.",
            ),
        ),
    )
}

/// A refusal's page answer: its status, and `Retry-After` when it has one.
pub fn with_error(mut response: Response, error: &ApiError) -> Response {
    *response.status_mut() = error.status();
    if let Some(seconds) = error.retry_after() {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

/// The card number as typed: spaces and dashes dropped (a card is printed in groups).
fn typed_card(form: &[(String, String)]) -> String {
    field(form, "card")
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .take(65)
        .collect()
}

/// The typed card number as a card number, or as typed when it is none (no card has it).
fn card_of(typed: &str) -> Result<CardNumber, String> {
    CardNumber::parse(typed).map_err(|_| typed.to_owned())
}

/// A credential tried as the API tries it: refused at once while the address is braked, and
/// its refusal counted against the address.
async fn try_credential<T>(
    state: &PortalState,
    addr: ClientAddr,
    attempt: impl std::future::Future<Output = Result<T, CredentialError>>,
) -> Result<T, ApiError> {
    braked(state, addr)?;
    attempt
        .await
        .map_err(|e| credential_failure(state, addr, e))
}

fn secret_of(form: &[(String, String)], name: &str) -> Option<String> {
    field(form, name)
        .filter(|s| !s.is_empty() && s.len() <= MAX_SECRET_BYTES)
        .map(str::to_owned)
}

/// What a `done` in the query says, once something worked.
pub fn done(w: W, query: &[(String, String)]) -> Option<&'static str> {
    Some(match field(query, "done")? {
        "signed-out" => w.t("Wylogowano.", "You are signed out."),
        "ended" => w.t(
            "Sesja wygasła albo została zakończona. Zaloguj się ponownie.",
            "Your session expired or was ended. Please sign in again.",
        ),
        "password" => w.t("Hasło zostało ustawione.", "Your password is set."),
        "reset" => w.t(
            "Nowe hasło zostało ustawione i jesteś zalogowany.",
            "Your new password is set and you are signed in.",
        ),
        "profile" => w.t("Zapisano zmiany.", "Your changes are saved."),
        "phone" => w.t(
            "Numer telefonu został zmieniony.",
            "Your phone number is changed.",
        ),
        "given" => w.t("Zgoda została wyrażona.", "Consent given."),
        "withdrawn" => w.t("Zgoda została wycofana.", "Consent withdrawn."),
        "changed" => w.t(
            "Treść zgody zmieniła się, zanim ją wysłałeś. Przeczytaj ją poniżej i zdecyduj jeszcze raz.",
            "The consent's text changed before you sent it. Read it below and decide again.",
        ),
        "objected" => w.t(
            "Zapisano sprzeciw wobec marketingu.",
            "Your objection to marketing is recorded.",
        ),
        "objection-withdrawn" => w.t("Sprzeciw został wycofany.", "Your objection is withdrawn."),
        "session-ended" => w.t("Sesja została zakończona.", "The session is ended."),
        "stepped-up" => w.t(
            "Potwierdzono. Możesz kontynuować.",
            "Confirmed. You can go on.",
        ),
        _ => return None,
    })
}

fn sign_in_form(visitor: &Visitor, token: &str, error: Option<&str>, note: Option<&str>) -> Markup {
    let frame = visitor.frame();
    let w = visitor.w();
    layout(
        &frame,
        &title_for(w, w.t("Logowanie", "Sign in"), error.is_some()),
        html! {
            h1 { (w.t("Zaloguj się", "Sign in")) }
            @if let Some(note) = note { (message("done", note)) }
            @if let Some(error) = error { (message("error", error)) }
            form.stack method="post" action="/account/sign-in" novalidate {
                input type="hidden" name="form" value=(token);
                (Input::new("card", w.t("Numer karty", "Card number"), "text")
                    .autocomplete("username").numeric().required()
                    .hint(Some(w.t("Numer z karty lub z aplikacji, same cyfry.", "The number on the card or in the app, digits only.")))
                    .render())
                (Input::new("secret", w.t("PIN albo hasło", "PIN or password"), "password")
                    .autocomplete("current-password").required()
                    .hint(Some(w.t(
                        "Za pierwszym razem wpisz PIN karty; potem ustawisz własne hasło.",
                        "The first time, enter the card's PIN; you will then set a password of your own.",
                    )))
                    .render())
                div { button type="submit" { (w.t("Zaloguj się", "Sign in")) } }
            }
            p { a href="/account/reset" { (w.t("Nie pamiętasz hasła? Zaloguj się kodem SMS", "Forgot your password? Sign in with an SMS code")) } }
        },
    )
}

pub async fn sign_in_page(
    visitor: Visitor,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    if visitor.signed.is_some() {
        return redirect("/account", &[]);
    }
    let note = done(visitor.w(), &query);
    visitor.public_page(StatusCode::OK, |token| {
        sign_in_form(&visitor, token, None, note)
    })
}

pub async fn sign_in(
    State(state): State<PortalState>,
    visitor: Visitor,
    Extension(addr): Extension<ClientAddr>,
    FormBody(form): FormBody,
) -> Response {
    if let Some(page) = visitor.check_public(&form) {
        return page;
    }
    let refused = |error: ApiError| {
        let text = error.message(visitor.lang);
        let page = visitor.public_page(StatusCode::OK, |token| {
            sign_in_form(&visitor, token, Some(&text), None)
        });
        with_error(page, &error)
    };
    let card = card_of(&typed_card(&form));
    let secret = secret_of(&form, "secret");
    let result = try_credential(&state, addr, async {
        match secret {
            Some(secret) => state.portal.sign_in(card, secret).await,
            // An empty or oversized secret: the same work and the same refusal as a wrong one.
            None => Err(state.portal.refuse(String::new()).await),
        }
    })
    .await;
    match result {
        Ok(signed) => {
            replaced(&state, &visitor).await;
            let to = if signed.must_set_password {
                "/account/password"
            } else {
                "/account"
            };
            redirect(
                to,
                &[
                    COOKIES.make(SESSION, &signed.session, None),
                    COOKIES.remove(FORM),
                ],
            )
        }
        Err(error) => refused(error),
    }
}

pub async fn sign_out(
    State(state): State<PortalState>,
    holder: Holder,
    FormBody(form): FormBody,
) -> Response {
    if let Some(page) = holder.check(&form) {
        return page;
    }
    if let Err(e) = state.portal.sessions().end(&holder.session.key).await {
        let error = crate::http::store_failure(&e, ApiError::Unknown);
        return with_error(
            html(
                StatusCode::OK,
                page::refused(&holder.frame(), &error.message(holder.lang())),
            ),
            &error,
        );
    }
    tracing::info!(customer_id = %holder.session.customer, "portal session ended by sign-out");
    redirect(
        "/account/sign-in?done=signed-out",
        &[COOKIES.remove(SESSION)],
    )
}

/// The customer behind a session in force is gone (erased meanwhile): the session ends, the
/// cookie goes, and the sign-in page says why.
pub async fn gone(state: &PortalState, member: &Member) -> Response {
    if let Err(e) = state.portal.sessions().end(&member.session.key).await {
        tracing::warn!(error = %crate::error_chain(&e), "cannot end the session of a customer gone");
    }
    redirect("/account/sign-in?done=ended", &[COOKIES.remove(SESSION)])
}

/// Ends the browser's session cookie (the session itself has ended: a lock, an erasure).
pub fn forget_session(response: &mut Response) {
    pages::set_cookie(response, &COOKIES.remove(SESSION));
}

fn password_form(holder: &Holder, errors: (Option<&str>, Option<&str>)) -> Markup {
    let frame = holder.frame();
    let w = holder.w();
    let first = holder.session.level == Level::Pin;
    let title = if first {
        w.t("Ustaw hasło", "Set your password")
    } else {
        w.t("Zmień hasło", "Change your password")
    };
    layout(
        &frame,
        &title_for(w, title, errors.0.is_some() || errors.1.is_some()),
        html! {
            h1 { (title) }
            @if first {
                p { (w.t(
                    "Zalogowano PIN-em karty. Aby korzystać z konta, ustaw własne hasło: PIN pozostanie tylko do kasy.",
                    "You signed in with the card's PIN. To use your account, set a password of your own: the PIN stays for the till only.",
                )) }
            }
            (summary(w, &[("old", errors.0), ("new", errors.1)]))
            form.stack method="post" action="/account/password" novalidate {
                (page::csrf(&frame))
                @let old_label = if first { w.t("PIN karty", "The card's PIN") } else { w.t("Obecne hasło", "Current password") };
                (Input::new("old", old_label, "password").autocomplete("current-password").required().error(errors.0).render())
                (Input::new("new", w.t("Nowe hasło", "New password"), "password")
                    .autocomplete("new-password").required().error(errors.1)
                    .hint(Some(w.t(
                        "Od 8 do 128 znaków. Długie zdanie jest łatwe do zapamiętania i trudne do odgadnięcia.",
                        "8 to 128 characters. A long sentence is easy to remember and hard to guess.",
                    )))
                    .render())
                div { button type="submit" { (w.t("Zapisz hasło", "Save the password")) } }
            }
        },
    )
}

pub async fn password_page(holder: Holder) -> Response {
    html(StatusCode::OK, password_form(&holder, (None, None)))
}

pub async fn set_password(
    State(state): State<PortalState>,
    holder: Holder,
    Extension(addr): Extension<ClientAddr>,
    FormBody(form): FormBody,
) -> Response {
    if let Some(page) = holder.check(&form) {
        return page;
    }
    let result = match (secret_of(&form, "old"), field(&form, "new")) {
        (Some(old), Some(new)) => {
            let attempt = state.portal.set_password(&holder.session, old, new);
            try_credential(&state, addr, attempt).await
        }
        (None, _) => Err(ApiError::NoAuthothorization),
        (Some(_), None) => Err(ApiError::WeakPassword(
            crate::domain::PasswordError::TooShort,
        )),
    };
    match result {
        Ok(()) => redirect("/account?done=password", &[]),
        Err(error) => {
            let secret = match holder.session.level {
                Level::Pin => Secret::Pin,
                Level::Password => Secret::Password,
            };
            let text = match error {
                ApiError::WeakPassword(_) => error.message(holder.lang()),
                _ => refused_secret(holder.w(), &error, secret),
            };
            let errors = match error {
                ApiError::WeakPassword(_) => (None, Some(text.as_str())),
                _ => (Some(text.as_str()), None),
            };
            with_error(html(StatusCode::OK, password_form(&holder, errors)), &error)
        }
    }
}

fn reset_form(visitor: &Visitor, token: &str, error: Option<&str>) -> Markup {
    let frame = visitor.frame();
    let w = visitor.w();
    layout(
        &frame,
        &title_for(
            w,
            w.t("Logowanie kodem SMS", "Sign in with an SMS code"),
            error.is_some(),
        ),
        html! {
            h1 { (w.t("Zaloguj się kodem SMS", "Sign in with an SMS code")) }
            p { (w.t(
                "Wyślemy kod na numer telefonu zapisany przy karcie. Z kodem ustawisz nowe hasło i od razu się zalogujesz.",
                "We send a code to the phone number on record for the card. With it you set a new password and are signed in at once.",
            )) }
            @if let Some(error) = error { (message("error", error)) }
            form.stack method="post" action="/account/reset" novalidate {
                input type="hidden" name="form" value=(token);
                (Input::new("card", w.t("Numer karty", "Card number"), "text")
                    .autocomplete("username").numeric().required().render())
                div { button type="submit" { (w.t("Wyślij kod", "Send the code")) } }
            }
            p { a href="/account/sign-in" { (w.t("Wróć do logowania", "Back to sign-in")) } }
        },
    )
}

fn reset_code_form(
    visitor: &Visitor,
    token: &str,
    card: &str,
    errors: (Option<&str>, Option<&str>),
) -> Markup {
    let frame = visitor.frame();
    let w = visitor.w();
    layout(
        &frame,
        &title_for(
            w,
            w.t("Wpisz kod z SMS-a", "Enter the code from the text message"),
            errors.0.is_some() || errors.1.is_some(),
        ),
        html! {
            h1 { (w.t("Wpisz kod z SMS-a", "Enter the code from the text message")) }
            (message("note", w.t(
                "Jeśli karta ma zapisany numer telefonu, wysłaliśmy na niego kod. Jest ważny 10 minut.",
                "If the card has a phone number on record, we sent a code to it. It is valid for 10 minutes.",
            )))
            (summary(w, &[("code", errors.0), ("new", errors.1)]))
            form.stack method="post" action="/account/reset/code" novalidate {
                input type="hidden" name="form" value=(token);
                (Input::new("card", w.t("Numer karty", "Card number"), "text")
                    .value(card).autocomplete("username").numeric().required().render())
                (Input::new("code", w.t("Kod z SMS-a", "Code from the text message"), "text")
                    .autocomplete("one-time-code").numeric().required().error(errors.0)
                    .hint(Some(w.t("Sześć cyfr.", "Six digits."))).render())
                (Input::new("new", w.t("Nowe hasło", "New password"), "password")
                    .autocomplete("new-password").required().error(errors.1)
                    .hint(Some(w.t("Od 8 do 128 znaków.", "8 to 128 characters."))).render())
                div { button type="submit" { (w.t("Ustaw hasło i zaloguj się", "Set the password and sign in")) } }
            }
            form method="post" action="/account/reset" {
                input type="hidden" name="form" value=(token);
                input type="hidden" name="card" value=(card);
                button.secondary type="submit" { (w.t("Wyślij nowy kod", "Send a new code")) }
            }
        },
    )
}

pub async fn reset_page(visitor: Visitor) -> Response {
    visitor.public_page(StatusCode::OK, |token| reset_form(&visitor, token, None))
}

pub async fn request_reset(
    State(state): State<PortalState>,
    visitor: Visitor,
    Extension(addr): Extension<ClientAddr>,
    FormBody(form): FormBody,
) -> Response {
    if let Some(page) = visitor.check_public(&form) {
        return page;
    }
    let shown = typed_card(&form);
    let attempt = state.portal.request_reset(card_of(&shown), visitor.lang);
    let result = try_credential(&state, addr, attempt).await;
    match result {
        Ok(()) => visitor.public_page(StatusCode::OK, |token| {
            reset_code_form(&visitor, token, &shown, (None, None))
        }),
        Err(error) => {
            let text = error.message(visitor.lang);
            let page = visitor.public_page(StatusCode::OK, |token| {
                reset_form(&visitor, token, Some(&text))
            });
            with_error(page, &error)
        }
    }
}

pub async fn reset(
    State(state): State<PortalState>,
    visitor: Visitor,
    Extension(addr): Extension<ClientAddr>,
    FormBody(form): FormBody,
) -> Response {
    if let Some(page) = visitor.check_public(&form) {
        return page;
    }
    let shown = typed_card(&form);
    let card = card_of(&shown);
    let code = field(&form, "code").unwrap_or_default().trim().to_owned();
    let new = field(&form, "new").unwrap_or_default().to_owned();
    let attempt = state.portal.reset_password(card.clone(), &code, &new);
    let result = try_credential(&state, addr, attempt).await;
    if let Err(error) = result {
        let text = match error {
            ApiError::WeakPassword(_) => error.message(visitor.lang),
            _ => refused_secret(visitor.w(), &error, Secret::Code),
        };
        let errors = match error {
            ApiError::WeakPassword(_) => (None, Some(text.as_str())),
            _ => (Some(text.as_str()), None),
        };
        let page = visitor.public_page(StatusCode::OK, |token| {
            reset_code_form(&visitor, token, &shown, errors)
        });
        return with_error(page, &error);
    }
    // The new password signs in at once: that is the point of the code.
    match state.portal.sign_in(card, new).await {
        Ok(signed) => {
            replaced(&state, &visitor).await;
            redirect(
                "/account?done=reset",
                &[
                    COOKIES.make(SESSION, &signed.session, None),
                    COOKIES.remove(FORM),
                ],
            )
        }
        Err(_) => redirect("/account/sign-in?done=password", &[]),
    }
}

/// The page a sensitive change leads to when it asks for an SMS code instead of the password.
/// `error` with the field it is about (`code`, `password`), or none when it is the page's.
fn step_up_form(
    member: &Member,
    next: &str,
    sent: bool,
    (error, at): (Option<&str>, Option<&str>),
) -> Markup {
    let frame = member.frame();
    let w = member.w();
    let on = |field: &str| error.filter(|_| at == Some(field));
    layout(
        &frame,
        &title_for(
            w,
            w.t("Potwierdź, że to Ty", "Confirm it is you"),
            error.is_some(),
        ),
        html! {
            h1 { (w.t("Potwierdź, że to Ty", "Confirm it is you")) }
            p { (w.t(
                "Pobranie danych, zmiana numeru telefonu i usunięcie konta wymagają potwierdzenia. Potwierdzenie działa 10 minut.",
                "Downloading your data, changing your phone number and deleting your account need a confirmation. It lasts 10 minutes.",
            )) }
            @if sent { (message("done", w.t("Wysłaliśmy kod na Twój numer telefonu.", "We sent a code to your phone number."))) }
            @match at {
                Some(field) => (summary(w, &[(field, error)])),
                None => @if let Some(error) = error { (message("error", error)) },
            }
            @if sent {
                form.stack method="post" action="/account/step-up" novalidate {
                    (page::csrf(&frame))
                    input type="hidden" name="next" value=(next);
                    (Input::new("code", w.t("Kod z SMS-a", "Code from the text message"), "text")
                        .autocomplete("one-time-code").numeric().required().error(on("code"))
                        .hint(Some(w.t("Sześć cyfr, ważny 10 minut.", "Six digits, valid for 10 minutes."))).render())
                    div { button type="submit" { (w.t("Potwierdź", "Confirm")) } }
                }
            }
            form method="post" action="/account/step-up/code" {
                (page::csrf(&frame))
                input type="hidden" name="next" value=(next);
                button.secondary[sent] type="submit" {
                    @if sent { (w.t("Wyślij nowy kod", "Send a new code")) } @else { (w.t("Wyślij kod SMS", "Send an SMS code")) }
                }
            }
            h2 { (w.t("Albo hasłem", "Or with your password")) }
            form.stack method="post" action="/account/step-up" novalidate {
                (page::csrf(&frame))
                input type="hidden" name="next" value=(next);
                (Input::new("password", w.t("Twoje hasło", "Your password"), "password")
                    .autocomplete("current-password").required().error(on("password")).render())
                div { button type="submit" { (w.t("Potwierdź hasłem", "Confirm with the password")) } }
            }
        },
    )
}

/// Where a step-up returns to: a page of the account only.
fn next_of(pairs: &[(String, String)]) -> String {
    pages::within(field(pairs, "next"), "/account").to_owned()
}

pub async fn step_up_page(member: Member, Query(query): Query<Vec<(String, String)>>) -> Response {
    html(
        StatusCode::OK,
        step_up_form(&member, &next_of(&query), false, (None, None)),
    )
}

pub async fn send_step_up_code(
    State(state): State<PortalState>,
    member: Member,
    FormBody(form): FormBody,
) -> Response {
    if let Some(page) = member.check(&form) {
        return page;
    }
    let next = next_of(&form);
    match state
        .portal
        .send_step_up_code(&member.session, member.lang())
        .await
    {
        Ok(()) => html(
            StatusCode::OK,
            step_up_form(&member, &next, true, (None, None)),
        ),
        Err(e) => {
            let error = code_failure(e);
            let text = error.message(member.lang());
            with_error(
                html(
                    StatusCode::OK,
                    step_up_form(&member, &next, false, (Some(&text), None)),
                ),
                &error,
            )
        }
    }
}

pub async fn step_up(
    State(state): State<PortalState>,
    member: Member,
    Extension(addr): Extension<ClientAddr>,
    FormBody(form): FormBody,
) -> Response {
    if let Some(page) = member.check(&form) {
        return page;
    }
    let next = next_of(&form);
    let code = field(&form, "code")
        .map(str::trim)
        .filter(|c| !c.is_empty());
    let password = secret_of(&form, "password");
    let attempt = async {
        match (code, password) {
            (Some(code), _) => state.portal.step_up_with_code(&member.session, code).await,
            (None, Some(password)) => state.portal.step_up(&member.session, password).await,
            (None, None) => Err(state.portal.refuse(String::new()).await),
        }
    };
    let result = try_credential(&state, addr, attempt).await;
    match result {
        Ok(()) => {
            let sep = if next.contains('?') { '&' } else { '?' };
            redirect(&format!("{next}{sep}done=stepped-up"), &[])
        }
        Err(error) => {
            let secret = if code.is_some() {
                Secret::Code
            } else {
                Secret::Password
            };
            let text = refused_secret(member.w(), &error, secret);
            with_error(
                html(
                    StatusCode::OK,
                    step_up_form(
                        &member,
                        &next,
                        code.is_some(),
                        (
                            Some(&text),
                            Some(if code.is_some() { "code" } else { "password" }),
                        ),
                    ),
                ),
                &error,
            )
        }
    }
}

/// Raises the session with the form's password, unless a step-up is already in force: what
/// the download, the phone change and the erasure ask first.
pub async fn stepped_up(
    state: &PortalState,
    member: &Member,
    addr: ClientAddr,
    form: &[(String, String)],
) -> Result<(), ApiError> {
    if member.session.stepped_up() {
        return Ok(());
    }
    braked(state, addr)?;
    let Some(password) = secret_of(form, "password") else {
        return Err(ApiError::StepUpRequired);
    };
    try_credential(state, addr, state.portal.step_up(&member.session, password)).await
}

pub async fn set_language(
    Path(lang): Path<String>,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    let lang = pages::language_code(&lang);
    let back = pages::within(field(&query, "back"), "/account");
    redirect(
        back,
        &[COOKIES.make(LANG, lang, Some(pages::LANGUAGE_KEPT))],
    )
}
