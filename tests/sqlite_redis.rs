//! The black-box suite against SQLite with the Redis cache.

#[path = "api/mod.rs"]
mod api;

/// The backend combination every test in this binary runs against.
pub const BACKEND: api::support::Backend = api::support::Backend::SqliteRedis;
