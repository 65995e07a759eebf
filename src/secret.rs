//! Secrets as every wing handles them: new random ones, their SHA-256 (what is stored instead
//! of them), and comparisons whose time does not depend on where two secrets differ. The desk's
//! tokens, its console's sessions and the portal's sessions are made and kept with these.

use std::fmt::Write as _;

use sha2::{Digest, Sha256};

/// Whether two secrets are equal, in time that depends only on their length (which is not
/// secret: hashes, derived tokens).
pub fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// SHA-256 of a token as 64 lowercase hex digits, as the file holds it (and of anything else
/// to be named by its hash).
pub fn hash_hex(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .fold(String::with_capacity(64), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// A new random token: 244 bits from the operating system's generator (two v4 UUIDs).
pub fn generate() -> String {
    format!(
        "cps_{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}
