//! Building and running the application, the same way for `main` and for the tests.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use axum::Router;
use tokio::sync::watch;

use crate::cache::RedisCache;
use crate::cache::refill::Refiller;
use crate::config::Config;
use crate::http::{self, AppState};
use crate::outbox::CacheBacklog;
use crate::outbox::alcs::{AlcsClient, AlcsSetupError};
use crate::outbox::worker::{self, Deliverer, WorkerConfig};
use crate::service::Service;
use crate::setting::{Invalid, flag};
use crate::store::SqlStore;

/// The service desk's listener, its routes, TLS (without client certificates: desk users
/// authenticate with tokens), and its users, reloaded on SIGHUP.
struct Support {
    listener: tokio::net::TcpListener,
    router: Router,
    tls: Option<Arc<rustls::ServerConfig>>,
    auth: Arc<crate::http::desk::auth::Auth>,
}

/// Requests the desk listener runs at once, and queues: its own, so that a busy desk never
/// takes a place a till needs.
const DESK_IN_FLIGHT: usize = 8;
const DESK_QUEUED: usize = 32;

/// The customer portal's listener, its routes and TLS (without client certificates:
/// customers sign in with their card and PIN).
struct Portal {
    listener: tokio::net::TcpListener,
    router: Router,
    tls: Option<Arc<rustls::ServerConfig>>,
}

/// Requests the portal listener runs at once, and queues: its own, so that customers never
/// take a place a till needs.
const PORTAL_IN_FLIGHT: usize = 16;
const PORTAL_QUEUED: usize = 64;
/// Password hashes computed at once (each a core for tens of milliseconds).
const HASHING_SLOTS: usize = 2;

pub struct Application {
    listener: tokio::net::TcpListener,
    addr: SocketAddr,
    /// The admin listener (metrics, probes) and its routes, when one is configured.
    admin: Option<(tokio::net::TcpListener, Router)>,
    /// The service desk's listener, when one is configured.
    support: Option<Support>,
    /// The customer portal's listener, when one is configured.
    portal: Option<Portal>,
    router: Router,
    tls: Option<Arc<rustls::ServerConfig>>,
    connections: crate::server::Limits,
    deliverer: Deliverer,
    /// Refills an emptied cache (when a cache is configured).
    refiller: Option<Refiller>,
    worker: WorkerConfig,
    /// Told when shutdown starts (readiness answers 503 from then on).
    service: Service,
    /// How long the listeners keep accepting after the shutdown signal.
    shutdown_delay: std::time::Duration,
    /// The pruning job and what it prunes.
    housekeeping: (
        Arc<dyn crate::store::Prune>,
        crate::service::housekeeping::HousekeepingConfig,
    ),
}

/// The database and the cache a configuration names, opened (and the database migrated).
pub async fn open(config: &Config) -> anyhow::Result<(Arc<SqlStore>, Option<RedisCache>)> {
    let store = crate::store::connect(&config.database.url, &config.database.options)
        .await
        .context("cannot open the database")?;
    let cache = config.cache.as_ref().map(cache).transpose()?;
    Ok((store, cache))
}

/// The cache a configuration names, its TLS files read; nothing is sent until the first
/// command.
pub fn cache(settings: &crate::cache::CacheSettings) -> anyhow::Result<RedisCache> {
    let tls = settings.tls.read()?;
    RedisCache::connect(&settings.url, &settings.prefix, settings.timeout, &tls)
        .context("cannot set up the Redis cache")
}

/// Connections the kernel queues for `accept`. The default of 128 overflows in a burst of
/// connections (a flood, or every till reconnecting after a network blip); a dropped SYN is
/// retried only after a second. The kernel caps it at `net.core.somaxconn`.
const LISTEN_BACKLOG: u32 = 4096;

fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    // As std does on Unix: a restart may bind while old connections linger in TIME_WAIT.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

