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
