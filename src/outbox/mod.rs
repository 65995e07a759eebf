//! Side effects that must not be lost (contract section 7): recorded in the database in the same
//! transaction as the change that causes them, delivered after commit — first right away by the
//! request that caused them, then by a background [`worker`] for whatever that could not deliver
//! (Redis down, the process killed in between).

mod activation;
pub mod alcs;
mod cache_write;
pub mod effect;
pub mod queue;
pub mod sms;
pub mod sms_gateway;
pub mod worker;

use chrono::{DateTime, Utc};

pub use activation::{ActivationNotice, AlcsActivation};
pub use cache_write::{CacheBacklog, CacheWrite, Hashes};
pub use effect::{DecodeError, DeliveryError, Kind, Targets};
pub use queue::OutboxQueue;

use crate::store::OutboxRow;

// The registry: every kind of side effect, one line each.
effect::effects! {
    /// Write one cache hash (version-guarded, so delivering it twice or late is harmless).
    CacheWrite(CacheWrite),
    /// Tell ALCS that a card became active.
    AlcsActivation(AlcsActivation),
    /// Send a text message (a one-time code) to a customer.
    Sms(sms::Sms),
}

/// An outbox row: its id (to mark it done), its effect, and how often delivery was tried.
#[derive(Debug, Clone)]
pub struct Pending {
    pub id: i64,
    pub effect: Effect,
    pub attempts: i32,
    pub created_at: DateTime<Utc>,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::HashWrite;

    #[test]
    fn effects_round_trip_through_their_columns() {
        let effect = Effect::CacheWrite(Hashes(vec![HashWrite {
            key: "card:1".into(),
            version: 7,
            fields: vec![("Wallet.A.Balance".into(), "132.00".into())],
            member: None,
        }]));
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
        assert!(effect.deliver_in_request() && !effect.can_die());
        assert!(!effect.kept_when_delivered() && notice.kept_when_delivered());
        assert!(!notice.deliver_in_request() && notice.can_die());
    }
}
