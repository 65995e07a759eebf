//! The service desk console: server-rendered pages for people, on the desk's listener, over
//! the same desk operations as the desk API (`crate::service::desk`).
//!
//! - **Sign-in** takes a desk token (the same tokens file, roles and brake on failures as the
//!   API) and opens a console session of its own: a random id in a cookie (`HttpOnly`,
//!   `SameSite=Strict`, `Secure` when served over TLS, path `/console`) that the database maps
//!   to the user, shared by every instance (`crate::service::sessions`). The cookie is not the
//!   token: a leaked cookie is no API key, and it dies with the session — on sign-out, when the
//!   token is revoked, after the idle timeout and at the absolute one.
//! - **Forms** carry a CSRF token derived from the session's id (SHA-256 under a fixed label):
//!   a page of another site can neither read nor compute it. Every `POST` must carry it, and an
//!   `Origin`, when sent, must be this console's.
//! - **No script**: every page works with plain links and forms, so the Content-Security-Policy
//!   allows no script at all, and styles only from the console's own stylesheet, which is
//!   embedded in the binary and served under a name that changes with its content.
//! - **Each change behind a confirmation**: an action's button leads to a page that says what
//!   will happen and asks for its inputs; only that page's form changes anything.

mod page;
mod text;

use std::net::IpAddr;
use std::sync::{Arc, LazyLock};

use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::desk::auth::{Auth, Principal};
use super::error::ApiError;
use super::extract::field;
use super::{Client, wire};
use crate::domain::{CardNumber, Country, CustomerId, Language, PhoneNumber};
use crate::service::desk::Desk;
use crate::service::sessions::{Found, Sessions};
use crate::store::HistoryOf;
use crate::tokens::{Role, hash_hex, same_secret};
use text::T;

/// The session cookie: the console session's id (never the desk token).
const SESSION: &str = "cps_desk";
/// The sign-in form's CSRF token, given with the form.
const LOGIN: &str = "cps_login";
/// The language chosen on the page (`pl` or `en`), for a year.
const LANG: &str = "cps_lang";
/// History entries on a card's page.
const HISTORY_PAGE: i64 = 20;

#[derive(Clone)]
pub struct ConsoleState {
    pub desk: Desk,
    pub auth: Arc<Auth>,
    pub sessions: Sessions,
    pub country: Country,
    pub default_language: Language,
    /// Served over TLS: the cookie is `Secure`.
    pub secure: bool,
}

/// The console's routes (under `/console`), for the desk listener.
pub fn router(state: ConsoleState) -> Router<()> {
    Router::new()
        .route("/console", get(home))
        .route("/console/sign-in", axum::routing::post(sign_in))
        .route("/console/sign-out", axum::routing::post(sign_out))
        .route("/console/search", get(search))
        .route("/console/language/{lang}", get(set_language))
        .route("/console/assets/{name}", get(asset))
        .route("/console/cards/{card}", get(card_page))
        .route(
            "/console/cards/{card}/{action}",
            get(confirm_card).post(act_on_card),
        )
        .route("/console/customers/{id}", get(customer_page))
        .route(
            "/console/customers/{id}/{action}",
            get(confirm_customer).post(act_on_customer),
        )
        .with_state(state)
}

/// The stylesheet, and its name: its content's hash, so a new release is never served a stale
/// copy while an unchanged one is cached for good.
static STYLESHEET: &str = include_str!("../../../assets/console.css");
static STYLESHEET_NAME: LazyLock<String> =
    LazyLock::new(|| format!("console-{}.css", &hash_hex(STYLESHEET)[..12]));

/// What every page answers with besides its body.
fn html(status: StatusCode, body: maud::Markup) -> Response {
    let mut response = (status, body.into_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // Not `no-referrer`: under it a browser sends `Origin: null` with the console's own
    // forms, and the origin check would refuse them.
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    response
}

/// `303 See Other` to a console page, with cookies to set.
fn redirect(to: &str, cookies: &[String]) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(location) = HeaderValue::try_from(to) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    for cookie in cookies {
        set_cookie(&mut response, cookie);
    }
    response
}

