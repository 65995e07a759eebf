//! What the tests share: the app under test and its backends, request bodies, peeks at what
//! it stored, faults to inject, the binary as a process, and TLS material. Each test file
//! takes what it needs from here (one fake HTTP receiver stands in for everything the service calls out to) (`use super::support::*`).

#![allow(
    dead_code,
    unused_imports,
    reason = "each test binary uses its own part of the support library"
)]

mod a11y;
mod app;
mod backends;
mod bodies;
mod browser;
mod cluster;
mod desk;
mod faults;
mod peek;
pub(crate) mod pgbouncer;
mod portal;
mod process;
mod receiver;
mod sentinel;
mod tls;

pub use a11y::*;
pub use app::*;
pub use backends::*;
pub use bodies::*;
pub use browser::*;
pub use cluster::*;
pub use desk::*;
pub use faults::*;
pub use pgbouncer::PgBouncer;
pub use portal::*;
pub use process::*;
pub use receiver::*;
pub use sentinel::*;
pub use tls::*;
