//! Side effects that must not be lost (contract section 7): recorded in the database in the same
//! transaction as the change that causes them, delivered after commit — first right away by the
//! request that caused them, then by a background [`worker`] for whatever that could not deliver
//! (Redis down, the process killed in between).

pub mod alcs;
pub mod worker;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::cache::HashWrite;
use crate::store::OutboxRow;

/// The `kind` of a cache write's outbox row.
pub const CACHE_WRITE: &str = "cache_write";
/// The `kind` of an ALCS activation notice's outbox row.
pub const ALCS_ACTIVATION: &str = "alcs_activation";

/// A side effect waiting in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Write one cache hash (version-guarded, so delivering it twice or late is harmless).
    CacheWrite(HashWrite),
    /// Tell ALCS that a card became active (contract 5.2 step 5).
    AlcsActivation(ActivationNotice),
}

/// The body of the "card activated" notice, plus the event id ALCS deduplicates on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ActivationNotice {
    /// Sent as the `Idempotency-Key` header; the same on every retry.
    pub event_id: String,
    pub card_number: String,
    pub customer_id: String,
    /// RFC 3339, UTC, milliseconds: `2026-11-29T10:00:00.123Z`.
    pub activated_at: String,
}

impl ActivationNotice {
    pub fn new(card: &crate::domain::CardNumber, customer: &str, at: DateTime<Utc>) -> Self {
        Self {
            event_id: uuid::Uuid::new_v4().simple().to_string(),
            card_number: card.to_string(),
            customer_id: customer.to_owned(),
            activated_at: at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        }
    }

    /// What is POSTed: `{"CardNumber", "CustomerId", "ActivatedAt"}`.
    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({
            "CardNumber": self.card_number,
            "CustomerId": self.customer_id,
            "ActivatedAt": self.activated_at,
        })
    }
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
            Self::CacheWrite(w) => (CACHE_WRITE, serde_json::to_string(w).unwrap_or_default()),
            Self::AlcsActivation(n) => (
                ALCS_ACTIVATION,
                serde_json::to_string(n).unwrap_or_default(),
            ),
        }
    }

    pub fn decode(kind: &str, payload: &str) -> Result<Self, DecodeError> {
        let error = |source| DecodeError {
            kind: kind.to_owned(),
            source,
        };
        match kind {
            CACHE_WRITE => serde_json::from_str(payload)
                .map(Self::CacheWrite)
                .map_err(|e| error(Some(e))),
            ALCS_ACTIVATION => serde_json::from_str(payload)
                .map(Self::AlcsActivation)
                .map_err(|e| error(Some(e))),
            _ => Err(error(None)),
        }
    }

    /// What the effect concerns, for logs and `cps outbox` (a cache key; never personal data).
    pub fn subject(&self) -> String {
        match self {
            Self::CacheWrite(w) => w.key.clone(),
            Self::AlcsActivation(n) => format!("card:{}", n.card_number),
        }
    }

    /// Whether the request that records it delivers it before answering. Cache writes: yes
    /// (the till reads the cache next). ALCS notices: no — a slow or absent ALCS must not hold
    /// up ALCS's own request; the worker is woken instead.
    pub fn deliver_in_request(&self) -> bool {
        matches!(self, Self::CacheWrite(_))
    }

    /// Whether repeated failures make it a dead letter. Cache writes never give up (a stale
    /// cache is worse than a late write); ALCS notices do, after the configured attempts or age.
    pub fn can_die(&self) -> bool {
        matches!(self, Self::AlcsActivation(_))
    }

    /// Whether its row is kept (as `delivered`) once delivered. Cache writes are not: there
    /// are many, and the cache itself shows them; ALCS notices are, for the record.
    pub fn kept_when_delivered(&self) -> bool {
        matches!(self, Self::AlcsActivation(_))
    }
}

impl Pending {
    /// The effect an outbox row holds.
    pub fn from_row(row: OutboxRow) -> Result<Self, DecodeError> {
        Ok(Self {
            id: row.id,
            effect: Effect::decode(&row.kind, &row.payload)?,
            attempts: row.attempts,
            created_at: row.created_at,
        })
    }
}

/// An outbox row: its id (to mark it done), its effect, and how often delivery was tried.
#[derive(Debug, Clone)]
pub struct Pending {
    pub id: i64,
    pub effect: Effect,
    pub attempts: i32,
    pub created_at: DateTime<Utc>,
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
        let card = crate::domain::CardNumber::parse("0423").unwrap();
        let notice = Effect::AlcsActivation(ActivationNotice::new(&card, "ab", Utc::now()));
        let (kind, payload) = notice.encode();
        assert_eq!(kind, "alcs_activation");
        assert_eq!(Effect::decode(kind, &payload).unwrap(), notice);
        assert_eq!(notice.subject(), "card:0423");
        assert!(Effect::decode("nonsense", &payload).is_err());
        assert!(Effect::decode(kind, "{").is_err());
    }
}