fn set_cookie(response: &mut Response, cookie: &str) {
    if let Ok(value) = HeaderValue::try_from(cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

impl ConsoleState {
    /// Every console cookie alike: for the console's paths only, out of scripts' reach, never
    /// sent by another site, `Secure` over TLS; `max_age` in seconds (`Some(0)` removes it,
    /// `None` keeps it for the browser's session).
    fn cookie(&self, name: &str, value: &str, max_age: Option<u32>) -> String {
        let max_age = max_age
            .map(|s| format!("; Max-Age={s}"))
            .unwrap_or_default();
        let secure = if self.secure { "; Secure" } else { "" };
        format!("{name}={value}; Path=/console; HttpOnly; SameSite=Strict{max_age}{secure}")
    }
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The page's language: the one chosen on the page, else the browser's, else the default.
fn language(state: &ConsoleState, headers: &HeaderMap) -> Language {
    match cookie(headers, LANG) {
        Some("pl") => return Language::Polish,
        Some("en") => return Language::English,
        _ => {}
    }
    headers
        .get_all(header::ACCEPT_LANGUAGE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(Language::from_accept_language)
        .unwrap_or(state.default_language)
}

/// A signed-in desk user, as a page knows them.
pub struct Session {
    pub principal: Principal,
    /// The form field every `POST` must carry.
    pub csrf: String,
    pub lang: Language,
}

impl Session {
    pub fn can_act(&self) -> bool {
        self.principal.role == Role::Agent
    }
}

/// The CSRF token of a session: derived from its id, so nothing more is stored, and every
/// instance behind a balancer agrees.
fn csrf_for(session_id: &str) -> String {
    hash_hex(&format!("cps-console-csrf\0{session_id}"))
}

fn client_ip(headers_ext: Option<&Client>) -> IpAddr {
    headers_ext.map_or(IpAddr::from([0, 0, 0, 0]), |c| c.addr.ip())
}

/// The session a request's cookie names; otherwise the sign-in page, saying why when the
/// session ended (the cookie is then removed).
async fn session(state: &ConsoleState, headers: &HeaderMap) -> Result<Session, Box<Response>> {
    let lang = language(state, headers);
    let Some(id) = cookie(headers, SESSION).filter(|t| !t.is_empty()) else {
        return Err(Box::new(sign_in_page(
            state,
            StatusCode::UNAUTHORIZED,
            lang,
            None,
        )));
    };
    let ended = |text: &str| {
        let mut page = sign_in_page(state, StatusCode::UNAUTHORIZED, lang, Some(text));
        set_cookie(&mut page, &state.cookie(SESSION, "", Some(0)));
        Box::new(page)
    };
    let found = match state.sessions.find(id).await {
        Ok(found) => found,
        Err(e) => {
            let error = super::store_failure(&e, ApiError::Unknown);
            return Err(Box::new(sign_in_page(
                state,
                error.status(),
                lang,
                Some(&error.message(lang)),
            )));
        }
    };
    match found {
        Found::Live { token_hash } => match state.auth.principal_for_hash(&token_hash) {
            Some(principal) => Ok(Session {
                principal,
                csrf: csrf_for(id),
                lang,
            }),
            // The token it was opened with is revoked: so is the session.
            None => {
                if let Err(e) = state.sessions.close(id).await {
                    tracing::warn!(error = %crate::error_chain(&e), "cannot end a revoked token's console session");
                }
                Err(ended(T::SessionRevoked.get(lang)))
            }
        },
        Found::Ended => Err(ended(T::SessionEnded.get(lang))),
        Found::Unknown => Err(ended(T::SessionUnknown.get(lang))),
    }
}

/// A signed-in session, or the page that says why not (the sign-in page, or a braked address's
/// refusal).
impl axum::extract::FromRequestParts<ConsoleState> for Session {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &ConsoleState,
    ) -> Result<Self, Response> {
        session(state, &parts.headers).await.map_err(|page| *page)
    }
}

/// A change's checks: the session may act, the form is this console's, and came from here.
fn may_change(
    session: &Session,
    headers: &HeaderMap,
    form: &[(String, String)],
) -> Result<(), Box<Response>> {
    let lang = session.lang;
    let same_origin = headers.get(header::ORIGIN).is_none_or(|origin| {
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
        let origin = crate::http::origin::Origin::from_header(origin);
        // The console's own origin, as the `Host` the browser sent names it (either scheme:
        // a TLS-terminating proxy may stand in front).
        host.zip(origin).is_some_and(|(host, origin)| {
            ["http", "https"].iter().any(|scheme| {
                crate::http::origin::Origin::configured(&format!("{scheme}://{host}"))
                    .is_ok_and(|own| own == origin)
            })
        })
    });
    let csrf_ok = same_secret(
        field(form, "csrf").unwrap_or_default().as_bytes(),
        session.csrf.as_bytes(),
    );
    if !same_origin || !csrf_ok {
        tracing::warn!(user = %session.principal.user, "console change refused: no valid CSRF token or a foreign origin");
        return Err(Box::new(html(
            StatusCode::FORBIDDEN,
            page::refused(session, T::Forbidden.get(lang)),
        )));
    }
    if !session.can_act() {
        let message = ApiError::RoleForbidden.message(lang);
        return Err(Box::new(html(
            StatusCode::FORBIDDEN,
            page::refused(session, &message),
        )));
    }
    Ok(())
}

/// The sign-in page, with a new sign-in CSRF token in its form and in a cookie.
fn sign_in_page(
    state: &ConsoleState,
    status: StatusCode,
    lang: Language,
    error: Option<&str>,
) -> Response {
    let login = uuid::Uuid::new_v4().simple().to_string();
    let limits = state.sessions.limits();
    let mut response = html(status, page::sign_in(lang, error, &login, limits));
    set_cookie(&mut response, &state.cookie(LOGIN, &login, None));
    response
}

/// A form field that is given and not blank.
fn given<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    field(form, name).filter(|v| !v.trim().is_empty())
}

async fn home(State(state): State<ConsoleState>, headers: HeaderMap) -> Response {
    match session(&state, &headers).await {
        Ok(session) => html(StatusCode::OK, page::search(&session, "", None)),
        // Not signed in is not an error on the front page.
        Err(_) if cookie(&headers, SESSION).is_none() => {
            sign_in_page(&state, StatusCode::OK, language(&state, &headers), None)
        }
        Err(page) => *page,
    }
}

async fn sign_in(
    State(state): State<ConsoleState>,
    headers: HeaderMap,
    client: Option<axum::Extension<Client>>,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let lang = language(&state, &headers);
    // The sign-in form's own CSRF token: the one this browser was given with the form. Without
    // it, a page of another site could sign the browser in as the attacker.
    let given_login = field(&form, "login").unwrap_or_default();
    let expected = cookie(&headers, LOGIN).unwrap_or_default();
    if expected.is_empty() || !same_secret(given_login.as_bytes(), expected.as_bytes()) {
        let message = T::Forbidden.get(lang);
        return sign_in_page(&state, StatusCode::FORBIDDEN, lang, Some(message));
    }
    let token = field(&form, "token").unwrap_or_default().trim();
    match state
        .auth
        .sign_in(client_ip(client.as_deref()), Some(token))
    {
        Ok((principal, token_hash)) => {
            match state.sessions.open(&principal.user, &token_hash).await {
                Ok(id) => {
                    tracing::info!(user = %principal.user, "console session opened");
                    redirect("/console", &[state.cookie(SESSION, &id, None)])
                }
                Err(e) => {
                    let error = super::store_failure(&e, ApiError::Unknown);
                    sign_in_page(&state, error.status(), lang, Some(&error.message(lang)))
                }
            }
        }
        Err(error) => sign_in_page(&state, error.status(), lang, Some(&error.message(lang))),
    }
}

async fn sign_out(
    State(state): State<ConsoleState>,
    session: Session,
    headers: HeaderMap,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    if !same_secret(
        field(&form, "csrf").unwrap_or_default().as_bytes(),
        session.csrf.as_bytes(),
    ) {
        return html(
            StatusCode::FORBIDDEN,
            page::refused(&session, T::Forbidden.get(session.lang)),
        );
    }
    // Ended on the server: the cookie, if kept or copied, opens nothing any more.
    if let Some(id) = cookie(&headers, SESSION)
        && let Err(e) = state.sessions.close(id).await
    {
        return failure(&session, &e);
    }
    tracing::info!(user = %session.principal.user, "console session ended by sign-out");
    redirect("/console", &[state.cookie(SESSION, "", Some(0))])
}

async fn set_language(
    State(state): State<ConsoleState>,
    Path(lang): Path<String>,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    let lang = if lang == "en" { "en" } else { "pl" };
    // Back to a console page only: never an open redirect.
    let back = field(&query, "back")
        .filter(|b| b.starts_with("/console") && !b.starts_with("//") && !b.contains('\\'))
        .unwrap_or("/console");
    redirect(back, &[state.cookie(LANG, lang, Some(31_536_000))])
}

async fn asset(Path(name): Path<String>) -> Response {
    if name != *STYLESHEET_NAME {
        return (StatusCode::NOT_FOUND, "").into_response();
    }
    let mut response = STYLESHEET.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/css; charset=utf-8"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// The stylesheet's path, for the pages.
pub fn stylesheet() -> String {
    format!("/console/assets/{}", *STYLESHEET_NAME)
}

async fn search(
    State(state): State<ConsoleState>,
    session: Session,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    let lang = session.lang;
    let q = field(&query, "q").unwrap_or_default().trim().to_owned();
    if q.is_empty() {
        return html(StatusCode::OK, page::search(&session, "", None));
    }
    let found = if q.bytes().all(|b| b.is_ascii_digit()) && q.len() <= 32 {
        // Digits: a card number, or a phone number written without separators.
        let mut cards = Vec::new();
        if let Ok(card) = CardNumber::parse(&q) {
            match state.desk.card(&card).await {
                Ok(Some(card)) => cards.push(card),
                Ok(None) => {}
                Err(e) => return failure(&session, &e),
            }
        }
        if cards.is_empty()
            && let Ok(phone) = PhoneNumber::parse(&q, state.country)
        {
            match state.desk.cards_by_phone(&phone).await {
                Ok(more) => cards.extend(more),
                Err(e) => return failure(&session, &e),
            }
        }
        cards
    } else {
        match PhoneNumber::parse(&q, state.country) {
            Ok(phone) => match state.desk.cards_by_phone(&phone).await {
                Ok(cards) => cards,
                Err(e) => return failure(&session, &e),
            },
            Err(_) => {
                let message =
                    ApiError::invalid(T::SearchLabel.get(lang), super::error::Reason::PhoneNumber)
                        .message(lang);
                return html(
                    StatusCode::BAD_REQUEST,
                    page::search(&session, &q, Some(Err(message))),
                );
            }
        }
    };
    html(StatusCode::OK, page::search(&session, &q, Some(Ok(found))))
}

/// A page for an infrastructure failure: the API's message for it, in the page's language.
fn failure(session: &Session, e: &crate::service::Failure) -> Response {
    let error = super::store_failure(e, ApiError::Unknown);
    html(
        error.status(),
        page::refused(session, &error.message(session.lang)),
    )
}

fn card_path(raw: &str) -> Option<CardNumber> {
    CardNumber::parse(raw).ok()
}

async fn card_page(
    State(state): State<ConsoleState>,
    session: Session,
    Path(card): Path<String>,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    let lang = session.lang;
    let Some(number) = card_path(&card) else {
        let message = ApiError::CardNotFoundOnRead.message(lang);
        return html(StatusCode::NOT_FOUND, page::refused(&session, &message));
    };
    let cursor = field(&query, "cursor").and_then(|c| c.parse::<i64>().ok());
    let card = match state.desk.card(&number).await {
        Ok(Some(card)) => card,
        Ok(None) => {
            let message = ApiError::CardNotFoundOnRead.message(lang);
            return html(StatusCode::NOT_FOUND, page::refused(&session, &message));
        }
        Err(e) => return failure(&session, &e),
    };
    let history = match state
        .desk
        .history(&HistoryOf::Card(number), cursor, HISTORY_PAGE)
        .await
    {
        Ok(entries) => entries.unwrap_or_default(),
        Err(e) => return failure(&session, &e),
    };
    let done = field(&query, "done").is_some();
    html(
        StatusCode::OK,
        page::card(&session, &card, &history, HISTORY_PAGE, done),
    )
}

/// The card actions, by their path segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardAction {
    Lock,
    Unlock,
    Replace,
    Retry,
}

impl CardAction {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "lock" => Some(Self::Lock),
            "unlock" => Some(Self::Unlock),
            "replace" => Some(Self::Replace),
            "retry-notice" => Some(Self::Retry),
            _ => None,
        }
    }

    pub fn path(self) -> &'static str {
        match self {
            Self::Lock => "lock",
            Self::Unlock => "unlock",
            Self::Replace => "replace",
            Self::Retry => "retry-notice",
        }
    }

    pub fn title(self) -> T {
        match self {
            Self::Lock => T::Lock,
            Self::Unlock => T::Unlock,
            Self::Replace => T::Replace,
            Self::Retry => T::RetryNotice,
        }
    }
}

