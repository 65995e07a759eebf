//! CPS — the Customer Portal Server's loyalty-card API for ALCS.
//!
//! `domain` holds the values and rules, `store` the system of record, `service` the operations,
//! `http` the wire contract, `server` the connections; `startup` puts them together for `main` and the tests.

pub mod breaker;
pub mod cache;
pub mod cli;
pub mod commands;
pub mod config;
pub mod domain;
pub mod http;
pub mod logs;
pub mod metrics;
#[cfg(feature = "otlp")]
pub mod otlp;
pub mod outbox;
pub mod secret;
pub mod server;
pub mod service;
pub mod setting;
pub mod startup;
pub mod store;
pub mod tls;
pub mod tokens;

/// An error with its causes, `: `-separated, for one log line.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
