//! The black-box suite: each test starts the real application on port 0 with its own fresh
//! database (and Redis key prefix) and talks HTTP to it, as ALCS would. It is compiled once per
//! backend combination (`tests/sqlite.rs`, `tests/sqlite_redis.rs`, `tests/postgres_redis.rs`),
//! with the same assertions.

mod account;
mod activate;
mod alcs;
mod cache;
mod change_phone;
mod concurrency;
mod console;
mod database;
mod desk;
mod errors;
mod failures;
mod language;
mod limits;
mod lock;
mod metrics;
mod openapi;
mod portal;
mod portal_account;
mod portal_sms;
mod process;
mod pruning;
mod read;
mod register;
mod request_ids;
mod resilience;
pub mod support;
