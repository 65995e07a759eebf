//! The Redis customer cache ALCS reads at the till (contract section 6).
//!
//! [`projection`] turns database state into the exact hashes readers expect (pure, no Redis);
//! [`redis`] writes them with a version guard, reads them back, and lists keys.

mod cluster;
mod connection;
mod node;
pub mod projection;
pub mod redis;
pub mod refill;
pub mod source;
pub mod sync;
pub mod topology;

pub use projection::{CardRecord, CardState, CustomerState, HashWrite};
pub use redis::{CacheError, RedisCache, Written};
pub use source::CacheSource;
pub use topology::Topology;

use std::time::Duration;

/// The Redis customer cache: where it is and how it is used.
#[derive(Clone, PartialEq, Eq)]
pub struct CacheSettings {
    /// `redis://`, `rediss://`, `redis+sentinel://` or `redis+cluster://` ([`Topology`]); may
    /// hold a password: never logged as it is.
    pub url: String,
    /// Of every key (`card:…`, `customer:…` follow it).
    pub prefix: String,
    /// A connect or a command may take this long.
    pub timeout: Duration,
    /// How often the cache's marker is checked (an emptied cache is refilled); `None`: never.
    pub check: Option<Duration>,
    /// A `rediss://` server's CA and the client's certificate, when given (read at start-up).
    pub tls: crate::tls::ClientFiles,
}

impl CacheSettings {
    /// The cache at `url`, with `cps serve`'s defaults for the rest.
    pub fn at(url: &str) -> Self {
        Self {
            url: url.to_owned(),
            prefix: String::new(),
            timeout: Duration::from_millis(500),
            check: Some(Duration::from_secs(5)),
            tls: crate::tls::ClientFiles::default(),
        }
    }
}

impl std::fmt::Debug for CacheSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CacheSettings")
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .field("check", &self.check)
            .finish_non_exhaustive()
    }
}
