//! The customer's pages under `/account/` (contract section 8), beside the JSON API on the
//! portal's listener and over the same operations ([`crate::service::portal`]): the same
//! throttles, the same one refusal, the same step-up.
//!
//! - **No script**, Polish and English (the browser's, or the one chosen on the page), mobile
//!   first, one stylesheet. Every form works with plain HTML.
//! - **The session** rides in a `__Host-` cookie (`Secure`, `HttpOnly`, `SameSite=Lax`, path
//!   `/`, no domain): the same sessions as the API's bearer ids, stored hashed, shared by every
//!   instance. Every form carries a CSRF token derived from the session's id (the sign-in and
//!   the reset forms one given with the form, in a cookie of its own), and a `POST` whose
//!   `Origin` is not this site is refused before anything else is read.
//! - **Headers** as a public site needs them: a CSP without script, `frame-ancestors 'none'`,
//!   `no-store`, `Referrer-Policy` ([`crate::http::pages::html`]), and HSTS on every answer of
//!   the listener ([`crate::http::pages::strict_transport`]).

mod consents;
mod data;
mod page;
mod profile;
mod session;
mod words;

use axum::Router;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};

use super::PortalState;
use crate::http::pages::Stylesheet;

/// The pages' stylesheet.
static STYLESHEET: Stylesheet = Stylesheet::new(
    "/account/assets",
    "account",
    include_str!("../../../../assets/account.css"),
);

/// The pages' routes, for the portal listener.
pub fn router(state: PortalState) -> Router {
    Router::new()
        .route("/account", get(profile::overview))
        .route(
            "/account/sign-in",
            get(session::sign_in_page).post(session::sign_in),
        )
        .route("/account/sign-out", post(session::sign_out))
        .route(
            "/account/password",
            get(session::password_page).post(session::set_password),
        )
        .route(
            "/account/reset",
            get(session::reset_page).post(session::request_reset),
        )
        .route("/account/reset/code", post(session::reset))
        .route(
            "/account/step-up",
            get(session::step_up_page).post(session::step_up),
        )
        .route("/account/step-up/code", post(session::send_step_up_code))
        .route(
            "/account/profile",
            get(profile::profile_page).post(profile::change_profile),
        )
        .route(
            "/account/phone",
            get(profile::phone_page).post(profile::request_phone),
        )
        .route("/account/phone/code", post(profile::confirm_phone))
        .route(
            "/account/card",
            get(profile::card_page).post(profile::lock_card),
        )
        .route("/account/sessions", get(profile::sessions_page))
        .route("/account/sessions/{id}/end", post(profile::end_session))
        .route("/account/consents", get(consents::page))
        .route("/account/consents/{purpose}", post(consents::change))
        .route("/account/objection", post(consents::objection))
        .route("/account/my-data", get(data::page))
        .route("/account/my-data/download", post(data::download))
        .route("/account/delete", get(data::delete_page).post(data::delete))
        .route("/account/privacy", get(data::privacy))
        .route("/account/accessibility", get(data::accessibility))
        .route("/account/help", get(data::help))
        .route("/account/language/{lang}", get(session::set_language))
        .route("/account/assets/{name}", get(asset))
        .route("/account/{*rest}", get(not_found).post(not_found))
        .with_state(state)
}

async fn asset(Path(name): Path<String>) -> Response {
    STYLESHEET.serve(&name)
}

/// A page under `/account/` that does not exist: a page that says so, with the way home.
async fn not_found(visitor: session::Visitor) -> Response {
    let frame = visitor.frame();
    crate::http::pages::html(StatusCode::NOT_FOUND, page::not_found(&frame))
}
