//! The black-box suite against PostgreSQL with the cache on a Redis Cluster (six
//! `redis-server` started by the tests: three primaries, a replica each).

#[path = "api/mod.rs"]
mod api;

/// The backend combination every test in this binary runs against.
pub const BACKEND: api::support::Backend = api::support::Backend::PostgresRedisCluster;
