//! Side effects that must not be lost (contract section 7): recorded in the database in the same
//! transaction as the change that causes them, delivered after commit — first right away by the
//! request that caused them, then by a background [`worker`] for whatever that could not deliver
//! (Redis down, the process killed in between).

pub mod worker;

use crate::cache::HashWrite;

/// A side effect waiting in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Write one cache hash (version-guarded, so delivering it twice or late is harmless).
    CacheWrite(HashWrite),
}

#[derive(Debug, thiserror::Error)]
#[error("outbox row of kind {kind:?} cannot be decoded")]
pub struct DecodeError {
    kind: String,
    #[source]
    source: Option<serde_json::Error>,
}

impl Effect {
    /// The `kind` column and the JSON `payload` column.
    ///
    /// Kind and payload are stored apart (not as a tagged enum) because `serde_json`'s exact
    /// numbers do not survive serde's buffering of internally tagged enums.
    pub fn encode(&self) -> (&'static str, String) {
        match self {
            // A HashWrite is strings and an integer: serializing cannot fail.
            Self::CacheWrite(w) => ("cache_write", serde_json::to_string(w).unwrap_or_default()),
        }
    }

    pub fn decode(kind: &str, payload: &str) -> Result<Self, DecodeError> {
        let error = |source| DecodeError {
            kind: kind.to_owned(),
            source,
        };
        match kind {
            "cache_write" => serde_json::from_str(payload)
                .map(Self::CacheWrite)
                .map_err(|e| error(Some(e))),
            _ => Err(error(None)),
        }
    }

    /// What the effect concerns, for logs and `cps outbox` (a cache key; never personal data).
    pub fn subject(&self) -> &str {
        match self {
            Self::CacheWrite(w) => &w.key,
        }
    }
}

/// An outbox row: its id (to mark it done), its effect, and how often delivery was tried.
#[derive(Debug, Clone)]
pub struct Pending {
    pub id: i64,
    pub effect: Effect,
    pub attempts: i32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn effects_round_trip_through_their_columns() {
        let effect = Effect::CacheWrite(HashWrite {
            key: "card:1".into(),
            version: 7,
            fields: vec![("Wallet.A.Balance".into(), "132.00".into())],
        });
        let (kind, payload) = effect.encode();
        assert_eq!(Effect::decode(kind, &payload).unwrap(), effect);
        assert!(Effect::decode("nonsense", &payload).is_err());
        assert!(Effect::decode(kind, "{").is_err());
    }
}