impl Application {
    /// Opens and migrates the database, prepares the cache, and binds the listener (port 0
    /// picks a free port).
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        crate::tls::install_provider();
        if config.admin_listen.is_some() {
            // Recording starts with the listener that exposes it, before anything it counts
            // (the breakers' gauges are set as the database and the cache are opened).
            crate::metrics::handle();
        }
        // What the settings name but only start-up can read (files, clients) is built first:
        // a bad certificate stops the service before it touches the database.
        let tls = config
            .tls
            .as_ref()
            .map(|t| crate::tls::server_config(&t.cert, &t.key, t.client_ca.as_deref()))
            .transpose()?;
        // The PIN keys are read before anything else is opened: without them no portal.
        let pin = config
            .portal
            .as_ref()
            .map(|p| read_pin_keys(&p.pin_key_file, p.pin_encoding))
            .transpose()?;
        let texts = config
            .portal
            .as_ref()
            .and_then(|p| p.consent_texts_file.as_deref())
            .map(read_consent_texts)
            .transpose()?
            .unwrap_or_default();
        let notice = config
            .portal
            .as_ref()
            .map(|p| read_privacy_notice(p.privacy_notice_file.as_deref()))
            .transpose()?;
        let alcs = config
            .alcs
            .as_ref()
            .map(AlcsClient::from_settings)
            .transpose()
            .map_err(|e| match e {
                AlcsSetupError::Files(e) => e,
                AlcsSetupError::Client(e) => Invalid::new("alcs_activation_url", e),
            })?;
        let sms = config
            .sms
            .as_ref()
            .map(crate::outbox::sms::SmsClient::from_settings)
            .transpose()
            .map_err(|e| Invalid::new("sms_gateway_url", e))?;
        let (store, cache) = open(&config).await?;
        match &cache {
            Some(c) => tracing::info!(prefix = c.prefix(), "Redis customer cache enabled"),
            None => tracing::info!(
                "no Redis cache configured ({}): none is written",
                flag("redis_url")
            ),
        }
        match &alcs {
            Some(alcs) => {
                tracing::info!(url = %alcs.redacted_template(), "ALCS activation notices enabled")
            }
            None => tracing::warn!(
                "no ALCS activation URL configured ({}): activation notices are recorded but not sent",
                flag("alcs_activation_url")
            ),
        }
        // One database serves three capabilities: the card store, the outbox queue, and the
        // cache's source.
        let deliverer = Deliverer::new(store.clone(), cache.clone(), alcs, sms.clone());
        let check = config.cache.as_ref().and_then(|r| r.check);
        let refiller = match cache {
            Some(cache) => {
                let backlog = CacheBacklog {
                    queue: store.clone(),
                    wake: deliverer.waker(),
                };
                let parts = (
                    store.clone() as _,
                    store.clone() as _,
                    Arc::new(backlog) as _,
                );
                let own = cache
                    .with_own_connection()
                    .context("connect the cache refill")?;
                Some(Refiller::new(parts, own, check))
            }
            None => None,
        };
        let http_config = &config.http;
        let service = Service::new(store.clone(), deliverer.clone(), config.policy());
        let sign_in = config
            .portal
            .as_ref()
            .map_or_else(crate::domain::SignInLimits::default, |p| p.sign_in);
        let desk = crate::service::desk::Desk::new(
            service.clone(),
            store.clone(),
            (store.clone(), sign_in),
        );
        let state = AppState {
            pages: false,
            service,
            default_country: http_config.default_country,
            default_language: http_config.default_language,
            request_timeout: http_config.request_timeout,
            limits: http_config.requests.clone(),
            admission: Some(crate::http::admission::Admission::new(
                http_config.requests.max_in_flight,
                http_config.requests.max_queued,
            )),
        };
        let listener =
            bind(config.listen).with_context(|| format!("cannot listen on {}", config.listen))?;
        let admin = match config.admin_listen {
            Some(at) => {
                let admin = bind(at).with_context(|| format!("cannot listen on {at} (admin)"))?;
                Some((admin, http::admin_router(state.clone())))
            }
            None => None,
        };
        let support = match &config.desk {
            Some(support) => {
                let auth = crate::http::desk::auth::Auth::load(
                    support.tokens_file.clone(),
                    support.max_auth_failures,
                )
                .map_err(|e| Invalid::new("support_tokens_file", e.to_string()))?;
                let auth = Arc::new(auth);
                let tls = config
                    .tls
                    .as_ref()
                    .map(|t| crate::tls::server_config(&t.cert, &t.key, None))
                    .transpose()?;
                let listener = bind(support.listen).with_context(|| {
                    format!("cannot listen on {} (service desk)", support.listen)
                })?;
                let desk_state = AppState {
                    admission: Some(crate::http::admission::Admission::new(
                        DESK_IN_FLIGHT,
                        DESK_QUEUED,
                    )),
                    ..state.clone()
                };
                let sessions = crate::service::sessions::Sessions::new(
                    store.clone(),
                    crate::service::sessions::Audience::Desk,
                    support.sessions,
                );
                Some(Support {
                    listener,
                    router: http::desk::router(
                        desk_state,
                        desk.clone(),
                        auth.clone(),
                        sessions,
                        tls.is_some(),
                    ),
                    tls,
                    auth,
                })
            }
            None => None,
        };
        let portal = match (&config.portal, pin, notice) {
            (Some(settings), Some(pin), Some(notice)) => {
                let tls = config
                    .tls
                    .as_ref()
                    .map(|t| crate::tls::server_config(&t.cert, &t.key, None))
                    .transpose()?;
                let listener = bind(settings.listen).with_context(|| {
                    format!("cannot listen on {} (customer portal)", settings.listen)
                })?;
                let portal_state = AppState {
                    admission: Some(crate::http::admission::Admission::new(
                        PORTAL_IN_FLIGHT,
                        PORTAL_QUEUED,
                    )),
                    ..state.clone()
                };
                let sessions = crate::service::sessions::Sessions::new(
                    store.clone(),
                    crate::service::sessions::Audience::Portal,
                    settings.sessions,
                );
                let hasher = crate::service::portal::Hasher::new(HASHING_SLOTS);
                hasher.warm().await;
                let portal =
                    crate::service::portal::Portal::new(crate::service::portal::PortalParts {
                        service: state.service.clone(),
                        desk: desk.clone(),
                        store: store.clone(),
                        sessions,
                        pin,
                        limits: settings.sign_in,
                        breaker: settings.breaker,
                        hasher,
                        texts,
                        mandatory: settings.mandatory.clone(),
                        notice,
                        sms: config.sms.is_some(),
                    });
                Some(Portal {
                    listener,
                    router: http::portal::router(portal_state, portal, settings),
                    tls,
                })
            }
            _ => None,
        };
        if let Some(files) = crate::server::raise_open_files_limit() {
            // Database, cache, log and listener descriptors need room beside the clients.
            let wanted = config.connections.max_connections as u64 + 256;
            if files < wanted {
                tracing::warn!(
                    open_files_limit = files,
                    max_connections = config.connections.max_connections,
                    "the open-files limit is below {} plus a reserve: accepting may fail before the cap is reached",
                    flag("max_connections")
                );
            }
        }
        if config.tls.as_ref().is_some_and(|t| t.client_ca.is_none())
            && !config.listen.ip().is_loopback()
        {
            tracing::warn!(
                addr = %config.listen,
                "serving HTTPS on a non-loopback address without {}: any client that can connect may change cards",
                flag("tls_client_ca")
            );
        }
        let addr = listener.local_addr()?;
        let service = state.service.clone();
        let shutdown_delay = config.shutdown_delay;
        let housekeeping = (
            store.clone() as Arc<dyn crate::store::Prune>,
            config.housekeeping,
        );
        Ok(Self {
            listener,
            addr,
            admin,
            support,
            portal,
            router: http::router(state),
            tls,
            connections: config.connections,
            deliverer,
            refiller,
            worker: config.outbox,
            service,
            shutdown_delay,
            housekeeping,
        })
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where the service desk's API listens, if it does.
    pub fn support_addr(&self) -> Option<SocketAddr> {
        self.support
            .as_ref()
            .and_then(|s| s.listener.local_addr().ok())
    }

