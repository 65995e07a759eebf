//! What the service is built from, typed and checked: each part's settings, owned by the module
//! that part is. The command line ([`crate::cli`]) makes one from flags and the environment;
//! tests and benchmarks start from [`Config::default`] (what `cps serve` does without any
//! setting) and change fields.

use std::net::SocketAddr;
use std::time::Duration;

use crate::cache::CacheSettings;
use crate::http::HttpSettings;
use crate::http::desk::DeskSettings;
use crate::http::portal::PortalSettings;
use crate::outbox::alcs::AlcsSettings;
use crate::outbox::worker::WorkerConfig;
use crate::service::housekeeping::HousekeepingConfig;
use crate::store::DatabaseSettings;
use crate::tls::ServerFiles;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The API's listener (ALCS calls it).
    pub listen: SocketAddr,
    /// The admin listener (`/metrics`, `/health/…`), if any.
    pub admin_listen: Option<SocketAddr>,
    /// The service desk's listener and its users, if the desk is served.
    pub desk: Option<DeskSettings>,
    /// The customer portal's listener, its PIN check and its limits, if the portal is served.
    pub portal: Option<PortalSettings>,
    /// HTTPS on the API's, the desk's and the portal's listeners, when configured.
    pub tls: Option<ServerFiles>,
    /// How the listeners' connections are bounded.
    pub connections: crate::server::Limits,
    /// How long the listeners keep accepting after a shutdown signal (readiness says 503).
    pub shutdown_delay: Duration,
    pub http: HttpSettings,
    pub database: DatabaseSettings,
    /// The Redis customer cache, when one is configured.
    pub cache: Option<CacheSettings>,
    pub outbox: WorkerConfig,
    /// Where activation notices go, when configured.
    pub alcs: Option<AlcsSettings>,
    /// Where the portal's text messages go, when configured.
    pub sms: Option<crate::outbox::sms::SmsSettings>,
    /// The pruning job.
    pub housekeeping: HousekeepingConfig,
}

impl Default for Config {
    /// `cps serve` without any setting: plain HTTP on loopback, a SQLite file, no cache.
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            admin_listen: Some(SocketAddr::from(([127, 0, 0, 1], 8079))),
            desk: None,
            portal: None,
            tls: None,
            connections: crate::server::Limits::default(),
            shutdown_delay: Duration::from_secs(5),
            http: HttpSettings::default(),
            database: DatabaseSettings::default(),
            cache: None,
            outbox: WorkerConfig::default(),
            alcs: None,
            sms: None,
            housekeeping: HousekeepingConfig::default(),
        }
    }
}

impl Config {
    /// Which side effects writes record: they follow from what is configured.
    pub fn policy(&self) -> crate::service::Policy {
        crate::service::Policy {
            cache: self.cache.is_some(),
            alcs_notices: self.alcs.is_some(),
        }
    }
}
