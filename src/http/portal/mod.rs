//! The customer portal's listener (contract section 8): the customer's JSON API under
//! `/loyalty/v1/` ([`api`]) and the same as pages under `/account/` ([`account`]),
//! public-facing and usually behind a TLS proxy, so the client's address comes from the
//! proxy's headers only when the peer is a trusted proxy ([`client`]). It never shares a listener with ALCS, and its admission is its own.

mod account;
mod api;
mod auth;
mod body;
mod client;
mod openapi;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;

use crate::domain::{MandatoryFields, PinEncoding, SignInLimits};
use crate::http::brake::Brake;
use crate::http::{AppState, enveloped};
use crate::service::portal::{Portal, ServiceBreaker};
use crate::service::sessions::SessionLimits;

pub use api::openapi;
pub use client::{ClientHeader, TrustedProxies};
pub use openapi::CODES;

/// The portal's listener, its PIN check and its limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortalSettings {
    pub listen: std::net::SocketAddr,
    /// Peers whose `Forwarded` / `X-Forwarded-For` name the client.
    pub trusted_proxies: TrustedProxies,
    /// ALCS's PIN HMAC keys, one a line (never logged).
    pub pin_key_file: PathBuf,
    pub pin_encoding: PinEncoding,
    pub sessions: SessionLimits,
    /// Per submitted card number.
    pub sign_in: SignInLimits,
    /// Failed sign-ins tolerated per client address (IPv6 by /64) within an hour.
    pub max_failures_per_address: usize,
    pub breaker: ServiceBreaker,
    /// The purposes and their texts (`--consent-texts-file`); none without one.
    pub consent_texts_file: Option<PathBuf>,
    /// The properties the customer must give (`--mandatory-profile-fields`).
    pub mandatory: MandatoryFields,
    /// The art. 15(1) information of the export (`--privacy-notice-file`); cps's default
    /// without one.
    pub privacy_notice_file: Option<PathBuf>,
}

/// The window of the per-address brake.
pub const ADDRESS_WINDOW: Duration = Duration::from_secs(3600);

impl PortalSettings {
    /// The portal on `listen` checking PINs with the keys in `pin_key_file`, with `cps serve`'s
    /// defaults for the rest.
    pub fn at(listen: std::net::SocketAddr, pin_key_file: PathBuf) -> Self {
        Self {
            listen,
            trusted_proxies: TrustedProxies::default(),
            pin_key_file,
            pin_encoding: PinEncoding::default(),
            sessions: SessionLimits::default(),
            sign_in: SignInLimits::default(),
            max_failures_per_address: 20,
            breaker: ServiceBreaker::default(),
            consent_texts_file: None,
            mandatory: MandatoryFields::default(),
            privacy_notice_file: None,
        }
    }
}

/// What the portal's handlers reach.
#[derive(Clone)]
pub struct PortalState {
    pub portal: Portal,
    /// Failed sign-ins per client address.
    pub brake: Arc<Brake>,
    pub mandatory: Arc<MandatoryFields>,
    /// Of consent texts and messages when the request names no language we know.
    pub default_language: crate::domain::Language,
    /// Whose numbering plan national phone numbers follow.
    pub default_country: crate::domain::Country,
}

/// The portal's routes in the shared envelope. `app` is the portal listener's own.
pub fn router(app: AppState, portal: Portal, settings: &PortalSettings) -> Router {
    let state = PortalState {
        portal,
        brake: Arc::new(Brake::new(
            settings.max_failures_per_address,
            ADDRESS_WINDOW,
        )),
        mandatory: Arc::new(settings.mandatory.clone()),
        default_language: app.default_language,
        default_country: app.default_country,
    };
    let resolve =
        axum::middleware::from_fn_with_state(settings.trusted_proxies.clone(), client::resolve);
    let api = api::router(state.clone()).layer(resolve.clone());
    let account = account::router(state).layer(resolve);
    // The pages sign customers in with a cookie of their own, not the bearer header, and
    // answer pages.
    let pages = AppState {
        pages: true,
        ..app.clone()
    };
    // HSTS on every answer of the public listener, the envelope's own (413, 503) included.
    enveloped(api, app)
        .merge(enveloped(account, pages))
        .layer(axum::middleware::map_response(
            crate::http::pages::strict_transport,
        ))
}
