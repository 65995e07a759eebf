//! Side effects that must not be lost (contract section 7): recorded in the database in the same
//! transaction as the change that causes them, delivered after commit — first right away by the
//! request that caused them, then by a background [`worker`] for whatever that could not deliver
//! (Redis down, the process killed in between).

pub mod alcs;
pub mod worker;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::cache::HashWrite;

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
            Self::CacheWrite(w) => ("cache_write", serde_json::to_string(w).unwrap_or_default()),
            Self::AlcsActivation(n) => (
                "alcs_activation",
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
            "cache_write" => serde_json::from_str(payload)
                .map(Self::CacheWrite)
                .map_err(|e| error(Some(e))),
            "alcs_activation" => serde_json::from_str(payload)
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
}

/// An outbox row: its id (to mark it done), its effect, and how often delivery was tried.
#[derive(Debug, Clone)]
pub struct Pending {
    pub id: i64,
    pub effect: Effect,
    pub attempts: i32,
    pub created_at: DateTime<Utc>,
}

/// Where an outbox row stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Waiting for its first or next attempt.
    Pending,
    /// Delivered (ALCS notices are kept; cache writes are deleted).
    Delivered,
    /// Given up after the configured attempts or age, or refused for good: kept for operators,
    /// back in the queue with `cps outbox retry`.
    Dead,
    /// Recorded while no ALCS URL was configured; `cps outbox retry` queues it.
    Unsent,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Dead => "dead",
            Self::Unsent => "unsent",
        }
    }
}

/// One line of `cps outbox`: how many rows of a kind are in a state, and the oldest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SummaryLine {
    pub kind: String,
    /// `pending` (never tried), `failed` (pending, tried and failing), `dead`, `unsent`,
    /// `delivered`.
    pub state: String,
    pub count: i64,
    pub oldest: DateTime<Utc>,
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
