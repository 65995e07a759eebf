//! The black-box suite against SQLite, no cache.

#[path = "api/mod.rs"]
mod api;

/// The backend combination every test in this binary runs against.
pub const BACKEND: api::support::Backend = api::support::Backend::Sqlite;
