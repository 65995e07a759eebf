//! The black-box suite against PostgreSQL through PgBouncer in session mode (Debian's package,
//! started by the tests), with the Redis cache.

#[path = "api/mod.rs"]
mod api;

/// The backend combination every test in this binary runs against.
pub const BACKEND: api::support::Backend = api::support::Backend::PgBouncerRedis;
