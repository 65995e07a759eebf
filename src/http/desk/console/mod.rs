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

mod cards;
mod customers;
mod page;
mod session;
mod text;

use super::auth::Auth;
use super::refusal::read_failure;
use crate::domain::{Country, Language};
use crate::http::error::ApiError;
use crate::http::pages::{Stylesheet, html};
use crate::service::desk::Desk;
use crate::service::sessions::Sessions;
use axum::Router;
use axum::extract::Path;
use axum::response::Response;
use axum::routing::get;
use std::sync::Arc;

pub use cards::CardAction;
use cards::{act_on_card, card_page, confirm_card, search};
pub use customers::CustomerAction;
use customers::{act_on_customer, confirm_customer, customer_page};
pub use session::Session;
use session::{home, set_language, sign_in, sign_out};

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

/// The console's stylesheet.
static STYLESHEET: Stylesheet = Stylesheet::new(
    "/console/assets",
    "console",
    include_str!("../../../../assets/console.css"),
);

async fn asset(Path(name): Path<String>) -> Response {
    STYLESHEET.serve(&name)
}

/// The stylesheet's path, for the pages.
pub fn stylesheet() -> String {
    STYLESHEET.href()
}

/// A page for an infrastructure failure: the API's message for it, in the page's language.
fn failure(session: &Session, e: &crate::service::Failure) -> Response {
    refused(session, &read_failure(e))
}

/// The page for a refusal: the API's status and message for it, in the page's language.
fn refused(session: &Session, error: &ApiError) -> Response {
    html(
        error.status(),
        page::refused(session, &error.message(session.lang)),
    )
}
