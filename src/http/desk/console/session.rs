//! Who is signed in: the sign-in and sign-out, the session cookie, the page's language, and
//! the checks every change passes (its session's role, its form's CSRF token, its origin).

use std::net::IpAddr;

use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use crate::domain::Language;
use crate::http::Client;
use crate::http::desk::auth::Principal;
use crate::http::desk::refusal::read_failure;
use crate::http::error::ApiError;
use crate::http::extract::field;
use crate::http::pages::{self, Cookies, cookie, html, redirect, set_cookie};
use crate::service::sessions::Found;
use crate::tokens::Role;

/// A console session's level: opened with a desk token.
const DESK_LEVEL: &str = "token";

use super::{ConsoleState, failure, refused};
use super::{page, text};
use text::T;

/// The session cookie: the console session's id (never the desk token).
const SESSION: &str = "cps_desk";
/// The sign-in form's CSRF token, given with the form.
const LOGIN: &str = "cps_login";
/// The language chosen on the page (`pl` or `en`), for a year.
const LANG: &str = "cps_lang";

impl ConsoleState {
    /// Every console cookie alike: for the console's paths only, out of scripts' reach, never
    /// sent by another site, `Secure` over TLS.
    fn cookies(&self) -> Cookies {
        Cookies {
            path: "/console",
            same_site: "Strict",
            secure: self.secure,
        }
    }

    fn cookie(&self, name: &str, value: &str, max_age: Option<u32>) -> String {
        self.cookies().make(name, value, max_age)
    }
}

/// The page's language: the one chosen on the page, else the browser's, else the default.
pub(super) fn language(state: &ConsoleState, headers: &HeaderMap) -> Language {
    pages::language(headers, LANG, state.default_language)
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
    pages::csrf_for("cps-console-csrf", session_id)
}

pub(super) fn client_ip(headers_ext: Option<&Client>) -> IpAddr {
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
            let error = read_failure(&e);
            return Err(Box::new(sign_in_page(
                state,
                error.status(),
                lang,
                Some(&error.message(lang)),
            )));
        }
    };
    match found {
        Found::Live(session) => match state.auth.principal_for_hash(&session.credential) {
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
pub(super) fn may_change(
    session: &Session,
    headers: &HeaderMap,
    form: &[(String, String)],
) -> Result<(), Box<Response>> {
    let lang = session.lang;
    let same_origin = pages::same_origin(headers);
    let csrf_ok = pages::csrf_matches(form, "csrf", &session.csrf);
    if !same_origin || !csrf_ok {
        tracing::warn!(user = %session.principal.user, "console change refused: no valid CSRF token or a foreign origin");
        return Err(Box::new(html(
            StatusCode::FORBIDDEN,
            page::refused(session, T::Forbidden.get(lang)),
        )));
    }
    if !session.can_act() {
        return Err(Box::new(refused(session, &ApiError::RoleForbidden)));
    }
    Ok(())
}

/// The sign-in page, with a new sign-in CSRF token in its form and in a cookie.
pub(super) fn sign_in_page(
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

pub(super) async fn home(State(state): State<ConsoleState>, headers: HeaderMap) -> Response {
    match session(&state, &headers).await {
        Ok(session) => html(StatusCode::OK, page::search(&session, "", None)),
        // Not signed in is not an error on the front page.
        Err(_) if cookie(&headers, SESSION).is_none() => {
            sign_in_page(&state, StatusCode::OK, language(&state, &headers), None)
        }
        Err(page) => *page,
    }
}

pub(super) async fn sign_in(
    State(state): State<ConsoleState>,
    headers: HeaderMap,
    client: Option<axum::Extension<Client>>,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let lang = language(&state, &headers);
    // The sign-in form's own CSRF token: the one this browser was given with the form. Without
    // it, a page of another site could sign the browser in as the attacker.
    let expected = cookie(&headers, LOGIN).unwrap_or_default();
    if !pages::csrf_matches(&form, "login", expected) {
        let message = T::Forbidden.get(lang);
        return sign_in_page(&state, StatusCode::FORBIDDEN, lang, Some(message));
    }
    let token = field(&form, "token").unwrap_or_default().trim();
    match state
        .auth
        .sign_in(client_ip(client.as_deref()), Some(token))
    {
        Ok((principal, token_hash)) => {
            match state
                .sessions
                .open(principal.user.as_str(), &token_hash, DESK_LEVEL)
                .await
            {
                Ok(id) => {
                    tracing::info!(user = %principal.user, "console session opened");
                    redirect("/console", &[state.cookie(SESSION, &id, None)])
                }
                Err(e) => {
                    let error = read_failure(&e);
                    sign_in_page(&state, error.status(), lang, Some(&error.message(lang)))
                }
            }
        }
        Err(error) => sign_in_page(&state, error.status(), lang, Some(&error.message(lang))),
    }
}

pub(super) async fn sign_out(
    State(state): State<ConsoleState>,
    session: Session,
    headers: HeaderMap,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    if !pages::csrf_matches(&form, "csrf", &session.csrf) {
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

pub(super) async fn set_language(
    State(state): State<ConsoleState>,
    Path(lang): Path<String>,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    let lang = pages::language_code(&lang);
    // Back to a console page only: never an open redirect.
    let back = pages::within(field(&query, "back"), "/console");
    redirect(
        back,
        &[state.cookie(LANG, lang, Some(pages::LANGUAGE_KEPT))],
    )
}