    /// Where the customer portal listens, if it does.
    pub fn portal_addr(&self) -> Option<SocketAddr> {
        self.portal
            .as_ref()
            .and_then(|p| p.listener.local_addr().ok())
    }

    /// Where the admin listener (metrics, probes) listens, if it does.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().and_then(|(l, _)| l.local_addr().ok())
    }

    /// Serves (and runs the outbox worker) until `shutdown` completes; then drains: readiness
    /// answers 503 at once while every listener keeps accepting for the shutdown delay (load
    /// balancers take the instance out of rotation), then the listeners close and requests in
    /// progress and the worker's current batch get the grace period to finish.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let (stop_tx, stop_rx) = watch::channel(false);
        let worker = self.deliverer.has_targets().then(|| {
            tokio::spawn(worker::run(
                self.deliverer.clone(),
                self.worker.clone(),
                stop_rx,
            ))
        });
        let refiller = self
            .refiller
            .map(|refiller| tokio::spawn(refiller.run(stop_tx.subscribe())));
        let (prune_store, prune_config) = self.housekeeping;
        let pruning = tokio::spawn(crate::service::housekeeping::run(
            prune_store,
            prune_config,
            stop_tx.subscribe(),
        ));
        let server_stop = stop_tx.subscribe();
        // The same bounds as the API's (header and idle deadlines, the connection cap):
        // operators bind it beyond loopback for their scrapers.
        let admin = self.admin.map(|(listener, router)| {
            if let Ok(at) = listener.local_addr() {
                tracing::info!(admin = %at, "serving metrics and probes (admin listener)");
            }
            tokio::spawn(crate::server::serve(
                listener,
                None,
                router,
                self.connections.clone(),
                stop_tx.subscribe(),
            ))
        });
        let support = self.support.map(|support| {
            if let Ok(at) = support.listener.local_addr() {
                tracing::info!(support = %at, tls = support.tls.is_some(), "serving the service desk API");
            }
            // Watched from before the first desk request: a SIGHUP from then on reloads.
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
                Ok(hangups) => {
                    tokio::spawn(reload_on_hangup(hangups, support.auth.clone(), stop_tx.subscribe()));
                }
                Err(e) => tracing::warn!(error = %e, "cannot watch for SIGHUP: the desk tokens file is read at start-up only"),
            }
            tokio::spawn(crate::server::serve(
                support.listener,
                support.tls,
                support.router,
                self.connections.clone(),
                stop_tx.subscribe(),
            ))
        });
        let portal = self.portal.map(|portal| {
            if let Ok(at) = portal.listener.local_addr() {
                tracing::info!(portal = %at, tls = portal.tls.is_some(), "serving the customer portal");
            }
            tokio::spawn(crate::server::serve(
                portal.listener,
                portal.tls,
                portal.router,
                self.connections.clone(),
                stop_tx.subscribe(),
            ))
        });
        let (service, delay, grace) = (
            self.service.clone(),
            self.shutdown_delay,
            self.connections.grace,
        );
        tokio::spawn(async move {
            shutdown.await;
            service.drain();
            tracing::info!(
                delay_secs = delay.as_secs(),
                "shutting down: readiness answers 503; still accepting requests for the shutdown delay"
            );
            tokio::time::sleep(delay).await;
            tracing::info!(
                grace_secs = grace.as_secs(),
                "shutting down: no longer accepting; requests in progress get the grace period to finish"
            );
            let _ = stop_tx.send(true);
        });
        match &self.tls {
            Some(_) => tracing::info!(addr = %self.addr, "serving HTTPS"),
            None => tracing::info!(addr = %self.addr, "serving plain HTTP"),
        }
        let served = crate::server::serve(
            self.listener,
            self.tls,
            self.router,
            self.connections,
            server_stop,
        )
        .await
        .context("the server failed");
        if let Some(worker) = worker {
            let _ = worker.await;
        }
        if let Some(admin) = admin
            && let Ok(Err(e)) = admin.await
        {
            tracing::error!(error = %e, "the admin listener failed");
        }
        if let Some(support) = support
            && let Ok(Err(e)) = support.await
        {
            tracing::error!(error = %e, "the service desk listener failed");
        }
        if let Some(portal) = portal
            && let Ok(Err(e)) = portal.await
        {
            tracing::error!(error = %e, "the customer portal listener failed");
        }
        if let Some(refiller) = refiller {
            let _ = refiller.await;
        }
        let _ = pruning.await;
        tracing::info!("shut down");
        served
    }
}

