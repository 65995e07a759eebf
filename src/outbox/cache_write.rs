//! Writing a card's cache hashes (the card's and its customer's): what every change of a card
//! causes when a cache is configured. One outbox row and one Redis round trip per change.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::Utc;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

use super::OutboxQueue;
use super::effect::{DeliveryError, Kind, Targets};
use crate::cache::HashWrite;
use crate::cache::refill::Backlog;
use crate::store::StoreError;

pub struct CacheWrite;

impl Kind for CacheWrite {
    const NAME: &'static str = "cache_write";
    // The till reads the cache right after ALCS's call: the answer waits for the write.
    const IN_REQUEST: bool = true;
    // A stale cache is worse than a late write: never given up.
    const CAN_DIE: bool = false;
    // There are many, and the cache itself shows them.
    const KEPT: bool = false;
    // The whole hash: phone number and PIN HMAC.
    const PERSONAL: bool = true;

    type Payload = Hashes;

    fn subject(hashes: &Hashes) -> String {
        // A PIN index entry's key names the PIN HMAC, a secret: it is shown by its card.
        hashes
            .0
            .iter()
            .map(|h| match &h.member {
                None => h.key.clone(),
                Some(card) => format!("pin:{card}"),
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    async fn deliver(hashes: &Hashes, targets: &Targets) -> Result<(), DeliveryError> {
        let cache = targets.cache.as_ref().ok_or(DeliveryError::NoCache)?;
        // Version-guarded: a hash not written because Redis already holds this or a newer
        // version is delivered all the same.
        cache.write_newer(&hashes.0).await?;
        Ok(())
    }
}

/// The hashes one change writes, stored as a JSON array. Rows written before a change wrote
/// its hashes together hold one hash, as an object: those still decode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Hashes(pub Vec<HashWrite>);

impl<'de> Deserialize<'de> for Hashes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // A visitor rather than an untagged enum: serde's buffering would lose the exact
        // numbers (`arbitrary_precision`).
        struct OneOrMany;

        impl<'de> Visitor<'de> for OneOrMany {
            type Value = Hashes;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a cache hash or a list of them")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Hashes, A::Error> {
                Vec::deserialize(de::value::SeqAccessDeserializer::new(seq)).map(Hashes)
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Hashes, A::Error> {
                HashWrite::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(|one| Hashes(vec![one]))
            }
        }

        deserializer.deserialize_any(OneOrMany)
    }
}

/// The cache writes in the outbox, as the cache refill sees them: when Redis answers again it
/// makes them due and wakes the worker that delivers them.
pub struct CacheBacklog {
    pub queue: Arc<dyn OutboxQueue>,
    /// The outbox worker's wake-up ([`super::worker::Deliverer::waker`]).
    pub wake: Arc<tokio::sync::Notify>,
}

#[async_trait]
impl Backlog for CacheBacklog {
    async fn release(&self) -> Result<u64, StoreError> {
        let due = self.queue.expedite(CacheWrite::NAME, Utc::now()).await;
        // Woken even when the queue could not be updated: rows already due go out now.
        self.wake.notify_one();
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(key: &str) -> HashWrite {
        HashWrite {
            key: key.into(),
            version: 7,
            fields: vec![("Wallet.A.Balance".into(), "132.00".into())],
            member: None,
        }
    }

    #[test]
    fn hashes_are_a_list_and_an_older_single_hash_still_decodes() {
        let both = Hashes(vec![hash("card:1"), hash("customer:ab")]);
        let json = serde_json::to_string(&both).unwrap();
        assert!(json.starts_with('['));
        assert_eq!(serde_json::from_str::<Hashes>(&json).unwrap(), both);
        let old = serde_json::to_string(&hash("card:1")).unwrap();
        assert_eq!(
            serde_json::from_str::<Hashes>(&old).unwrap(),
            Hashes(vec![hash("card:1")])
        );
        assert_eq!(CacheWrite::subject(&both), "card:1 customer:ab");
    }
}
