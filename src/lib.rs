//! CPS — the Customer Portal Server's loyalty-card API for ALCS.
//!
//! `domain` holds the values and rules, `store` the system of record, `service` the operations,
//! `http` the wire contract; `startup` puts them together for `main` and the tests.

pub mod config;
pub mod domain;
pub mod http;
pub mod service;
pub mod startup;
pub mod store;
mod tls;
