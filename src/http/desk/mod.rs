//! The service desk's listener: its JSON API ([`api`], `/support/v1/…`) and its console
//! ([`console`], `/console…`), side by side over the same desk operations, the same tokens
//! ([`auth`]) and the same answers to a refused change ([`refusal`]). Its admission is its own:
//! a busy desk never sheds a till.

mod api;
pub mod auth;
mod body;
mod console;
mod refusal;

use std::sync::Arc;

use axum::Router;

use crate::http::{AppState, enveloped};
use crate::service::desk::Desk;
use crate::service::sessions::Sessions;
use auth::Auth;

/// The desk's listener and its users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeskSettings {
    pub listen: std::net::SocketAddr,
    /// Lines of `name, role, sha256(token)`; read again on SIGHUP.
    pub tokens_file: std::path::PathBuf,
    /// Failed authentications tolerated per address and minute.
    pub max_auth_failures: usize,
    /// How long a console session lasts.
    pub sessions: crate::service::sessions::SessionLimits,
}

impl DeskSettings {
    /// The desk on `listen` for the users in `tokens_file`, with `cps serve`'s defaults for
    /// the rest.
    pub fn at(listen: std::net::SocketAddr, tokens_file: std::path::PathBuf) -> Self {
        Self {
            listen,
            tokens_file,
            max_auth_failures: 10,
            sessions: crate::service::sessions::SessionLimits::default(),
        }
    }
}

/// Both halves of the desk, each in the shared envelope. `app` is the desk listener's own.
pub fn router(
    app: AppState,
    desk: Desk,
    auth: Arc<Auth>,
    sessions: Sessions,
    secure: bool,
) -> Router {
    let console = console::router(console::ConsoleState {
        desk: desk.clone(),
        auth: auth.clone(),
        sessions,
        country: app.default_country,
        default_language: app.default_language,
        secure,
    });
    let api = api::router(app.clone(), desk, auth);
    // The console signs its users in with a cookie of its own, not the bearer header, and
    // answers pages.
    let pages = AppState {
        pages: true,
        ..app.clone()
    };
    enveloped(api, app).merge(enveloped(console, pages))
}