/// The PIN HMAC keys of the key file: a file that cannot be read, or holds none, stops the
/// service (the message never holds a key).
fn read_pin_keys(
    file: &std::path::Path,
    encoding: crate::domain::PinEncoding,
) -> Result<crate::domain::PinCheck, Invalid> {
    let text = std::fs::read_to_string(file).map_err(|e| {
        Invalid::new(
            "pin_hmac_key_file",
            format!("cannot read {}: {e}", file.display()),
        )
    })?;
    crate::domain::PinCheck::parse(&text, encoding)
        .map_err(|e| Invalid::new("pin_hmac_key_file", format!("{}: {e}", file.display())))
}

/// What cps says of its processing when the operator publishes no notice of its own.
const DEFAULT_PRIVACY_NOTICE: &str = include_str!("../assets/privacy-notice.json");

/// The art. 15(1) information the export carries: the operator's file (a JSON object with
/// `Controller`, `Purposes`, `Recipients`, `Retention`, `Source` and `Rights`), or cps's
/// default. A file that does not read stops the service.
fn read_privacy_notice(file: Option<&std::path::Path>) -> Result<serde_json::Value, Invalid> {
    let (text, name) = match file {
        Some(file) => (
            std::fs::read_to_string(file).map_err(|e| {
                Invalid::new("privacy_notice_file", format!("{}: {e}", file.display()))
            })?,
            file.display().to_string(),
        ),
        None => (DEFAULT_PRIVACY_NOTICE.to_owned(), "the default".to_owned()),
    };
    let invalid =
        |problem: String| Invalid::new("privacy_notice_file", format!("{name}: {problem}"));
    let notice: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| invalid(format!("not JSON: {e}")))?;
    for key in [
        "Controller",
        "Purposes",
        "Recipients",
        "Retention",
        "Source",
        "Rights",
    ] {
        if notice.get(key).is_none_or(serde_json::Value::is_null) {
            return Err(invalid(format!("{key} is missing")));
        }
    }
    Ok(notice)
}

