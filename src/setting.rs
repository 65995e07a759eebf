//! A setting found wrong, named by its id: the field of the command line's settings that holds
//! it (`tls_cert`). Only the edge ([`crate::cli`]) knows the flag and the environment variable
//! an operator types for it, and turns the id into both; code below start-up never spells them.

/// A setting that cannot be used, and why. The text never repeats a value that may hold a
/// secret (a URL with a password).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {problem}", flag(setting))]
pub struct Invalid {
    pub setting: &'static str,
    pub problem: String,
}

impl Invalid {
    pub fn new(setting: &'static str, problem: impl Into<String>) -> Self {
        Self {
            setting,
            problem: problem.into(),
        }
    }
}

/// How a problem text names another setting: its flag, which the command line derives from
/// the id (`tls_key` is `--tls-key`).
pub fn flag(setting: &str) -> String {
    format!("--{}", setting.replace('_', "-"))
}