async fn confirm_card(session: Session, Path((card, action)): Path<(String, String)>) -> Response {
    let (Some(card), Some(action)) = (card_path(&card), CardAction::parse(&action)) else {
        let message = ApiError::NotFound.message(session.lang);
        return html(StatusCode::NOT_FOUND, page::refused(&session, &message));
    };
    if !session.can_act() {
        let message = ApiError::RoleForbidden.message(session.lang);
        return html(StatusCode::FORBIDDEN, page::refused(&session, &message));
    }
    html(
        StatusCode::OK,
        page::confirm_card(&session, &card, action, &[], None),
    )
}

async fn act_on_card(
    State(state): State<ConsoleState>,
    session: Session,
    headers: HeaderMap,
    Path((card, action)): Path<(String, String)>,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    if let Err(page) = may_change(&session, &headers, &form) {
        return *page;
    }
    let (Some(card), Some(action)) = (card_path(&card), CardAction::parse(&action)) else {
        let message = ApiError::NotFound.message(session.lang);
        return html(StatusCode::NOT_FOUND, page::refused(&session, &message));
    };
    let user = session.principal.user.clone();
    let result = match action {
        CardAction::Lock => {
            let mut body = serde_json::json!({ "Reason": field(&form, "reason") });
            if let Some(note) = given(&form, "note") {
                body["Note"] = note.into();
            }
            match wire::desk_lock_body(&body) {
                Ok((reason, note)) => state
                    .desk
                    .lock(card.clone(), reason, note, user)
                    .await
                    .map(|_| card.clone())
                    .map_err(super::desk::desk_failure),
                Err(e) => Err(e),
            }
        }
        CardAction::Unlock => state
            .desk
            .unlock(card.clone(), user)
            .await
            .map(|_| card.clone())
            .map_err(super::desk::desk_failure),
        CardAction::Replace => {
            let body = serde_json::json!({
                "NewCardNumber": given(&form, "new_card"),
                "CardPinHMac": given(&form, "pin"),
                "Reason": field(&form, "reason"),
            });
            match wire::replacement_body(&body, &card) {
                Ok(replacement) => {
                    let new_card = replacement.new_card.clone();
                    state
                        .desk
                        .replace(card.clone(), replacement, user)
                        .await
                        .map(|_| new_card)
                        .map_err(super::desk::desk_failure)
                }
                Err(e) => Err(e),
            }
        }
        CardAction::Retry => state
            .desk
            .retry_notice(card.clone(), user)
            .await
            .map(|_| card.clone())
            .map_err(super::desk::desk_failure),
    };
    match result {
        // After a replacement, the new card's page.
        Ok(shown) => redirect(&format!("/console/cards/{shown}?done=1"), &[]),
        Err(error) => {
            let message = error.message(session.lang);
            html(
                error.status(),
                page::confirm_card(&session, &card, action, &form, Some(&message)),
            )
        }
    }
}