/// The consent texts the operator publishes: a JSON array of `{"Purpose", "Version",
/// "Language", "Text"}`, each with an optional `Title` (the purpose's name on the pages). A file that does not read stops the service.
fn read_consent_texts(file: &std::path::Path) -> Result<crate::domain::ConsentTexts, Invalid> {
    use crate::domain::{ConsentText, ConsentTexts, Language, Purpose, valid_version};
    let invalid = |problem: String| {
        Invalid::new(
            "consent_texts_file",
            format!("{}: {problem}", file.display()),
        )
    };
    let text = std::fs::read_to_string(file).map_err(|e| invalid(e.to_string()))?;
    let entries: Vec<serde_json::Value> =
        serde_json::from_str(&text).map_err(|e| invalid(format!("not a JSON array: {e}")))?;
    let mut texts = Vec::with_capacity(entries.len());
    for (i, entry) in entries.iter().enumerate() {
        let field = |name: &str| {
            entry[name]
                .as_str()
                .ok_or_else(|| invalid(format!("entry {}: {name} must be a string", i + 1)))
        };
        let purpose = Purpose::parse(field("Purpose")?).ok_or_else(|| {
            invalid(format!(
                "entry {}: Purpose must be a letter and up to 31 letters or digits",
                i + 1
            ))
        })?;
        let version = field("Version")?;
        if !valid_version(version) {
            return Err(invalid(format!(
                "entry {}: Version must be 1 to 32 of A-Z a-z 0-9 . _ -",
                i + 1
            )));
        }
        let language = Language::recognize(field("Language")?)
            .ok_or_else(|| invalid(format!("entry {}: Language must be pl_PL or en_US", i + 1)))?;
        let body = field("Text")?;
        if body.trim().is_empty() {
            return Err(invalid(format!("entry {}: Text is empty", i + 1)));
        }
        let title = match &entry["Title"] {
            serde_json::Value::Null => None,
            serde_json::Value::String(title) if title.chars().count() <= 100 => Some(title.clone()),
            _ => {
                return Err(invalid(format!(
                    "entry {}: Title must be a string of at most 100 characters",
                    i + 1
                )));
            }
        };
        texts.push(
            ConsentText::new(purpose, version.to_owned(), language, body.to_owned()).titled(title),
        );
    }
    ConsentTexts::new(texts).map_err(invalid)
}

/// Reads the desk's tokens file again on every SIGHUP, until the service stops.
async fn reload_on_hangup(
    mut hangups: tokio::signal::unix::Signal,
    auth: Arc<crate::http::desk::auth::Auth>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            Some(()) = hangups.recv() => auth.reload(),
            _ = stop.wait_for(|stopped| *stopped) => return,
        }
    }
}