async fn customer_page(
    State(state): State<ConsoleState>,
    session: Session,
    Path(id): Path<String>,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    let not_found = |session: &Session| {
        let message = ApiError::CustomerNotFound.message(session.lang);
        html(StatusCode::NOT_FOUND, page::refused(session, &message))
    };
    let Ok(id) = CustomerId::parse(&id) else {
        return not_found(&session);
    };
    match state.desk.customer(&id).await {
        Ok(Some(customer)) => {
            let done = field(&query, "done").is_some();
            html(StatusCode::OK, page::customer(&session, &customer, done))
        }
        Ok(None) => not_found(&session),
        Err(e) => failure(&session, &e),
    }
}

/// The customer actions, by their path segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CustomerAction {
    Phone,
    Erase,
}

impl CustomerAction {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "phone" => Some(Self::Phone),
            "erase" => Some(Self::Erase),
            _ => None,
        }
    }

    pub fn path(self) -> &'static str {
        match self {
            Self::Phone => "phone",
            Self::Erase => "erase",
        }
    }

    pub fn title(self) -> T {
        match self {
            Self::Phone => T::ChangePhone,
            Self::Erase => T::Erase,
        }
    }
}

async fn confirm_customer(
    State(state): State<ConsoleState>,
    session: Session,
    Path((id, action)): Path<(String, String)>,
) -> Response {
    let (Ok(id), Some(action)) = (CustomerId::parse(&id), CustomerAction::parse(&action)) else {
        let message = ApiError::NotFound.message(session.lang);
        return html(StatusCode::NOT_FOUND, page::refused(&session, &message));
    };
    if !session.can_act() {
        let message = ApiError::RoleForbidden.message(session.lang);
        return html(StatusCode::FORBIDDEN, page::refused(&session, &message));
    }
    // The version the agent sees is the one the change is made against.
    let customer = match state.desk.customer(&id).await {
        Ok(Some(customer)) => customer,
        Ok(None) => {
            let message = ApiError::CustomerNotFound.message(session.lang);
            return html(StatusCode::NOT_FOUND, page::refused(&session, &message));
        }
        Err(e) => return failure(&session, &e),
    };
    html(
        StatusCode::OK,
        page::confirm_customer(&session, &customer.customer, action, None),
    )
}

async fn act_on_customer(
    State(state): State<ConsoleState>,
    session: Session,
    headers: HeaderMap,
    Path((id, action)): Path<(String, String)>,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    if let Err(page) = may_change(&session, &headers, &form) {
        return *page;
    }
    let (Ok(id), Some(action)) = (CustomerId::parse(&id), CustomerAction::parse(&action)) else {
        let message = ApiError::NotFound.message(session.lang);
        return html(StatusCode::NOT_FOUND, page::refused(&session, &message));
    };
    let user = session.principal.user.clone();
    let result = match action {
        CustomerAction::Phone => {
            let version = field(&form, "version").and_then(|v| v.parse::<i64>().ok());
            let body = serde_json::json!({ "PhoneNumber": given(&form, "phone") });
            match (version, wire::phone_body(&body, state.country)) {
                (None, _) => Err(ApiError::PreconditionRequired),
                (_, Err(e)) => Err(e),
                (Some(version), Ok(phone)) => state
                    .desk
                    .change_phone(id, phone, version.into(), user)
                    .await
                    .map_err(super::desk::desk_failure),
            }
        }
        CustomerAction::Erase => state
            .desk
            .erase(id, user)
            .await
            .map_err(super::desk::desk_failure),
    };
    match result {
        Ok(_) => redirect(&format!("/console/customers/{id}?done=1"), &[]),
        Err(error) => {
            let message = error.message(session.lang);
            // Shown again as it stands now (a 412 means it changed).
            let customer = match state.desk.customer(&id).await {
                Ok(Some(customer)) => customer,
                Ok(None) => {
                    let message = ApiError::CustomerNotFound.message(session.lang);
                    return html(StatusCode::NOT_FOUND, page::refused(&session, &message));
                }
                Err(e) => return failure(&session, &e),
            };
            html(
                error.status(),
                page::confirm_customer(&session, &customer.customer, action, Some(&message)),
            )
        }
    }
}
